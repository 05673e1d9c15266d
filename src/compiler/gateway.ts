/**
 * Gateway proxies (node mode `router`): one listener per server port of the Gateways that
 * select the proxy, route table `http.<port>`, virtual hosts from the VirtualServices bound
 * to those Gateways whose hosts meet the server's hosts (Istio's buildGatewayHTTPRouteConfig
 * and BuildGatewayVirtualHosts).
 */
import type { DownstreamTls, Listener, Route, RouteConfiguration, Secret, TcpRoute, VirtualHost } from '../api/proxy-config.js';
import type { CompileContext, GatewayResource, VirtualServiceResource } from './context.js';
import type { Server } from './istio-types.js';
import { toAddress } from './inputs.js';
import { httpConnectionManager } from './connection-manager.js';
import { buildVirtualServiceRoutes, destinationCluster, vsGateways } from './http-routes.js';
import { hostIntersection } from '../semantics/hosts.js';
import { selectorMatches } from '../semantics/labels.js';
import { isExportedTo } from '../semantics/visibility.js';

interface BoundServer {
  gateway: GatewayResource;
  /** `namespace/name` of the gateway. */
  ref: string;
  server: Server;
}

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

function isHttpServer(s: Server): boolean {
  const p = s.port.protocol.toUpperCase();
  if (HTTP_PROTOCOLS.has(p)) return true;
  // HTTPS terminated at the gateway is HTTP inside; PASSTHROUGH stays TLS bytes.
  return p === 'HTTPS' && s.tls?.mode !== 'PASSTHROUGH' && s.tls?.mode !== 'AUTO_PASSTHROUGH';
}

/** Server hosts `ns/host`: the namespace part limits which VirtualServices may bind (`.` = the gateway's, `*` = any). */
function serverHost(entry: string, gatewayNamespace: string): { namespace: string; host: string } {
  const slash = entry.indexOf('/');
  if (slash < 0) return { namespace: '*', host: entry.toLowerCase() };
  const ns = entry.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: entry.slice(slash + 1).toLowerCase() };
}

/** The hosts of `vs` a server serves (intersections with its hosts), each the more specific of the two. */
function servedHosts(ctx: CompileContext, vs: VirtualServiceResource, bound: BoundServer): string[] {
  const out: string[] = [];
  for (const entry of bound.server.hosts ?? []) {
    const sh = serverHost(entry, bound.gateway.metadata.namespace);
    if (sh.namespace !== '*' && sh.namespace !== vs.metadata.namespace) continue;
    for (const h of vs.spec.hosts ?? []) {
      const i = hostIntersection(sh.host, ctx.resolve(h, vs.metadata.namespace));
      if (i && !out.includes(i)) out.push(i);
    }
  }
  return out;
}

function downstreamTls(server: Server): DownstreamTls | undefined {
  const tls = server.tls;
  if (!tls || !tls.mode || tls.mode === 'PASSTHROUGH' || tls.mode === 'AUTO_PASSTHROUGH') return undefined;
  if (server.port.protocol.toUpperCase() !== 'HTTPS') return undefined;
  const mode = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL' ? 'MUTUAL' : tls.mode === 'ISTIO_MUTUAL' ? 'ISTIO_MUTUAL' : 'SIMPLE';
  const certificate = tls.credentialName ?? (mode === 'ISTIO_MUTUAL' ? 'default' : 'gateway');
  const out: DownstreamTls = { mode, certificate };
  if (mode === 'MUTUAL') out.validationContext = `${certificate}-cacert`;
  if (mode === 'ISTIO_MUTUAL') out.validationContext = 'ROOTCA';
  return out;
}

export interface GatewayResult {
  listeners: Listener[];
  routeConfigs: RouteConfiguration[];
  /** The credentials its listeners present (only a gateway that names them gets them). */
  secrets?: Secret[];
}

