/**
 * Gateway proxies (node mode `router`): one listener per server port of the Gateways that
 * select the proxy, route table `http.<port>`, virtual hosts from the VirtualServices bound
 * to those Gateways whose hosts meet the server's hosts (Istio's buildGatewayHTTPRouteConfig
 * and BuildGatewayVirtualHosts).
 *
 * A port whose servers terminate TLS (HTTPS with SIMPLE, MUTUAL, OPTIONAL_MUTUAL or
 * ISTIO_MUTUAL) gets a filter chain per server, chosen by the SNI the client sent (the
 * server's hosts), each with the server's credential and a route table of its own,
 * `https.<port>.<port name>.<gateway>.<namespace>` (Istio's gatewayRDSRouteName): a client that
 * asked for one server's name reaches that server's routes only. Credentials come from the
 * Secret named by `credentialName` in the gateway's namespace (Istio's `kubernetes://<name>`),
 * and are pushed to the gateway proxies that use them only; or from files on the gateway's
 * machine (`serverCertificate`, ...), which the gateway reads itself.
 *
 * A port whose servers are not HTTP inside (TCP, TLS passed through or terminated) gets a TCP
 * listener (`tcpListener`): with TLS servers on it, a filter chain per PASSTHROUGH `tls` route
 * match, per AUTO_PASSTHROUGH service cluster and per terminating server, chosen by SNI without
 * decrypting. Istio also puts HTTPS-terminating and PASSTHROUGH servers of one port on one
 * listener; Sinew's listeners are HTTP or TCP, so a port keeps the kind of its first server and
 * drops servers of the other kind.
 */
import type { DownstreamTls, FilterChain, Listener, Route, RouteConfiguration, Secret, TcpRoute, VirtualHost, WeightedCluster } from '../api/proxy-config.js';
import { ROOT_CA_SECRET, WORKLOAD_CERTIFICATE_SECRET, fileCertificateSecretName, fileRootSecretName, outboundClusterName } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import type { SecretSpec } from '../api/resources/secret.js';
import type { CompileContext, GatewayResource, VirtualServiceResource } from './context.js';
import type { Destination, L4MatchAttributes, Server } from './istio-types.js';
import type { TLSMatchAttributes } from '../api/resources/virtual-service.js';
import { credentialOf } from '../semantics/credentials.js';
import { serverSpeaksHttp, tlsVersion, usableCipherSuites } from '../semantics/tls.js';
import { toAddress } from './inputs.js';
import { httpConnectionManager } from './connection-manager.js';
import { buildVirtualServiceRoutes, destinationCluster, vsGateways } from './http-routes.js';
import { hostIntersection, hostSubsetOf } from '../semantics/hosts.js';
import { istioClusterSni } from './policy.js';

import { selectorMatches } from '../semantics/labels.js';
import { isExportedTo } from '../semantics/visibility.js';
import { secretResourceName } from './gateway-api/gateway.js';

interface BoundServer {
  gateway: GatewayResource;
  /** `namespace/name` of the gateway. */
  ref: string;
  server: Server;
}

// HTTPS terminated at the gateway is HTTP inside; PASSTHROUGH stays TLS bytes.
const isHttpServer = (s: Server): boolean => serverSpeaksHttp(s);

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

/** Whether a server terminates TLS at the gateway (and then speaks HTTP inside). */
function terminatesTls(server: Server): boolean {
  const mode = server.tls?.mode;
  return server.port.protocol.toUpperCase() === 'HTTPS' && mode !== undefined && mode !== 'PASSTHROUGH' && mode !== 'AUTO_PASSTHROUGH';
}

/**
 * How a server that is not HTTP inside handles TLS (Istio's createGatewayTCPFilterChainOpts):
 * `plain` TCP (no tls), `terminate` (protocol TLS with SIMPLE, MUTUAL...: then its tcp routes),
 * `passthrough` (its VirtualServices' tls routes, by SNI) or `auto` (AUTO_PASSTHROUGH: the
 * service the SNI names). An unset mode is PASSTHROUGH, the enum's zero value
 * (gateway.IsPassThroughServer).
 */
