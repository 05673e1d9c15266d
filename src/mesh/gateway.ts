/**
 * The embedded ingress gateway: which ports it listens on (from the Gateways in the
 * manifests), who it is (Istio's istio-ingressgateway), and its registration.
 */
import type { WorkloadRegistration } from '../api/mesh-status.js';
import type { ProxyNode } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import { defaultGatewayListenPort } from '../controlplane/compile.js';
import { proxyIdOf } from '../controlplane/daemon.js';
import { allocatePort } from './supervisor.js';

export const GATEWAY_NAME = 'istio-ingressgateway';
export const GATEWAY_NAMESPACE = 'istio-system';
/** The server ports of Istio's istio-ingressgateway Service (demo profile): http2, https, tcp, tls. */
const ISTIO_GATEWAY_SERVICE_PORTS = [80, 443, 31400, 15443];

export interface GatewayPlan {
  node: ProxyNode;
  /** Where its first HTTP server listens (what `Open:` prints). */
  port: number;
  admin: number;
  metrics: number;
  registration: WorkloadRegistration;
}

/**
 * Every Gateway server port gets a listen port: the first HTTP one (Istio's samples use 8080)
 * listens on `gatewayPort`; the others as the control plane's default rule says (80 -> 8080,
 * 443 -> 8443, 1024 and up as is), or on free ports when `gatewayPort` is 0.
 */
export async function planGateway(resources: readonly Resource[], host: string, gatewayPortOption: number | undefined): Promise<GatewayPlan> {
  const anyPort = gatewayPortOption === 0;
  const gatewayPorts: Record<string, { inbound: number; app: number }> = {};
  const gatewayPort = anyPort ? await allocatePort(host) : gatewayPortOption ?? 8080;
  for (const [i, serverPort] of gatewayServerPorts(resources).entries()) {
    const listen = i === 0 ? gatewayPort : anyPort ? await allocatePort(host) : defaultGatewayListenPort(serverPort);
    gatewayPorts[String(serverPort)] = { inbound: listen, app: listen };
  }
  // With free ports asked for, the ports Istio's ingress gateway Service exposes get free
  // ports too, so a Gateway applied later (tcp-echo's 31400, say) does not fall back to a
  // fixed port that may be taken.
  if (anyPort) {
    for (const serverPort of ISTIO_GATEWAY_SERVICE_PORTS) {
      if (!gatewayPorts[String(serverPort)]) {
        const listen = await allocatePort(host);
        gatewayPorts[String(serverPort)] = { inbound: listen, app: listen };
      }
    }
  }
  const admin = await allocatePort(host);
  const metrics = await allocatePort(host);
  const node: ProxyNode = {
    id: proxyIdOf({ kind: 'gateway', namespace: GATEWAY_NAMESPACE }, GATEWAY_NAME),
    mode: 'router',
    workload: GATEWAY_NAME,
    namespace: GATEWAY_NAMESPACE,
    labels: { istio: 'ingressgateway', app: GATEWAY_NAME },
    serviceAccount: 'istio-ingressgateway-service-account',
  };
  const registration: WorkloadRegistration = {
    kind: 'gateway',
    name: GATEWAY_NAME,
    namespace: GATEWAY_NAMESPACE,
    labels: node.labels,
    serviceAccount: node.serviceAccount,
    replicas: [
      {
        id: GATEWAY_NAME,
        host,
        ports: gatewayPorts,
        ready: false,
        reason: 'starting',
        restarts: 0,
        proxy: {
          inbound: `${host}:${gatewayPort}`,
          admin: `${host}:${admin}`,
          metrics: `${host}:${metrics}`,
          servers: Object.fromEntries(Object.entries(gatewayPorts).map(([serverPort, p]) => [serverPort, `${host}:${p.inbound}`])),
        },
      },
    ],
  };
  return { node, port: gatewayPort, admin, metrics, registration };
}

/** Server ports of the Gateways the ingress gateway runs, HTTP ones first. */
export function gatewayServerPorts(resources: readonly Resource[]): number[] {
  const http: number[] = [];
  const other: number[] = [];
  for (const r of resources) {
    if (r.kind !== 'Gateway' || r.group !== 'networking.istio.io') continue;
    const spec = r.spec as { selector?: Record<string, string>; servers?: { port?: { number?: number; protocol?: string } }[] };
    if (spec.selector && spec.selector.istio !== 'ingressgateway') continue;
    for (const server of spec.servers ?? []) {
      const port = server.port?.number;
      if (port === undefined) continue;
      (/^HTTP$/i.test(server.port?.protocol ?? '') ? http : other).push(port);
    }
  }
  return [...new Set([...http.sort((a, b) => a - b), ...other.sort((a, b) => a - b)])];
}
