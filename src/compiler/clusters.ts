/**
 * Outbound clusters and their endpoints (Istio's CDS/EDS for a proxy): one cluster per
 * service port, plus one per DestinationRule subset, named `outbound|<port>|<subset>|<fqdn>`.
 */
import {
  BLACKHOLE_CLUSTER,
  PASSTHROUGH_CLUSTER,
  outboundClusterName,
  type Cluster,
  type ClusterKind,
  type ClusterLoadAssignment,
  type Endpoint,
  type UpstreamTls,
} from '../api/proxy-config.js';
import type { RegistryService, RegistryServicePort, ServiceProtocol } from '../api/registry-snapshot.js';
import type { CompileContext } from './context.js';
import { clusterPolicy, connectionPool, istioClusterSni, istioMutualTls, loadBalancer, outlierDetection, upstreamTls, DEFAULT_CONNECT_TIMEOUT_MS } from './policy.js';
import { selectorMatches } from '../semantics/labels.js';
import { backendTlsOf } from './gateway-api/backend-tls.js';

/** Upstream protocol of a service port: HTTP/2 for http2 and gRPC, raw bytes for TCP-like ports. */
export function upstreamProtocol(p: ServiceProtocol): Cluster['protocol'] {
  switch (p) {
    case 'HTTP2':
    case 'GRPC':
    case 'GRPC-WEB':
      return 'http2';
    case 'HTTP':
    case 'UNSUPPORTED':
      return 'http1';
    default:
      return 'tcp';
  }
}

function clusterKind(service: RegistryService): ClusterKind {
  switch (service.resolution) {
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      return 'dns';
    case 'NONE':
      return 'originalDst';
    default:
      return 'eds';
  }
}

export interface ClusterSet {
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
}

/** One outbound cluster of a service, with its endpoints when the proxy is sent them (EDS and DNS clusters). */
export interface ServiceCluster {
  cluster: Cluster;
  endpoints?: ClusterLoadAssignment;
}

/** Clusters and endpoints for every service this proxy can see, plus Passthrough and BlackHole. */
export function buildOutboundClusters(ctx: CompileContext): ClusterSet {
  return joinClusters(ctx.visibleServices().map((service) => serviceClusters(ctx, service)));
}

/**
 * Each service's clusters in turn, then Passthrough and BlackHole. A name seen before (the
 * same host from two registries) keeps the first one's: services come in the order
 * `visibleServices` gives, the proxy's own namespace first.
 */
export function joinClusters(perService: readonly (readonly ServiceCluster[])[]): ClusterSet {
  const out: ClusterSet = { clusters: [], endpoints: [] };
  const seen = new Set<string>();
  for (const list of perService) {
    for (const { cluster, endpoints } of list) {
      if (seen.has(cluster.name)) continue;
      seen.add(cluster.name);
      out.clusters.push(cluster);
      if (endpoints) out.endpoints.push(endpoints);
    }
  }
  out.clusters.push(passthroughCluster(), blackholeCluster());
  return out;
}

/** A service's clusters: one per port, and one per port and DestinationRule subset. */
export function serviceClusters(ctx: CompileContext, service: RegistryService): ServiceCluster[] {
  const out: ServiceCluster[] = [];
  const dr = ctx.destinationRule(service);
  for (const port of service.ports) {
    if (port.protocol === 'UDP') continue;
    // Gateways: a BackendTLSPolicy on the port, in place of the DestinationRule's tls.
    const policyTls = backendTlsOf(ctx, service, port);
    const variants: { subset?: string; labels?: Record<string, string>; policy: ReturnType<typeof clusterPolicy> }[] = [
      { policy: clusterPolicy(dr?.trafficPolicy, undefined, port.port) },
    ];
    for (const s of dr?.subsets ?? []) variants.push({ subset: s.name, labels: s.labels, policy: clusterPolicy(dr?.trafficPolicy, s.trafficPolicy, port.port) });
    for (const v of variants) {
      const name = outboundClusterName(port.port, v.subset, service.hostname);
      const autoMtls = ctx.mesh.mtls === true && !v.policy?.tls && !policyTls;
      const endpoints = endpointsFor(service, port, v.labels, autoMtls ? ctx : undefined);
      const cluster = buildCluster(ctx, name, service, port, v.subset, v.policy, endpoints, autoMtls, policyTls);
      out.push(cluster.kind === 'eds' || cluster.kind === 'dns' ? { cluster, endpoints: { clusterName: name, endpoints } } : { cluster });
    }
  }
  return out;
}