function tlsHandling(server: Server): 'plain' | 'terminate' | 'passthrough' | 'auto' {
  const protocol = server.port.protocol.toUpperCase();
  if (!server.tls || (protocol !== 'HTTPS' && protocol !== 'TLS')) return 'plain';
  const mode = server.tls.mode ?? 'PASSTHROUGH';
  if (mode === 'AUTO_PASSTHROUGH') return 'auto';
  return mode === 'PASSTHROUGH' ? 'passthrough' : 'terminate';
}

/** A terminating server's transport settings and the secrets they name, or why it cannot be served. */
type ServerCredential = { tls: DownstreamTls; secrets: Secret[] } | { problem: string };

/**
 * The TLS of a terminating server (Istio's buildGatewayListenerTLSContext): SIMPLE presents the
 * credential; MUTUAL also verifies clients against its CA (the Secret's `ca.crt`/`cacert`, or
 * the `<name>-cacert` Secret), OPTIONAL_MUTUAL verifies a certificate only when one is sent;
 * ISTIO_MUTUAL uses the gateway's workload certificate and the mesh's roots.
 */
function serverCredential(ctx: CompileContext, server: Server, secrets: (name: string) => Resource<SecretSpec> | undefined): ServerCredential {
  const t = server.tls!;
  const settings: Omit<DownstreamTls, 'mode' | 'certificate'> = {};
  const min = tlsVersion(t.minProtocolVersion);
  const max = tlsVersion(t.maxProtocolVersion);
  if (min) settings.minProtocolVersion = min;
  if (max) settings.maxProtocolVersion = max;
  const ciphers = usableCipherSuites(t.cipherSuites);
  if (ciphers.length) settings.cipherSuites = ciphers;
  if (t.subjectAltNames?.length) settings.subjectAltNames = [...t.subjectAltNames];
  if (t.mode === 'ISTIO_MUTUAL') return { tls: { mode: 'ISTIO_MUTUAL', certificate: WORKLOAD_CERTIFICATE_SECRET, validationContext: ROOT_CA_SECRET, ...settings }, secrets: [] };
  const name = t.credentialName ?? t.credentialNames?.[0];
  if (name === undefined) return fileCredential(t, settings);
  const namespace = ctx.node.namespace;
  const secret = secrets(name);
  const credential = secret ? credentialOf(secret.spec) : undefined;
  if (!credential?.certificateChainPem || !credential.privateKeyPem) return { problem: `credential ${namespace}/${name} ${secret ? 'holds no certificate and key' : 'does not exist'}` };
  const certificate = secretResourceName(namespace, name);
  const out: Secret[] = [{ name: certificate, certificateChainPem: credential.certificateChainPem, privateKeyPem: credential.privateKeyPem }];
  if (t.mode !== 'MUTUAL' && t.mode !== 'OPTIONAL_MUTUAL') return { tls: { mode: 'SIMPLE', certificate, ...settings }, secrets: out };
  const caPem = credential.caPem ?? credentialOf(secrets(`${name}-cacert`)?.spec ?? {}).caPem;
  if (!caPem) return { problem: `${t.mode} needs a CA to verify clients: neither ${namespace}/${name} (ca.crt) nor ${namespace}/${name}-cacert holds one` };
  const validationContext = `${certificate}-cacert`;
  out.push({ name: validationContext, trustedCaPem: caPem });
  const tls: DownstreamTls = { mode: 'MUTUAL', certificate, validationContext, ...settings };
  if (t.mode === 'OPTIONAL_MUTUAL') tls.clientCertificateOptional = true;
  return { tls, secrets: out };
}

/**
 * A server whose certificate is named by file (`serverCertificate`, `privateKey`, and
 * `caCertificates` for MUTUAL): paths on the gateway's own machine, which the gateway proxy
 * reads and watches itself (Istio's `file-cert:` / `file-root:` SDS names); the push carries
 * the paths only.
 */
