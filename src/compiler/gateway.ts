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
 */
import type { DownstreamTls, FilterChain, Listener, Route, RouteConfiguration, Secret, TcpRoute, VirtualHost } from '../api/proxy-config.js';
import { ROOT_CA_SECRET, WORKLOAD_CERTIFICATE_SECRET, fileCertificateSecretName, fileRootSecretName } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import type { SecretSpec } from '../api/resources/secret.js';
import type { CompileContext, GatewayResource, VirtualServiceResource } from './context.js';
import type { Server } from './istio-types.js';
import { credentialOf } from '../semantics/credentials.js';
import { tlsVersion, usableCipherSuites } from '../semantics/tls.js';
import { toAddress } from './inputs.js';
import { httpConnectionManager } from './connection-manager.js';
import { buildVirtualServiceRoutes, destinationCluster, vsGateways } from './http-routes.js';
import { hostIntersection } from '../semantics/hosts.js';
import { selectorMatches } from '../semantics/labels.js';
import { isExportedTo } from '../semantics/visibility.js';
import { secretResourceName } from './gateway-api/gateway.js';

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

/** Whether a server terminates TLS at the gateway (and then speaks HTTP inside). */
function terminatesTls(server: Server): boolean {
  const mode = server.tls?.mode;
  return server.port.protocol.toUpperCase() === 'HTTPS' && mode !== undefined && mode !== 'PASSTHROUGH' && mode !== 'AUTO_PASSTHROUGH';
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
      out.listeners.push({
        name: listenerName,
        address: { ...address },
        direction: 'gateway',
        protocol: 'tcp',
        tcp: { routes: tcpRoutes(ctx, candidates, servers, port) },
      });
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
    for (const secret of credential.secrets) if (!out.secrets!.some((s) => s.name === secret.name)) out.secrets!.push(secret);
    chains.push({ name: routeName, ...(unclaimed.length ? { match: { serverNames: unclaimed } } : {}), tls: credential.tls, routeConfigName: routeName });
  }
  if (chains.length === 0) return undefined;
  // The listener's own table is the first chain's; every chain names its own.
  return { direction: 'gateway', protocol: 'http', http: httpConnectionManager({ routeConfigName: chains[0].routeConfigName!, http2: true }), filterChains: chains };
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