function buildCluster(
  ctx: CompileContext,
  name: string,
  service: RegistryService,
  port: RegistryServicePort,
  subset: string | undefined,
  policy: ReturnType<typeof clusterPolicy>,
  endpoints: readonly Endpoint[],
  autoMtls: boolean,
  policyTls?: UpstreamTls,
): Cluster {
  const pool = connectionPool(policy?.connectionPool);
  const lb = loadBalancer(policy?.loadBalancer, ctx.locality());
  // Istio: `simple: PASSTHROUGH` makes the cluster ORIGINAL_DST, whatever the service.
  const kind = lb.policy === 'PASSTHROUGH' ? 'originalDst' : clusterKind(service);
  let protocol = upstreamProtocol(port.protocol);
  // h2UpgradePolicy is applied by the proxy (useClientProtocol is not yet, SNW0540); an
  // explicit UPGRADE on an HTTP/1.1 port means Istio speaks HTTP/2 upstream.
  if (protocol === 'http1' && policy?.connectionPool?.http?.h2UpgradePolicy === 'UPGRADE') protocol = 'http2';
  const cluster: Cluster = {
    name,
    kind,
    service: { host: service.hostname, namespace: service.namespace, name: service.name, port: port.port },
    protocol,
    connectTimeoutMs: pool.connectTimeoutMs,
    lb,
  };
  if (subset) cluster.subset = subset;
  // Istio's DNS is Envoy's STRICT_DNS (every address a host), DNS_ROUND_ROBIN its LOGICAL_DNS
  // (new connections to the first address of the latest answer); the proxy resolves.
  // Istio sets dns_refresh_rate from meshConfig.dnsRefreshRate and respect_dns_ttl, which the
  // proxy always honours (upstream/dns.ts).
  if (kind === 'dns') cluster.dns = { mode: service.resolution === 'DNS_ROUND_ROBIN' ? 'logical' : 'strict', ...(ctx.mesh.dnsRefreshRateMs !== undefined ? { refreshMs: ctx.mesh.dnsRefreshRateMs } : {}) };
  if (pool.pool) cluster.connectionPool = pool.pool;
  const od = outlierDetection(policy?.outlierDetection);
  if (od) cluster.outlierDetection = od;
  // Istio (applyLocalityLoadBalancer): locality failover needs outlier detection to notice
  // unhealthy endpoints, so without it only `distribute` is kept; with it, locality-aware
  // load balancing is on by default (meshConfig.localityLbSetting.enabled defaults to true).
  if (!od && lb.locality) {
    const { failover: _f, failoverPriority: _p, ...rest } = lb.locality;
    lb.locality = rest;
  } else if (od && !lb.locality) {
    const self = ctx.locality();
    lb.locality = { enabled: true, ...(self ? { self } : {}) };
  }
  const mesh = { sni: istioClusterSni(port.port, subset, service.hostname), identities: [...new Set(endpoints.flatMap((e) => (e.identity ? [e.identity] : [])))].sort() };
  const tls = policyTls ? { ...policyTls } : upstreamTls(policy?.tls, service.hostname, mesh);
  // TLS origination offers ALPN h2 to an HTTP/2 cluster and nothing otherwise (Istio's
  // buildUpstreamTLSContext for SIMPLE and MUTUAL: "This is HTTP/2 cluster, advertise it with ALPN").
  if (tls && tls.mode !== 'ISTIO_MUTUAL' && tls.alpn === undefined) tls.alpn = protocol === 'http2' ? ['h2'] : [];
  if (tls) cluster.tls = tls;
  // Istio's auto mTLS: without a DestinationRule tls, sidecar-backed endpoints get Istio
  // mutual TLS and the others plaintext (the endpoints' tlsMode says which), on TCP ports as on
  // HTTP ones (the TCP proxy connects through the same transport socket).
  if (autoMtls && kind !== 'originalDst' && endpoints.some((e) => e.tlsMode === 'istio')) {
    cluster.autoMtls = istioMutualTls({ sni: mesh.sni, identities: [...new Set(endpoints.flatMap((e) => (e.tlsMode === 'istio' && e.identity ? [e.identity] : [])))].sort() });
  }
  return cluster;
}

/**
 * The proxy's locality `region/zone/subzone` from the well-known topology labels
 * (`topology.kubernetes.io/region`, `topology.kubernetes.io/zone`, `topology.istio.io/subzone`),
 * as Istio reads it from the pod; undefined without a region.
 */
export function proxyLocality(labels: Readonly<Record<string, string>>): string | undefined {
  const region = labels['topology.kubernetes.io/region'];
  if (!region) return undefined;
  return [region, labels['topology.kubernetes.io/zone'] ?? '', labels['topology.istio.io/subzone'] ?? ''].join('/').replace(/\/+$/, '');
}

/**
 * Endpoints of a service port, narrowed to a subset's labels (DESIGN.md behaviour 4). With
 * `autoMtls` (auto mTLS on for the cluster), a sidecar-backed endpoint keeps `tlsMode: istio`
 * unless its workload's PeerAuthentication DISABLEs mutual TLS on that port (Istio's EDS
 * builder drops the label then, so that clients send plaintext to it).
 */
export function endpointsFor(
  service: RegistryService,
  port: RegistryServicePort,
  subsetLabels?: Readonly<Record<string, string>>,
  autoMtls?: Pick<CompileContext, 'peerMode'>,
): Endpoint[] {
  const list = service.endpoints[String(port.port)] ?? [];
  return list
    .filter((e) => selectorMatches(subsetLabels, e.labels))
    .map((e) => {
      const ep: Endpoint = { address: { host: e.address, port: e.port }, labels: e.labels, health: e.health };
      if (e.weight !== undefined) ep.weight = e.weight;
      if (e.locality) ep.locality = e.locality;
      if (e.identity) ep.identity = e.identity;
      if (autoMtls && e.tlsMode === 'istio' && autoMtls.peerMode(e.workload?.namespace ?? service.namespace, e.labels, e.targetPort) !== 'DISABLE') ep.tlsMode = 'istio';
      if (e.workload) ep.workload = { ...e.workload };
      if (e.healthCheck) ep.healthCheck = { ...e.healthCheck };
      return ep;
    });
}

/** Istio's PassthroughCluster: forward to the address the client asked for (ALLOW_ANY). */
export function passthroughCluster(): Cluster {
  return { name: PASSTHROUGH_CLUSTER, kind: 'originalDst', protocol: 'http1', connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS, lb: { policy: 'PASSTHROUGH' } };
}

/** Istio's BlackHoleCluster: every request fails with 502 (REGISTRY_ONLY). */
export function blackholeCluster(): Cluster {
  return { name: BLACKHOLE_CLUSTER, kind: 'blackhole', protocol: 'http1', connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS, lb: { policy: 'ROUND_ROBIN' } };
}
