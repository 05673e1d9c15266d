/**
 * Protocol selection for service ports, as Istio does it (pilot/pkg/serviceregistry/kube
 * ConvertProtocol and pkg/config/protocol Parse): `appProtocol` first, then the port name's
 * prefix before the first `-` (`http`, `http-web`, `grpc-api`...), case-insensitive.
 * Anything else is `UNSUPPORTED`: Istio sniffs such ports; Sinew treats them as HTTP.
 */
import type { ServiceProtocol } from '../api/registry-snapshot.js';

const NAMES: Record<string, ServiceProtocol> = {
  http: 'HTTP',
  http2: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-WEB',
  https: 'HTTPS',
  tls: 'TLS',
  tcp: 'TCP',
  mongo: 'MONGO',
  redis: 'REDIS',
  mysql: 'MYSQL',
  udp: 'UDP',
};

/** Parses a protocol name (`HTTP`, `grpc`...) the way Istio's protocol.Parse does. */
export function parseProtocol(value: string | undefined): ServiceProtocol {
  if (!value) return 'UNSUPPORTED';
  return NAMES[value.toLowerCase()] ?? 'UNSUPPORTED';
}

/**
 * Kubernetes Service port -> protocol. `appProtocol: kubernetes.io/h2c` is HTTP2 and
 * `kubernetes.io/ws(s)` is HTTP (Istio 1.18+). UDP ports stay UDP whatever their name.
 */
export function kubeServicePortProtocol(port: { name?: string; appProtocol?: string; protocol?: string }): ServiceProtocol {
  if (port.protocol?.toUpperCase() === 'UDP') return 'UDP';
  if (port.appProtocol) {
    const app = port.appProtocol.toLowerCase();
    if (app === 'kubernetes.io/h2c') return 'HTTP2';
    if (app === 'kubernetes.io/ws' || app === 'kubernetes.io/wss') return 'HTTP';
    const parsed = parseProtocol(app);
    if (parsed !== 'UNSUPPORTED') return parsed;
  }
  return protocolFromPortName(port.name);
}

/** `http-web` -> HTTP, `grpc-web` -> GRPC-WEB, `tcp` -> TCP; no name or an unknown prefix -> UNSUPPORTED. */
export function protocolFromPortName(name: string | undefined): ServiceProtocol {
  if (!name) return 'UNSUPPORTED';
  const lower = name.toLowerCase();
  if (lower === 'grpc-web' || lower.startsWith('grpc-web-')) return 'GRPC-WEB';
  const dash = lower.indexOf('-');
  return parseProtocol(dash >= 0 ? lower.slice(0, dash) : lower);
}

/** True for protocols the proxy routes at layer 7. UNSUPPORTED counts: Sinew's embedded capture is HTTP. */
export function isHttpProtocol(p: ServiceProtocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB' || p === 'UNSUPPORTED';
}
