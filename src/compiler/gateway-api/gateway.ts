/**
 * The proxy of a Gateway API Gateway (Istio deploys one per Gateway; `sinew up` starts it with
 * the label `gateway.networking.k8s.io/gateway-name`): a listener per port of its usable
 * listeners, as Istio's Gateway servers become Envoy listeners:
 *
 *   HTTP         route table `http.<port>`: a virtual host per hostname the attached HTTPRoutes
 *                and GRPCRoutes serve, their rules sorted by the Gateway API's precedence
 *                (./convert.ts)
 *   HTTPS        a filter chain per listener, chosen by SNI (its hostname), terminating TLS with
 *                its certificate (and verifying client certificates where the Gateway's
 *                `tls.frontend` asks), with a route table of its own (`https.<port>.<listener>`)
 *   TLS          (mode Passthrough) a filter chain per attached TLSRoute, chosen by SNI (the
 *                hostnames it serves there), passing the bytes still encrypted to the route's
 *                weighted backends, as Istio converts a TLSRoute to a VirtualService `tls` rule
 *   TCP          the TCPRoute's weighted backends
 *
 * Each port listens where the runner mapped it (`ProxyPorts.gateway`); a port it has not mapped
 * yet is left out rather than bound on 0.0.0.0. A port keeps its first listener's kind: TLS
 * passed through and HTTPS terminated on one port are not served together (status says so).
 */
import type { FilterChain, Listener, RouteConfiguration, Secret, TcpRoute, VirtualHost } from '../../api/proxy-config.js';
import type { SecretSpec } from '../../api/resources/secret.js';
import type { Resource } from '../../api/resources/meta.js';
import type { BackendState, GatewayApiBinding, GatewayState, ListenerState, RouteState } from '../../semantics/gateway-api/binding.js';
import { credentialOf } from '../../semantics/credentials.js';
import type { CompileContext, VirtualServiceResource } from '../context.js';
import { toAddress } from '../inputs.js';
import { buildVirtualServiceRoutes, destinationCluster } from '../http-routes.js';
import { convertRoutes, type ConvertedRule } from './convert.js';

export interface GatewayApiGatewayResult {
  listeners: Listener[];
  routeConfigs: RouteConfiguration[];
  secrets: Secret[];
}

/** The name a Secret is pushed under (Istio's SDS names credentials `kubernetes://<name>`). */
export const secretResourceName = (namespace: string, name: string) => `kubernetes://${namespace}/${name}`;

/**
 * Routes through the rule translation VirtualServices use, named after the Gateway API rules
 * they came from. `scopeGateways` is what the routes are built for (`mesh` or the Gateway).
 */
export function routesOf(ctx: CompileContext, rules: ConvertedRule[], namespace: string, hosts: string[], scopeGateways: string[], port: number) {
  const vs: VirtualServiceResource = {
    apiVersion: 'networking.istio.io/v1',
    group: 'networking.istio.io',
    kind: 'VirtualService',
    metadata: { name: 'gateway-api', namespace },
    spec: { hosts, gateways: scopeGateways, http: rules.map((r) => r.rule) },
  };
  const routes = buildVirtualServiceRoutes(ctx, vs, { gateways: scopeGateways, port });
  // One route per rule (each has a single match, that applies everywhere): name them after the
  // Gateway API rule rather than the synthetic VirtualService.
  return routes.map((route) => {
    const index = Number(/\/(\d+)$/.exec(route.name)?.[1]);
    return Number.isInteger(index) && rules[index] ? { ...route, name: rules[index].name } : route;
  });
}

