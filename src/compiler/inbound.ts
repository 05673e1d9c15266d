/**
 * A sidecar's inbound side. In embedded mode each containerPort of the workload gets its own
 * public listener on the sidecar, forwarding to the app's private address through the
 * cluster `inbound|<containerPort>||` (Istio's inbound cluster naming). Istio's inbound
 * routes carry no retries and no timeout; neither do these.
 *
 * Each inbound cluster names the service that selects the workload on that port, as Istio
 * puts it in the inbound cluster's `istio.services` metadata: the destination reporter's
 * `destination_service` is that service's FQDN, not the Host header the client sent.
 */
import { inboundClusterName, ROOT_CA_SECRET, WORKLOAD_CERTIFICATE_SECRET, type Cluster, type ClusterLoadAssignment, type DownstreamTls, type Listener, type RouteConfiguration } from '../api/proxy-config.js';
import { peerModeForPort, type EffectivePeerMode } from '../semantics/peer-authentication.js';
import type { RegistryService, RegistryServicePort } from '../api/registry-snapshot.js';
import type { CompileContext } from './context.js';
import type { InboundPort } from './inputs.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from './policy.js';
import { upstreamProtocol } from './clusters.js';
import { httpConnectionManager } from './connection-manager.js';

export interface InboundResult {
  listeners: Listener[];
  routeConfigs: RouteConfiguration[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
}

export function buildSidecarInbound(ctx: CompileContext): InboundResult {
  const out: InboundResult = { listeners: [], routeConfigs: [], clusters: [], endpoints: [] };
  const peerAuthentication = ctx.peerAuthentication({ namespace: ctx.node.namespace, labels: ctx.node.labels });
  for (const port of ctx.ports.inbound ?? []) {
    const tls = inboundTls(peerModeForPort(peerAuthentication, port.containerPort), ctx.mesh.mtls === true);
    const cluster = inboundClusterName(port.containerPort);
    const served = servedBy(ctx, port.listen.port);
    const protocol = port.protocol ?? inboundProtocol(served);
    const listenerName = `inbound|${port.containerPort}`;
    if (protocol === 'tcp') {
      out.listeners.push({
        name: listenerName,
        address: { ...port.listen },
        direction: 'inbound',
        protocol: 'tcp',
        // The same transport as an HTTP port's (Istio's inbound TCP filter chains): STRICT
        // terminates Istio mutual TLS only, PERMISSIVE beside plaintext, DISABLE plaintext.
        tcp: { routes: [{ destinations: [{ cluster, weight: 100 }] }] },
        ...(tls ? { tls } : {}),
      });
    } else {
      out.listeners.push({
        name: listenerName,
        address: { ...port.listen },
        direction: 'inbound',
        protocol: 'http',
        http: httpConnectionManager({ routeConfigName: cluster, ...(protocol === 'http2' ? { http2: true } : {}) }),
        ...(tls ? { tls } : {}),
      });
      out.routeConfigs.push({
        name: cluster,
        virtualHosts: [
          {
            name: `inbound|http|${port.containerPort}`,
            domains: ['*'],
            routes: [{ name: 'default', match: { path: { prefix: '/' } }, action: { kind: 'route', destinations: [{ cluster, weight: 100 }] } }],
          },
        ],
      });
    }
    const inboundCluster: Cluster = {
      name: cluster,
      kind: 'eds',
      protocol: protocol === 'tcp' ? 'tcp' : protocol === 'http2' ? 'http2' : 'http1',
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
      lb: { policy: 'ROUND_ROBIN' },
    };
    if (served) inboundCluster.service = { host: served.service.hostname, namespace: served.service.namespace, name: served.service.name, port: served.port.port };
    out.clusters.push(inboundCluster);
    out.endpoints.push({
      clusterName: cluster,
      endpoints: [{ address: { ...port.app }, labels: ctx.node.labels, health: 'HEALTHY', workload: { name: ctx.node.workload, namespace: ctx.node.namespace } }],
    });
  }
  return out;
}

/**
 * The transport of an inbound port under its PeerAuthentication mode (Istio's inbound filter
 * chains, pilot/pkg/networking/core/listener_inbound.go): STRICT terminates Istio mutual TLS
 * only, the client's certificate required and verified against the mesh roots, so a
 * plaintext connection finds no chain and is closed; PERMISSIVE adds a plaintext chain, the
 * two told apart by the connection's first bytes (a TLS ClientHello or not); DISABLE is
 * plaintext only. Without workload certificates (`mtls` off) PERMISSIVE is plaintext, while
 * STRICT still asks for the certificate the proxy does not have, so it admits nothing.
 */
export function inboundTls(mode: EffectivePeerMode, mtls: boolean): DownstreamTls | undefined {
  if (mode === 'DISABLE' || (mode === 'PERMISSIVE' && !mtls)) return undefined;
  const tls: DownstreamTls = { mode: 'ISTIO_MUTUAL', certificate: WORKLOAD_CERTIFICATE_SECRET, validationContext: ROOT_CA_SECRET };
  if (mode === 'PERMISSIVE') tls.permissive = true;
  return tls;
}

/**
 * The service port whose endpoints include this proxy's workload at its inbound listen port
 * (in embedded mode an endpoint's port is the sidecar's public inbound port), like Istio's
 * service targets of a proxy. With several services selecting the workload on one port the
 * first in registry order (hostname, then namespace) wins, as Istio reports the first of the
 * inbound cluster's services. Undefined when no service selects it.
 */
function servedBy(ctx: CompileContext, listenPort: number): { service: RegistryService; port: RegistryServicePort } | undefined {
  for (const service of ctx.registry.services) {
    if (service.namespace !== ctx.node.namespace) continue;
    for (const port of service.ports) {
      const mine = (service.endpoints[String(port.port)] ?? []).some((e) => e.port === listenPort && e.workload?.name === ctx.node.workload && e.workload.namespace === ctx.node.namespace);
      if (mine) return { service, port };
    }
  }
  return undefined;
}

/**
 * The protocol of an inbound port when the runner does not say: the protocol of the service
 * port that selects the workload there (`servedBy`). Istio likewise takes inbound protocols
 * from the services that select the pod. TCP-like ports are proxied as TCP; `http` when no
 * service selects the port.
 */
function inboundProtocol(served: { port: RegistryServicePort } | undefined): NonNullable<InboundPort['protocol']> {
  if (!served) return 'http';
  const upstream = upstreamProtocol(served.port.protocol);
  return upstream === 'http1' ? 'http' : upstream;
}