function fileCredential(t: NonNullable<Server['tls']>, settings: Omit<DownstreamTls, 'mode' | 'certificate'>): ServerCredential {
  if (!t.serverCertificate || !t.privateKey) return { problem: 'names neither a credentialName nor both serverCertificate and privateKey' };
  const certificate = fileCertificateSecretName(t.serverCertificate, t.privateKey);
  const out: Secret[] = [{ name: certificate, files: { certificateChain: t.serverCertificate, privateKey: t.privateKey } }];
  if (t.mode !== 'MUTUAL' && t.mode !== 'OPTIONAL_MUTUAL') return { tls: { mode: 'SIMPLE', certificate, ...settings }, secrets: out };
  if (!t.caCertificates) return { problem: `${t.mode} needs caCertificates to verify clients` };
  const validationContext = fileRootSecretName(t.caCertificates);
  out.push({ name: validationContext, files: { trustedCa: t.caCertificates } });
  const tls: DownstreamTls = { mode: 'MUTUAL', certificate, validationContext, ...settings };
  if (t.mode === 'OPTIONAL_MUTUAL') tls.clientCertificateOptional = true;
  return { tls, secrets: out };
}

/**
 * The SNI names a server's chain matches (Istio's getSNIHostsForServer): its hosts without the
 * namespace part; none (any name, or none sent) when a host is `*`.
 */
function serverNames(server: Server, gatewayNamespace: string): string[] {
  const names = (server.hosts ?? []).map((h) => serverHost(h, gatewayNamespace).host);
  return names.includes('*') ? [] : [...new Set(names)].sort();
}

export interface GatewayResult {
  listeners: Listener[];
  routeConfigs: RouteConfiguration[];
  /** The credentials its listeners present (only a gateway that names them gets them). */
  secrets?: Secret[];
}

export function buildGateway(ctx: CompileContext): GatewayResult {
  const out: GatewayResult = { listeners: [], routeConfigs: [], secrets: [] };
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
  let secretIndex: Map<string, Resource<SecretSpec>> | undefined;
  // Credentials live in the gateway's own namespace, as Istio's gateways read them.
  const secretNamed = (name: string) => {
    secretIndex ??= new Map(ctx.resources.filter((r) => r.kind === 'Secret' && r.group === '' && r.metadata.namespace === ctx.node.namespace).map((r) => [r.metadata.name, r as Resource<SecretSpec>]));
    return secretIndex.get(name);
  };
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const servers = byPort.get(port)!;
    const mapped = ctx.ports.gateway?.[port];
    const address = mapped === undefined ? { host: '0.0.0.0', port } : toAddress(mapped);
    const listenerName = `${address.host}_${address.port}`;
    // Servers sharing a port are served by one listener of the first server's kind: plain
    // HTTP, TLS terminated per server, or TCP (Istio keeps the first and drops servers of
    // another protocol on the port).
    const first = servers[0].server;
    if (terminatesTls(first)) {
      const listener = httpsListener(ctx, candidates, servers.filter((b) => terminatesTls(b.server)), port, secretNamed, out);
      if (listener) out.listeners.push({ name: listenerName, address: { ...address }, ...listener });
    } else if (isHttpServer(first)) {
      const routeName = `http.${port}`;
      const httpServers = servers.filter((b) => isHttpServer(b.server) && !terminatesTls(b.server));
      let virtualHosts = virtualHostsFor(ctx, candidates, httpServers, port);
      // httpsRedirect: every plaintext request on the port gets a 301 to https.
      if (httpServers.some((b) => b.server.tls?.httpsRedirect)) virtualHosts = virtualHosts.map((v) => ({ ...v, requireTls: true }));
      out.routeConfigs.push({ name: routeName, virtualHosts });
      const listener: Listener = {
        name: listenerName,
        address: { ...address },
        direction: 'gateway',
        protocol: 'http',
        // Istio's gateway connection managers take codec AUTO whatever the server's protocol:
        // HTTP/2 with prior knowledge is served beside HTTP/1.1 (a sidecar calls the egress
        // gateway's port 80, named http2, that way).
        http: httpConnectionManager({ routeConfigName: routeName, http2: true }),
      };
      out.listeners.push(listener);
    } else {
      const listener = tcpListener(ctx, candidates, servers.filter((b) => !isHttpServer(b.server)), port, secretNamed, out);
      if (listener) out.listeners.push({ name: listenerName, address: { ...address }, ...listener });
    }
  }
  if (out.secrets!.length === 0) delete out.secrets;
  return out;
}