export function buildGatewayApiGateway(ctx: CompileContext, binding: GatewayApiBinding, gateway: GatewayState): GatewayApiGatewayResult {
  const out: GatewayApiGatewayResult = { listeners: [], routeConfigs: [], secrets: [] };
  const byPort = new Map<number, ListenerState[]>();
  for (const l of gateway.listeners) {
    if (!l.usable) continue;
    const list = byPort.get(l.listener.port) ?? [];
    list.push(l);
    byPort.set(l.listener.port, list);
  }
  const secrets = new Map(ctx.resources.filter((r) => r.kind === 'Secret' && r.group === '').map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r as Resource<SecretSpec>]));

  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const listeners = byPort.get(port)!;
    const mapped = ctx.ports.gateway?.[port];
    if (mapped === undefined) continue;
    const address = toAddress(mapped);
    const name = `${address.host}_${address.port}`;
    const protocol = listeners[0].protocol;

    if (protocol === 'TCP') {
      out.listeners.push({ name, address: { ...address }, direction: 'gateway', protocol: 'tcp', tcp: { routes: tcpRoutes(ctx, binding, gateway, listeners[0], port) } });
      continue;
    }
    if (protocol === 'TLS') {
      const chains = tlsPassthroughChains(ctx, binding, gateway, listeners, port);
      if (chains.length > 0) out.listeners.push({ name, address: { ...address }, direction: 'gateway', protocol: 'tcp', filterChains: chains });
      continue;
    }

    if (protocol === 'HTTPS') {
      // A filter chain per HTTPS listener, chosen by SNI (the listener's hostname; none: any
      // name), with the listener's certificate and a route table of its own, as Istio builds a
      // server per listener: a session for one hostname is routed by that listener's routes only.
      const chains: FilterChain[] = [];
      const claimed = new Set<string>();
      for (const l of listeners) {
        const first = l.certificates[0];
        if (!first || first.problem || l.resolvedRefs.status !== 'True') continue;
        const secret = secrets.get(`${first.namespace}/${first.name}`);
        const credential = secret ? credentialOf(secret.spec) : undefined;
        if (!credential?.certificateChainPem || !credential.privateKeyPem) continue;
        const hostname = l.listener.hostname?.toLowerCase() ?? '';
        if (claimed.has(hostname)) continue;
        claimed.add(hostname);
        const sdsName = secretResourceName(first.namespace, first.name);
        if (!out.secrets.some((s) => s.name === sdsName)) out.secrets.push({ name: sdsName, certificateChainPem: credential.certificateChainPem, privateKeyPem: credential.privateKeyPem });
        const routeName = `https.${port}.${l.listener.name}`;
        out.routeConfigs.push({ name: routeName, virtualHosts: virtualHostsOf(ctx, binding, gateway, [l], port) });
        // GEP-91 client certificate validation: MUTUAL against the CA bundle of the port's (or the
        // default) validation, through the transport Istio's MUTUAL servers use. AllowInsecureFallback
        // lets every client in, so the chain asks for no certificate (the Gateway's status says
        // InsecureFrontendValidationMode).
        let tls: FilterChain['tls'] = { mode: 'SIMPLE', certificate: sdsName };
        if (l.clientValidation && !l.clientValidation.insecureFallback) {
          const caName = `frontend-ca://${gateway.key}/${l.listener.name}`;
          out.secrets.push({ name: caName, trustedCaPem: l.clientValidation.caPem });
          tls = { mode: 'MUTUAL', certificate: sdsName, validationContext: caName };
        }
        chains.push({ name: routeName, ...(hostname ? { match: { serverNames: [hostname] } } : {}), tls, routeConfigName: routeName });
      }
      if (chains.length === 0) continue;
      out.listeners.push({ name, address: { ...address }, direction: 'gateway', protocol: 'http', http: { routeConfigName: chains[0].routeConfigName!, http2: true }, filterChains: chains });
      continue;
    }

    const routeName = `http.${port}`;
    out.routeConfigs.push({ name: routeName, virtualHosts: virtualHostsOf(ctx, binding, gateway, listeners, port) });
    // HTTP/2 with prior knowledge beside HTTP/1.1: gRPC clients of a GRPCRoute speak it.
    out.listeners.push({ name, address: { ...address }, direction: 'gateway', protocol: 'http', http: { routeConfigName: routeName, http2: true } });
  }
  return out;
}

