/**
 * A sidecar's inbound side. In embedded mode each containerPort of the workload gets its own
 * public listener on the sidecar, forwarding to the app's private address through the
 * cluster `inbound|<containerPort>||` (Istio's inbound cluster naming). Istio's inbound
 * routes carry no retries and no timeout; neither do these.
 */
import { inboundClusterName, type Cluster, type ClusterLoadAssignment, type Listener, type RouteConfiguration } from '../api/proxy-config.js';
import type { CompileContext } from './context.js';
import type { InboundPort } from './inputs.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from './policy.js';
import { upstreamProtocol } from './clusters.js';

export interface InboundResult {
  listeners: Listener[];
  routeConfigs: RouteConfiguration[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
}

export function buildSidecarInbound(ctx: CompileContext): InboundResult {
  const out: InboundResult = { listeners: [], routeConfigs: [], clusters: [], endpoints: [] };
  for (const port of ctx.ports.inbound ?? []) {
    const cluster = inboundClusterName(port.containerPort);
    const protocol = port.protocol ?? inboundProtocol(ctx, port.listen.port);
    const listenerName = `inbound|${port.containerPort}`;
    if (protocol === 'tcp') {
      out.listeners.push({
        name: listenerName,
        address: { ...port.listen },
        direction: 'inbound',
        protocol: 'tcp',
        tcp: { routes: [{ destinations: [{ cluster, weight: 100 }] }] },
      });
    } else {
      out.listeners.push({
        name: listenerName,
        address: { ...port.listen },
        direction: 'inbound',
        protocol: 'http',
        http: { routeConfigName: cluster, ...(protocol === 'http2' ? { http2: true } : {}) },
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
    out.clusters.push({
      name: cluster,
      kind: 'eds',
      protocol: protocol === 'tcp' ? 'tcp' : protocol === 'http2' ? 'http2' : 'http1',
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
      lb: { policy: 'ROUND_ROBIN' },
    });
    out.endpoints.push({
      clusterName: cluster,
      endpoints: [{ address: { ...port.app }, labels: ctx.node.labels, health: 'HEALTHY', workload: { name: ctx.node.workload, namespace: ctx.node.namespace } }],
    });
  }
  return out;
}

/**
 * The protocol of an inbound port when the runner does not say: the protocol of the service
 * port whose endpoints include this proxy's workload at this address (in embedded mode an
 * endpoint's port is the sidecar's public inbound port). Istio likewise takes inbound
 * protocols from the services that select the pod. TCP-like ports are proxied as TCP.
 */
function inboundProtocol(ctx: CompileContext, listenPort: number): NonNullable<InboundPort['protocol']> {
  for (const service of ctx.registry.services) {
    if (service.namespace !== ctx.node.namespace) continue;
    for (const port of service.ports) {
      const mine = (service.endpoints[String(port.port)] ?? []).some((e) => e.port === listenPort && e.workload?.name === ctx.node.workload && e.workload.namespace === ctx.node.namespace);
      if (!mine) continue;
      const upstream = upstreamProtocol(port.protocol);
      return upstream === 'http1' ? 'http' : upstream;
    }
  }
  return 'http';
}