/**
 * The virtual hosts of `servers` (one port): every VirtualService bound to one of their
 * gateways, for the hosts it shares with a server. Istio's empty gateway route table has a
 * `blackhole:<port>` host: everything gets 404.
 */
function virtualHostsFor(ctx: CompileContext, candidates: VirtualServiceResource[], servers: BoundServer[], port: number): VirtualHost[] {
  const hosts = new Map<string, VirtualHost>();
  for (const bound of servers) {
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
  const virtualHosts = [...hosts.values()];
  return virtualHosts.length > 0 ? virtualHosts : [{ name: `blackhole:${port}`, domains: ['*'], routes: [] }];
}

/** Adds the credentials a chain presents to the gateway's secrets, each once (servers may share one). */
function addSecrets(out: GatewayResult, secrets: readonly Secret[]): void {
  for (const secret of secrets) if (!out.secrets!.some((s) => s.name === secret.name)) out.secrets!.push(secret);
}

/**
 * A port whose servers terminate TLS: a filter chain per server that can be served (SNI from
 * its hosts, its credential, its own route table). A server whose credential is missing is
 * left out, as Envoy keeps a chain whose secret has not arrived warming, while the others
 * serve; so is a server whose SNI names another server on the port already has (Istio's
 * duplicate-server rule: the first wins). No chain left: no listener.
 */
function httpsListener(
  ctx: CompileContext,
  candidates: VirtualServiceResource[],
  servers: BoundServer[],
  port: number,
  secretNamed: (name: string) => Resource<SecretSpec> | undefined,
  out: GatewayResult,
): Omit<Listener, 'name' | 'address'> | undefined {
  const chains: FilterChain[] = [];
  const claimed = new Set<string>();
  for (const bound of servers) {
    const credential = serverCredential(ctx, bound.server, secretNamed);
    if ('problem' in credential) continue;
    const names = serverNames(bound.server, bound.gateway.metadata.namespace);
    const unclaimed = names.filter((n) => !claimed.has(n));
    if ((names.length === 0 && claimed.has('')) || (names.length > 0 && unclaimed.length === 0)) continue;
    for (const n of names.length ? unclaimed : ['']) claimed.add(n);
    const { name: gatewayName, namespace } = bound.gateway.metadata;
    let routeName = `https.${port}.${bound.server.port.name}.${gatewayName}.${namespace}`;
    if (out.routeConfigs.some((r) => r.name === routeName)) routeName += `.${chains.length}`;
    out.routeConfigs.push({ name: routeName, virtualHosts: virtualHostsFor(ctx, candidates, [bound], port) });
    addSecrets(out, credential.secrets);
    chains.push({ name: routeName, ...(unclaimed.length ? { match: { serverNames: unclaimed } } : {}), tls: credential.tls, routeConfigName: routeName });
  }
  if (chains.length === 0) return undefined;
  // The listener's own table is the first chain's; every chain names its own.
  return { direction: 'gateway', protocol: 'http', http: httpConnectionManager({ routeConfigName: chains[0].routeConfigName!, http2: true }), filterChains: chains };
}

/**
 * A VirtualService's L4 match (a `tcp` or `tls` rule's) at a gateway server: its port, the
 * gateways it names, and the source labels and namespace, which at a gateway are the gateway
 * proxy's own (Istio's l4SingleMatch, with the source conditions sidecars apply too). An absent
 * match applies everywhere.
 */
function l4MatchApplies(ctx: CompileContext, m: L4MatchAttributes | TLSMatchAttributes | undefined, vsNamespace: string, refs: string[], port: number): boolean {
  return (
    !m ||
    ((!m.port || m.port === port) &&
      (!m.gateways?.length || vsGateways(m.gateways, vsNamespace).some((g) => refs.includes(g))) &&
      selectorMatches(m.sourceLabels, ctx.node.labels) &&
      (!m.sourceNamespace || m.sourceNamespace === ctx.node.namespace))
  );
}

/** The VirtualServices bound to `bound`'s gateway, visible from it, that share a host with the server. */
function boundVirtualServices(ctx: CompileContext, candidates: VirtualServiceResource[], bound: BoundServer): VirtualServiceResource[] {
  return candidates.filter(
    (vs) =>
      vsGateways(vs.spec.gateways, vs.metadata.namespace).includes(bound.ref) &&
      isExportedTo(vs.spec.exportTo, vs.metadata.namespace, bound.gateway.metadata.namespace) &&
      servedHosts(ctx, vs, bound).length > 0,
  );
}

/** A route's destinations as weighted clusters (one destination without a weight takes it all). */
function weighted(ctx: CompileContext, route: readonly { destination: Destination; weight?: number }[], namespace: string, port: number): WeightedCluster[] {
  return route.map((d) => ({ cluster: destinationCluster(ctx, d.destination, namespace, port).cluster, weight: d.weight ?? (route.length === 1 ? 100 : 0) }));
}

/** VirtualService `tcp` routes for a gateway TCP server (Istio buildGatewayNetworkFiltersFromTCPRoutes). */
function tcpRoutes(ctx: CompileContext, candidates: VirtualServiceResource[], servers: BoundServer[], port: number): TcpRoute[] {
  const routes: TcpRoute[] = [];
  const refs = servers.map((s) => s.ref);
  for (const bound of servers) {
    for (const vs of boundVirtualServices(ctx, candidates, bound)) {
      const ns = vs.metadata.namespace;
      for (const rule of vs.spec.tcp ?? []) {
        const matches = rule.match?.length ? rule.match : [undefined];
        if (!matches.some((m) => l4MatchApplies(ctx, m, ns, refs, port))) continue;
        routes.push({ destinations: weighted(ctx, rule.route ?? [], ns, port) });
      }
    }
  }
  return routes;
}

/**
 * Istio's ALPN ids of its mutual TLS (allIstioMtlsALPNs): AUTO_PASSTHROUGH chains match them
 * only, so that what passes through is a sidecar's mutual TLS, never a client's own TLS.
 */
const ISTIO_MTLS_ALPNS = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];

