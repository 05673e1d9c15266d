/**
 * A sidecar's outbound side: one capture listener (`virtualOutbound`, the workload's
 * HTTP_PROXY in embedded mode) that picks a route table by destination port, one table per
 * service port, one virtual host per service (Istio's BuildSidecarOutboundVirtualHosts).
 */
import {
  BLACKHOLE_CLUSTER,
  PASSTHROUGH_CLUSTER,
  outboundClusterName,
  type Listener,
  type Route,
  type RouteConfiguration,
  type VirtualHost,
  type WeightedCluster,
} from '../api/proxy-config.js';
import type { RegistryService } from '../api/registry-snapshot.js';
import type { CompileContext, VirtualServiceResource } from './context.js';
import { buildVirtualServiceRoutes, defaultRoute, destinationCluster, vsGateways } from './http-routes.js';
import { isHttpPort } from './protocols.js';
import { hostSubsetOf, isWildcardHost } from '../semantics/hosts.js';
import { httpConnectionManager } from './connection-manager.js';
import { byCreation } from '../semantics/creation-order.js';
import { meshRouteSets, meshRuleNames } from './gateway-api/mesh.js';

/** Routes of a VirtualService made from Gateway API routes carry the names of the rules they came from. */
function namedAfterRules(vs: VirtualServiceResource, routes: Route[]): Route[] {
  const names = meshRuleNames.get(vs);
  if (!names) return routes;
  return routes.map((r) => {
    const i = Number(/\/(\d+)$/.exec(r.name)?.[1]);
    return Number.isInteger(i) && names[i] ? { ...r, name: names[i] } : r;
  });
}

export const OUTBOUND_LISTENER = 'virtualOutbound';
export const ALLOW_ANY_ROUTE = 'allow_any';
export const BLOCK_ALL_ROUTE = 'block_all';

/**
 * Host header forms a client can use for a service (Istio generateVirtualHostDomains /
 * generateAltVirtualHosts): the FQDN everywhere; `reviews`, only from the service's own
 * namespace; `reviews.default` and `reviews.default.svc` from anywhere; each with and
 * without `:port`.
 */
export function virtualHostDomains(service: RegistryService, port: number, proxyNamespace: string, domainSuffix: string): string[] {
  const names = [service.hostname];
  const kubeSuffix = `.${service.namespace}.svc.${domainSuffix}`;
  if (service.source === 'Service' && service.hostname.endsWith(kubeSuffix)) {
    const short = service.hostname.slice(0, -kubeSuffix.length);
    if (service.namespace === proxyNamespace) names.push(short);
    names.push(`${short}.${service.namespace}`, `${short}.${service.namespace}.svc`);
  }
  // Istio also adds the service's virtual IPs (a Kubernetes clusterIP, ServiceEntry addresses).
  for (const a of service.addresses ?? []) if (!a.includes('/')) names.push(a);
  const out: string[] = [];
  for (const n of names) out.push(n, `${n}:${port}`);
  return out;
}

/** The virtual host every outbound table ends with: unknown hosts pass through or get 502 (DESIGN.md behaviour 10). */
export function fallbackVirtualHost(mode: 'ALLOW_ANY' | 'REGISTRY_ONLY'): VirtualHost {
  const allow = mode === 'ALLOW_ANY';
  const name = allow ? ALLOW_ANY_ROUTE : BLOCK_ALL_ROUTE;
  return {
    name,
    domains: ['*'],
    // An empty match: CONNECT tunnels (no path) fall back too.
    routes: [{ name, match: {}, action: { kind: 'route', destinations: [{ cluster: allow ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER, weight: 100 }] } }],
  };
}

/**
 * The VirtualService that owns a host for sidecars. Istio merges several VirtualServices
 * for one host only at gateways; for sidecars the oldest (creation time, then name) wins
 * and the others are ignored for that host. Sinew does the same.
 *
 * Returns the lookup for one table: hosts are resolved once and exact hosts indexed, so a
 * table of thousands of services does not rescan every VirtualService per service; the
 * answer is the first candidate (in the given order) with a matching host.
 */
function virtualServiceIndex(candidates: VirtualServiceResource[], ctx: CompileContext): (service: RegistryService) => VirtualServiceResource | undefined {
  const exact = new Map<string, number>();
  const wildcards: { index: number; pattern: string }[] = [];
  candidates.forEach((vs, index) => {
    for (const h of vs.spec.hosts ?? []) {
      const pattern = ctx.resolve(h, vs.metadata.namespace);
      if (isWildcardHost(pattern)) wildcards.push({ index, pattern });
      else if (!exact.has(pattern)) exact.set(pattern, index);
    }
  });
  return (service) => {
    let best = exact.get(service.hostname) ?? Number.POSITIVE_INFINITY;
    for (const w of wildcards) {
      if (w.index >= best) break; // pushed in candidate order
      if (hostSubsetOf(service.hostname, w.pattern)) best = w.index;
    }
    return Number.isFinite(best) ? candidates[best] : undefined;
  };
}