export function buildGateway(ctx: CompileContext): GatewayResult {
  const out: GatewayResult = { listeners: [], routeConfigs: [] };
  const byPort = new Map<number, BoundServer[]>();
  for (const gateway of ctx.selectedGateways()) {
    const ref = `${gateway.metadata.namespace}/${gateway.metadata.name}`;
    for (const server of gateway.spec.servers ?? []) {
      const list = byPort.get(server.port.number) ?? [];
      list.push({ gateway, ref, server });
      byPort.set(server.port.number, list);
    }
  }
  // VirtualServices bound to a gateway are visible to it subject to exportTo from the gateway's namespace.
  const candidates = ctx.virtualServices.filter((vs) => (vs.spec.hosts ?? []).length > 0);
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const servers = byPort.get(port)!;
    const mapped = ctx.ports.gateway?.[port];
    const address = mapped === undefined ? { host: '0.0.0.0', port } : toAddress(mapped);
    const listenerName = `${address.host}_${address.port}`;
    // Servers sharing a port are served by one listener; Sinew takes the first server's
    // protocol and TLS for it (Istio splits them by SNI into filter chains).
    const first = servers[0].server;
    // A server that terminates TLS needs its certificate, and the mesh has no source of TLS
    // credentials yet: nothing pushes `secrets`. Envoy keeps a listener whose secret is
    // missing warming while the rest serve; leaving the port out does the same, where a
    // listener naming an absent secret would make the proxy refuse the whole config.
    // `sinew analyze` says so (SNW1011). Once credentials are pushed, the listener carries
    // downstreamTls(first) and the proxy terminates TLS (src/proxy/http/tls.ts).
    if (downstreamTls(first) !== undefined) continue;
    if (isHttpServer(first)) {
      const routeName = `http.${port}`;
      const hosts = new Map<string, VirtualHost>();
      let requireTls = false;
      for (const bound of servers) {
        if (!isHttpServer(bound.server)) continue;
        if (bound.server.tls?.httpsRedirect) requireTls = true;
        for (const vs of candidates) {
          if (!vsGateways(vs.spec.gateways, vs.metadata.namespace).includes(bound.ref)) continue;
          if (!isExportedTo(vs.spec.exportTo, vs.metadata.namespace, bound.gateway.metadata.namespace)) continue;
          const served = servedHosts(ctx, vs, bound);
          if (served.length === 0) continue;
          const routes = buildVirtualServiceRoutes(ctx, vs, { gateways: servers.map((s) => s.ref), port });
          // Istio merges the routes of every VirtualService for a host at gateways, in creation order.
          for (const host of served) {
            const vh = hosts.get(host) ?? { name: `${host}:${port}`, domains: host === '*' ? ['*'] : [host, `${host}:*`], routes: [] as Route[] };
            for (const r of routes) if (!vh.routes.some((x) => x.name === r.name)) vh.routes.push(r);
            hosts.set(host, vh);
          }
        }
      }
      let virtualHosts = [...hosts.values()];
      if (requireTls) virtualHosts = virtualHosts.map((v) => ({ ...v, requireTls: true }));
      // Istio's empty gateway route table has a `blackhole:<port>` host: everything gets 404.
      if (virtualHosts.length === 0) virtualHosts = [{ name: `blackhole:${port}`, domains: ['*'], routes: [] }];
      out.routeConfigs.push({ name: routeName, virtualHosts });
      const listener: Listener = {
        name: listenerName,
        address: { ...address },
        direction: 'gateway',
        protocol: 'http',
        http: httpConnectionManager({ routeConfigName: routeName, ...(first.port.protocol.toUpperCase() !== 'HTTP' ? { http2: true } : {}) }),
      };
      out.listeners.push(listener);
    } else {
      out.listeners.push({
        name: listenerName,
        address: { ...address },
        direction: 'gateway',
        protocol: 'tcp',
        tcp: { routes: tcpRoutes(ctx, candidates, servers, port) },
      });
    }
  }
  return out;
}

/** VirtualService `tcp` routes for a gateway TCP server (Istio buildGatewayNetworkFiltersFromTCPRoutes). */
function tcpRoutes(ctx: CompileContext, candidates: VirtualServiceResource[], servers: BoundServer[], port: number): TcpRoute[] {
  const routes: TcpRoute[] = [];
  const refs = servers.map((s) => s.ref);
  for (const bound of servers) {
    for (const vs of candidates) {
      const ns = vs.metadata.namespace;
      if (!vsGateways(vs.spec.gateways, ns).includes(bound.ref)) continue;
      if (servedHosts(ctx, vs, bound).length === 0) continue;
      for (const rule of vs.spec.tcp ?? []) {
        const matches = rule.match?.length ? rule.match : [undefined];
        const applies = matches.some(
          (m) =>
            !m ||
            ((!m.port || m.port === port) &&
              (!m.gateways?.length || vsGateways(m.gateways, ns).some((g) => refs.includes(g))) &&
              selectorMatches(m.sourceLabels, ctx.node.labels) &&
              (!m.sourceNamespace || m.sourceNamespace === ctx.node.namespace)),
        );
        if (!applies) continue;
        const dests = rule.route ?? [];
        routes.push({
          destinations: dests.map((d) => ({
            cluster: destinationCluster(ctx, d.destination, ns, port).cluster,
            weight: d.weight ?? (dests.length === 1 ? 100 : 0),
          })),
        });
      }
    }
  }
  return routes;
}