/**
 * A port whose servers are not HTTP inside (Istio's buildGatewayTCPBasedFilterChains): a TCP
 * listener. Plain TCP servers alone keep the listener's own routes, as before; with TLS servers
 * on the port each becomes filter chains chosen by SNI, as Envoy's filter_chain_match:
 *
 *   PASSTHROUGH       a chain per match of the bound VirtualServices' `tls` rules, its `sniHosts`
 *                     as server names, routing the still-encrypted bytes to the rule's weighted
 *                     destinations (Istio's buildGatewayNetworkFiltersFromTLSRoutes); a name an
 *                     earlier rule claimed is left to it (Istio's duplicate SNI check)
 *   AUTO_PASSTHROUGH  a chain per service port (and DestinationRule subset) the server's hosts
 *                     cover, matching the SNI `outbound_.<port>_.<subset>_.<host>` a sidecar's
 *                     mutual TLS carries and Istio's mTLS ALPN ids, to that cluster
 *                     (builtAutoPassthroughFilterChains)
 *   TLS terminated    a chain with the server's hosts as names and its credential, then the
 *                     server's `tcp` routes
 *   plain TCP         the chain without a match, for every other connection
 *
 * A connection no chain matches (an SNI no route names, with no plain server) is closed, as
 * Envoy does (`listener_no_filter_chain_match`). No chain at all: no listener.
 */