/** The virtual hosts of `listeners` (one port): a host per hostname their attached HTTPRoutes and GRPCRoutes serve. */
function virtualHostsOf(ctx: CompileContext, binding: GatewayApiBinding, gateway: GatewayState, listeners: ListenerState[], port: number): VirtualHost[] {
  const ref = gateway.key;
  const hosts = new Map<string, RouteState[]>();
  for (const l of listeners) {
    for (const route of binding.routes) {
      if (route.kind !== 'HTTPRoute' && route.kind !== 'GRPCRoute') continue;
      for (const parent of route.parents) {
        for (const a of parent.listeners) {
          if (a.gateway !== gateway || a.listener !== l) continue;
          for (const h of a.hostnames) {
            const list = hosts.get(h) ?? [];
            if (!list.includes(route)) list.push(route);
            hosts.set(h, list);
          }
        }
      }
    }
  }
  const virtualHosts: VirtualHost[] = [];
  for (const [host, routes] of hosts) {
    const rules = convertRoutes(routes, { port, domainSuffix: ctx.mesh.domainSuffix });
    virtualHosts.push({ name: `${host}:${port}`, domains: host === '*' ? ['*'] : [host, `${host}:*`], routes: routesOf(ctx, rules, gateway.resource.metadata.namespace, [host], [ref], port) });
  }
  // Listener isolation: a listener's hostname is its own even when no route serves it there,
  // so its requests never fall through to a less specific listener's routes (404 instead).
  for (const l of listeners) {
    const h = l.listener.hostname?.toLowerCase();
    if (h && !hosts.has(h)) virtualHosts.push({ name: `${h}:${port}`, domains: [h, `${h}:*`], routes: [] });
  }
  // Istio's empty gateway route table has a `blackhole:<port>` host: everything gets 404.
  if (virtualHosts.length === 0) virtualHosts.push({ name: `blackhole:${port}`, domains: ['*'], routes: [] });
  return virtualHosts;
}

/**
 * The chains of a port's TLS Passthrough listeners: one per attached TLSRoute (oldest first), its
 * hostnames there as SNI names (`*`: any name, or none), to the weighted backends of its rule.
 * A name an older route already has stays with it, as Istio's duplicate SNI check keeps the
 * first; a route whose backends all fail to resolve keeps its chain with no destination, so its
 * connections are closed rather than reaching another route. A name no route serves has no
 * chain: the proxy closes the connection.
 */
function tlsPassthroughChains(ctx: CompileContext, binding: GatewayApiBinding, gateway: GatewayState, listeners: ListenerState[], port: number): FilterChain[] {
  const chains: FilterChain[] = [];
  const claimed = new Set<string>();
  for (const l of listeners) {
    if (l.tlsMode !== 'Passthrough') continue;
    for (const route of binding.routes) {
      if (route.kind !== 'TLSRoute') continue;
      const hostnames = route.parents.flatMap((p) => p.listeners.filter((a) => a.gateway === gateway && a.listener === l).flatMap((a) => a.hostnames));
      if (hostnames.length === 0) continue;
      // `*` is every name: the chain without server names ('' stands for it).
      const names = [...new Set(hostnames.map((h) => (h === '*' ? '' : h.toLowerCase())))].filter((n) => !claimed.has(n)).sort();
      for (const n of names) claimed.add(n);
      const backends = (route.rules[0] ?? []).filter((b) => b.weight > 0 && b.service && !b.problem);
      const routes: TcpRoute[] = backends.length ? [{ destinations: backends.map((b) => ({ cluster: backendCluster(ctx, b, port), weight: b.weight })) }] : [];
      const named = names.filter((n) => n !== '');
      if (named.length) chains.push({ name: `${route.key}.${l.listener.name}`, match: { serverNames: named }, tcp: { routes } });
      if (names.includes('')) chains.push({ name: `${route.key}.${l.listener.name}.*`, tcp: { routes } });
    }
  }
  return chains;
}

/** The cluster of a resolved backend Service port. */
function backendCluster(ctx: CompileContext, b: BackendState, port: number): string {
  return destinationCluster(ctx, { host: `${b.service!.name}.${b.service!.namespace}.svc.${ctx.mesh.domainSuffix}`, port: { number: b.service!.port } }, b.namespace, port).cluster;
}

/** A TCP listener's routes: the oldest TCPRoute attached to it (the spec leaves several to the implementation; Istio takes the first). */
function tcpRoutes(ctx: CompileContext, binding: GatewayApiBinding, gateway: GatewayState, listener: ListenerState, port: number): TcpRoute[] {
  for (const route of binding.routes) {
    if (route.kind !== 'TCPRoute') continue;
    if (!route.parents.some((p) => p.listeners.some((a) => a.gateway === gateway && a.listener === listener))) continue;
    const backends = (route.rules[0] ?? []).filter((b) => b.weight > 0 && b.service && !b.problem);
    if (backends.length === 0) return [];
    return [
      {
        destinations: backends.map((b) => ({ cluster: backendCluster(ctx, b, port), weight: b.weight })),
      },
    ];
  }
  return [];
}