export interface OutboundResult {
  listeners: Listener[];
  routeConfigs: RouteConfiguration[];
}

export function buildSidecarOutbound(ctx: CompileContext): OutboundResult {
  return { listeners: buildOutboundListeners(ctx), routeConfigs: buildOutboundRouteConfigs(ctx) };
}

/** A service's virtual host on one of its ports, before other services' claims on its domains are taken out. */
export interface ServiceVirtualHost {
  port: number;
  host: VirtualHost;
}

/**
 * The outbound route tables. They depend on the proxy only through its namespace, the
 * label selectors it meets and its Sidecar (see `proxyClassKey`), never on its ports, so
 * the control plane can build them once for every sidecar of a class.
 */
export function buildOutboundRouteConfigs(ctx: CompileContext): RouteConfiguration[] {
  const vsFor = meshVirtualServices(ctx);
  return joinRouteConfigs(ctx, ctx.visibleServices().map((service) => serviceVirtualHosts(ctx, service, vsFor(service))));
}

/**
 * The lookup of the VirtualService that owns a service's host for this proxy: among those
 * it can see that bind to the mesh, the oldest (see `virtualServiceIndex`).
 */
export function meshVirtualServices(ctx: CompileContext): (service: RegistryService) => VirtualServiceResource | undefined {
  const meshVirtualServices = ctx.visibleVirtualServices().filter((vs) => vsGateways(vs.spec.gateways, vs.metadata.namespace).includes('mesh'));
  // GAMMA routes (./gateway-api/mesh.ts): the client namespace's first, the others by age.
  const gamma = meshRouteSets(ctx, ctx.gatewayApi, ctx.namespace);
  const candidates = gamma.first.length || gamma.byCreation.length ? [...gamma.first, ...[...meshVirtualServices, ...gamma.byCreation].sort(byCreation)] : meshVirtualServices;
  return virtualServiceIndex(candidates, ctx);
}

/**
 * A service's virtual hosts, one per port, routed by its VirtualService `vs` (the one
 * `meshVirtualServices` finds for it). Besides the service and `vs` it reads only what it
 * reads through `ctx` (the services and DestinationRules its routes name, the proxy's
 * labels and namespace), which lets a caller keep it while those stay the same.
 */
export function serviceVirtualHosts(ctx: CompileContext, service: RegistryService, vs: VirtualServiceResource | undefined): ServiceVirtualHost[] {
  const out: ServiceVirtualHost[] = [];
  for (const port of service.ports) {
    if (port.protocol === 'UDP') continue;
    let routes: Route[];
    if (isHttpPort(port.protocol)) {
      routes = vs ? namedAfterRules(vs, buildVirtualServiceRoutes(ctx, vs, { gateways: ['mesh'], port: port.port })) : [];
      // No VirtualService (or none of its rules applies here): the default route
      // ("to get started you do not need any configuration").
      if (routes.length === 0) routes = [defaultRoute(ctx, service.hostname, port.port)];
    } else {
      routes = [opaqueRoute(ctx, service, port.port, vs)];
    }
    // The domains depend on the proxy's namespace only through this question (the short
    // name is offered in the service's own namespace); asked through ctx so it is recorded.
    ctx.isNodeNamespace(service.namespace);
    const domains = virtualHostDomains(service, port.port, ctx.namespace, ctx.mesh.domainSuffix);
    out.push({ port: port.port, host: { name: `${service.hostname}:${port.port}`, domains, routes } });
  }
  return out;
}

/**
 * The route tables from each visible service's virtual hosts, in `visibleServices` order:
 * one table per port, ending with the fallback virtual host, and the fallback table.
 */