function tcpListener(
  ctx: CompileContext,
  candidates: VirtualServiceResource[],
  servers: BoundServer[],
  port: number,
  secretNamed: (name: string) => Resource<SecretSpec> | undefined,
  out: GatewayResult,
): Omit<Listener, 'name' | 'address'> | undefined {
  const plain = servers.filter((b) => tlsHandling(b.server) === 'plain');
  if (plain.length === servers.length) return { direction: 'gateway', protocol: 'tcp', tcp: { routes: tcpRoutes(ctx, candidates, servers, port) } };
  const chains: FilterChain[] = [];
  const claimed = new Set<string>();
  /** The names not yet claimed by an earlier chain (Envoy refuses two chains with one match). */
  const claim = (names: string[]) => {
    const fresh = [...new Set(names.map((n) => n.toLowerCase()))].filter((n) => !claimed.has(n)).sort();
    for (const n of fresh) claimed.add(n);
    return fresh;
  };
  for (const bound of servers) {
    const handling = tlsHandling(bound.server);
    const refs = [bound.ref];
    if (handling === 'passthrough') {
      for (const vs of boundVirtualServices(ctx, candidates, bound)) {
        const ns = vs.metadata.namespace;
        for (const [i, rule] of (vs.spec.tls ?? []).entries()) {
          if (!rule.route?.length) continue;
          for (const [j, m] of rule.match.entries()) {
            if (!l4MatchApplies(ctx, m, ns, refs, port)) continue;
            // `*` is any name (and none): the chain without server names, claimed as ''.
            const names = claim(m.sniHosts.map((h) => (h === '*' ? '' : h)));
            const tcp = { routes: [{ destinations: weighted(ctx, rule.route, ns, port) }] };
            const named = names.filter((n) => n !== '');
            if (named.length) chains.push({ name: `${ns}/${vs.metadata.name}/tls/${i}.${j}`, match: { serverNames: named }, tcp });
            if (names.includes('')) chains.push({ name: `${ns}/${vs.metadata.name}/tls/${i}.${j}.*`, tcp });
          }
        }
      }
    } else if (handling === 'auto') {
      chains.push(...autoPassthroughChains(ctx, bound, claim));
    } else if (handling === 'terminate') {
      const credential = serverCredential(ctx, bound.server, secretNamed);
      if ('problem' in credential) continue;
      const names = serverNames(bound.server, bound.gateway.metadata.namespace);
      const fresh = names.length ? claim(names) : [];
      if (names.length > 0 && fresh.length === 0) continue;
      if (names.length === 0 && chains.some((c) => !c.match)) continue;
      addSecrets(out, credential.secrets);
      const { name: gatewayName, namespace } = bound.gateway.metadata;
      chains.push({ name: `tls.${port}.${bound.server.port.name}.${gatewayName}.${namespace}`, ...(fresh.length ? { match: { serverNames: fresh } } : {}), tls: credential.tls, tcp: { routes: tcpRoutes(ctx, candidates, [bound], port) } });
    }
  }
  // Plain TCP servers share one chain without a match: every connection no other chain takes.
  if (plain.length > 0 && !chains.some((c) => !c.match)) chains.push({ name: `tcp.${port}`, tcp: { routes: tcpRoutes(ctx, candidates, plain, port) } });
  if (chains.length === 0) return undefined;
  return { direction: 'gateway', protocol: 'tcp', filterChains: chains };
}

/**
 * AUTO_PASSTHROUGH (Istio's multi-network gateway): a chain per port of every mesh-internal
 * service the server's hosts cover, and per DestinationRule subset of it, matching the SNI a
 * sidecar's mutual TLS carries for that cluster and Istio's mTLS ALPN ids.
 */
function autoPassthroughChains(ctx: CompileContext, bound: BoundServer, claim: (names: string[]) => string[]): FilterChain[] {
  const hosts = (bound.server.hosts ?? []).map((h) => serverHost(h, bound.gateway.metadata.namespace).host);
  const chains: FilterChain[] = [];
  const services = ctx
    .visibleServices()
    .filter((s) => s.location !== 'MESH_EXTERNAL' && hosts.some((h) => hostSubsetOf(s.hostname, h)))
    .sort((a, b) => a.hostname.localeCompare(b.hostname));
  for (const service of services) {
    const subsets = [undefined, ...(ctx.destinationRule(service)?.subsets ?? []).map((s) => s.name)];
    for (const { port } of service.ports) {
      for (const subset of subsets) {
        const names = claim([istioClusterSni(port, subset, service.hostname)]);
        if (names.length === 0) continue;
        const cluster = outboundClusterName(port, subset, service.hostname);
        chains.push({ name: cluster, match: { serverNames: names, transportProtocol: 'tls', applicationProtocols: [...ISTIO_MTLS_ALPNS] }, tcp: { routes: [{ destinations: [{ cluster, weight: 100 }] }] } });
      }
    }
  }
  return chains;
}