export function joinRouteConfigs(ctx: CompileContext, perService: readonly (readonly ServiceVirtualHost[])[]): RouteConfiguration[] {
  const byPort = new Map<number, VirtualHost[]>();
  const domainsTaken = new Map<number, Set<string>>();
  for (const list of perService) {
    for (const { port, host } of list) {
      let taken = domainsTaken.get(port);
      if (!taken) domainsTaken.set(port, (taken = new Set<string>()));
      // A domain claimed twice (the same host from two sources) belongs to the first service.
      // Claims rarely clash: copy the list only when one does.
      let domains = host.domains;
      for (const d of host.domains) {
        if (taken.has(d)) {
          domains = host.domains.filter((x) => !taken.has(x));
          break;
        }
      }
      if (domains.length === 0) continue;
      for (const d of domains) taken.add(d);
      let vhosts = byPort.get(port);
      if (!vhosts) byPort.set(port, (vhosts = []));
      vhosts.push(domains === host.domains ? host : { name: host.name, domains, routes: host.routes });
    }
  }
  const mode = ctx.outboundTrafficPolicy;
  const fallbackName = mode === 'ALLOW_ANY' ? ALLOW_ANY_ROUTE : BLOCK_ALL_ROUTE;
  const routeConfigs: RouteConfiguration[] = [...byPort.keys()]
    .sort((a, b) => a - b)
    .map((port) => ({ name: String(port), virtualHosts: [...byPort.get(port)!, fallbackVirtualHost(mode)] }));
  routeConfigs.push({ name: fallbackName, virtualHosts: [fallbackVirtualHost(mode)] });
  return routeConfigs;
}

/** The capture listener: the one outbound piece that names the proxy's own address. */
export function buildOutboundListeners(ctx: CompileContext): Listener[] {
  const fallbackName = ctx.outboundTrafficPolicy === 'ALLOW_ANY' ? ALLOW_ANY_ROUTE : BLOCK_ALL_ROUTE;
  const address = ctx.outboundAddress;
  const listeners: Listener[] = address
    ? [
        {
          name: OUTBOUND_LISTENER,
          address,
          direction: 'outbound',
          protocol: 'http',
          // Envoy's codec_type AUTO, as Istio's outbound listeners have it: an app may speak
          // HTTP/2 with prior knowledge (gRPC) as well as HTTP/1.1 to its sidecar.
          http: httpConnectionManager({ routeConfigByPort: true, fallbackRouteConfigName: fallbackName, acceptAbsoluteUri: true, http2: true }),
        },
      ]
    : [];
  return listeners;
}

/**
 * A TCP, TLS or HTTPS service port reached through the capture listener. In embedded mode
 * such traffic arrives as an HTTP CONNECT tunnel to `host:port`, so it is routed like a
 * request (by port table and authority) to one route whose destinations come from the
 * VirtualService's first applicable `tls` rule (SNI = the host) or `tcp` rule, else the
 * service itself. No retries: bytes of an opaque stream cannot be replayed.
 */
function opaqueRoute(ctx: CompileContext, service: RegistryService, port: number, vs: VirtualServiceResource | undefined): Route {
  const applies = (m: { port?: number; sourceLabels?: Record<string, string>; sourceNamespace?: string; gateways?: string[] } | undefined) =>
    !m ||
    ((!m.port || m.port === port) &&
      ctx.nodeMatches(m.sourceLabels) &&
      (!m.sourceNamespace || ctx.isNodeNamespace(m.sourceNamespace)) &&
      (!m.gateways?.length || m.gateways.includes('mesh')));
  if (vs) {
    const ns = vs.metadata.namespace;
    const toWeighted = (route: { destination: { host: string; subset?: string; port?: { number?: number } }; weight?: number }[]): WeightedCluster[] =>
      route.map((d) => ({ cluster: destinationCluster(ctx, d.destination, ns, port).cluster, weight: d.weight ?? (route.length === 1 ? 100 : 0) }));
    const tlsIndex = (vs.spec.tls ?? []).findIndex((r) => r.match.some((m) => applies(m) && m.sniHosts.some((h) => hostSubsetOf(service.hostname, h.toLowerCase()))));
    if (tlsIndex >= 0 && vs.spec.tls![tlsIndex].route?.length) {
      return { name: `${ns}/${vs.metadata.name}/tls/${tlsIndex}`, match: {}, action: { kind: 'route', destinations: toWeighted(vs.spec.tls![tlsIndex].route!) } };
    }
    const tcpIndex = (vs.spec.tcp ?? []).findIndex((r) => (r.match?.length ? r.match.some(applies) : true));
    if (tcpIndex >= 0 && vs.spec.tcp![tcpIndex].route?.length) {
      return { name: `${ns}/${vs.metadata.name}/tcp/${tcpIndex}`, match: {}, action: { kind: 'route', destinations: toWeighted(vs.spec.tcp![tcpIndex].route!) } };
    }
  }
  return { name: 'default', match: {}, action: { kind: 'route', destinations: [{ cluster: outboundClusterName(port, undefined, service.hostname), weight: 100 }] } };
}
