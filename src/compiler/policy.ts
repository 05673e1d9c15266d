/**
 * DestinationRule traffic policies: Istio's merge rules and their translation into cluster
 * settings, with Istio's defaults filled in so the proxy never needs to know them.
 */
import type { ConnectionPool, HashPolicy, LoadBalancer, OutlierDetection, UpstreamTls } from '../api/proxy-config.js';
import type { ConnectionPoolSettings, LoadBalancerSettings, OutlierDetectionSpec, ClientTLSSettings, TrafficPolicy } from './istio-types.js';
import { durationMs } from './util.js';
import { fileCredentialNames } from './client-credentials.js';

/** Istio's default connect timeout (meshConfig.connectTimeout, 10 s). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** The four fields a policy carries for one cluster after merging. */
export interface ResolvedPolicy {
  connectionPool?: ConnectionPoolSettings;
  loadBalancer?: LoadBalancerSettings;
  outlierDetection?: OutlierDetectionSpec;
  tls?: ClientTLSSettings;
}

/**
 * Istio's MergeTrafficPolicy (pilot/pkg/model/destination_rule.go), for one port:
 * start from `original` (itself already narrowed to the port), replace each of
 * connectionPool / loadBalancer / outlierDetection / tls that `subset` sets, one whole
 * field at a time; then, if `subset` has portLevelSettings for the port, they replace all
 * four fields ("port level policies do not inherit and instead go to defaults if not
 * provided"). DESIGN.md behaviour 4.
 */
export function mergeTrafficPolicy(original: ResolvedPolicy | undefined, subset: TrafficPolicy | undefined, port: number): ResolvedPolicy | undefined {
  if (!subset) return original;
  const merged: ResolvedPolicy = { ...(original ?? {}) };
  if (subset.connectionPool) merged.connectionPool = subset.connectionPool;
  if (subset.loadBalancer) merged.loadBalancer = subset.loadBalancer;
  if (subset.outlierDetection) merged.outlierDetection = subset.outlierDetection;
  if (subset.tls) merged.tls = subset.tls;
  const portLevel = subset.portLevelSettings?.find((p) => p.port?.number === port);
  if (portLevel) {
    return {
      connectionPool: portLevel.connectionPool,
      loadBalancer: portLevel.loadBalancer,
      outlierDetection: portLevel.outlierDetection,
      tls: portLevel.tls,
    };
  }
  return merged;
}

/**
 * The policy for a cluster: the rule's top-level policy narrowed to the port, then the
 * subset's policy merged over it (Istio buildSubsetCluster does exactly these two steps).
 */
export function clusterPolicy(rulePolicy: TrafficPolicy | undefined, subsetPolicy: TrafficPolicy | undefined, port: number): ResolvedPolicy | undefined {
  const base = mergeTrafficPolicy(undefined, rulePolicy, port);
  return mergeTrafficPolicy(base, subsetPolicy, port);
}

/**
 * Load balancing. Istio's default is LEAST_REQUEST since 1.14 (release notes: "changed the
 * default load balancing algorithm to LEAST_REQUEST"); LEAST_CONN is its deprecated alias.
 * consistentHash -> RING_HASH (Envoy's default minimum ring 1024) or MAGLEV.
 */
export function loadBalancer(lb: LoadBalancerSettings | undefined, selfLocality?: string): LoadBalancer {
  const out: LoadBalancer = { policy: 'LEAST_REQUEST', choiceCount: 2 };
  if (lb?.consistentHash) {
    const ch = lb.consistentHash;
    if (ch.maglev) {
      out.policy = 'MAGLEV';
      delete out.choiceCount;
      out.tableSize = ch.maglev.tableSize ?? 65537;
    } else {
      out.policy = 'RING_HASH';
      delete out.choiceCount;
      out.minimumRingSize = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ?? 1024;
    }
  } else {
    switch (lb?.simple) {
      case 'ROUND_ROBIN':
        out.policy = 'ROUND_ROBIN';
        delete out.choiceCount;
        break;
      case 'RANDOM':
        out.policy = 'RANDOM';
        delete out.choiceCount;
        break;
      case 'PASSTHROUGH':
        out.policy = 'PASSTHROUGH';
        delete out.choiceCount;
        break;
      default: // UNSPECIFIED, LEAST_REQUEST, LEAST_CONN
        break;
    }
  }
  const warmup = durationMs(lb?.warmup?.duration ?? lb?.warmupDurationSecs);
  if (warmup) out.warmupMs = warmup;
  const loc = lb?.localityLbSetting;
  if (loc) {
    out.locality = {
      enabled: loc.enabled ?? true,
      ...(selfLocality ? { self: selfLocality } : {}),
      ...(loc.distribute ? { distribute: loc.distribute.map((d) => ({ from: d.from ?? '*', to: { ...(d.to ?? {}) } })) } : {}),
      ...(loc.failover ? { failover: loc.failover.map((f) => ({ from: f.from ?? '', to: f.to ?? '' })) } : {}),
      ...(loc.failoverPriority ? { failoverPriority: [...loc.failoverPriority] } : {}),
    };
  }
  return out;
}

/** The request hash a consistentHash load balancer needs (Istio sets it on the route). */
export function hashPolicy(lb: LoadBalancerSettings | undefined): HashPolicy | undefined {
  const ch = lb?.consistentHash;
  if (!ch) return undefined;
  if (ch.httpHeaderName) return { header: ch.httpHeaderName.toLowerCase() };
  if (ch.httpCookie) {
    const ttl = durationMs(ch.httpCookie.ttl);
    return { cookie: { name: ch.httpCookie.name, ...(ch.httpCookie.path ? { path: ch.httpCookie.path } : {}), ...(ttl !== undefined ? { ttlMs: ttl } : {}) } };
  }
  if (ch.useSourceIp) return { sourceIp: true };
  if (ch.httpQueryParameterName) return { queryParameter: ch.httpQueryParameterName };
  return undefined;
}

/**
 * Connection pool limits. Unset fields stay unset = unlimited: Istio sets Envoy's circuit
 * breakers to effectively unlimited (max_retries and friends = MaxUint32) unless configured.
 */
export function connectionPool(cp: ConnectionPoolSettings | undefined): { pool?: ConnectionPool; connectTimeoutMs: number } {
  const connectTimeoutMs = durationMs(cp?.tcp?.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!cp) return { connectTimeoutMs };
  const pool: ConnectionPool = {};
  const tcp = cp.tcp;
  const http = cp.http;
  if (tcp?.maxConnections !== undefined) pool.maxConnections = tcp.maxConnections;
  if (tcp?.tcpKeepalive) {
    const ka = tcp.tcpKeepalive;
    pool.tcpKeepalive = {
      ...(ka.probes !== undefined ? { probes: ka.probes } : {}),
      ...(durationMs(ka.time) !== undefined ? { timeMs: durationMs(ka.time) } : {}),
      ...(durationMs(ka.interval) !== undefined ? { intervalMs: durationMs(ka.interval) } : {}),
    };
  }
  const maxDuration = durationMs(tcp?.maxConnectionDuration);
  if (maxDuration) pool.maxConnectionDurationMs = maxDuration;
  // http.idleTimeout is Envoy's common idle timeout; tcp.idleTimeout applies to TCP proxying.
  const idle = durationMs(http?.idleTimeout) ?? durationMs(tcp?.idleTimeout);
  if (idle !== undefined) pool.idleTimeoutMs = idle;
  if (http?.http1MaxPendingRequests !== undefined) pool.http1MaxPendingRequests = http.http1MaxPendingRequests;
  if (http?.http2MaxRequests !== undefined) pool.http2MaxRequests = http.http2MaxRequests;
  if (http?.maxRequestsPerConnection !== undefined) pool.maxRequestsPerConnection = http.maxRequestsPerConnection;
  if (http?.maxRetries !== undefined) pool.maxRetries = http.maxRetries;
  if (http?.h2UpgradePolicy) pool.h2UpgradePolicy = http.h2UpgradePolicy;
  return { pool: Object.keys(pool).length ? pool : undefined, connectTimeoutMs };
}

/**
 * Outlier detection: none unless configured. When configured, Envoy's defaults fill what
 * Istio leaves unset (DESIGN.md behaviour 7): consecutive 5xx 5, interval 10 s, base
 * ejection 30 s, at most 10 % ejected. Istio's applyOutlierDetection: the deprecated
 * `consecutiveErrors` counts gateway errors only and turns 5xx counting off (istio/api#617);
 * `consecutive5xxErrors: 0` turns 5xx counting off.
 */
export function outlierDetection(od: OutlierDetectionSpec | undefined): OutlierDetection | undefined {
  if (!od) return undefined;
  const out: OutlierDetection = {
    intervalMs: durationMs(od.interval) ?? 10_000,
    baseEjectionTimeMs: durationMs(od.baseEjectionTime) ?? 30_000,
    maxEjectionPercent: od.maxEjectionPercent ?? 10,
  };
  if (od.consecutive5xxErrors !== undefined) {
    if (od.consecutive5xxErrors > 0) out.consecutive5xxErrors = od.consecutive5xxErrors;
  } else if (od.consecutiveErrors !== undefined && od.consecutiveErrors > 0) {
    out.consecutiveGatewayErrors = od.consecutiveErrors;
  } else {
    out.consecutive5xxErrors = 5;
  }
  if (od.consecutiveGatewayErrors !== undefined && od.consecutiveGatewayErrors > 0) out.consecutiveGatewayErrors = od.consecutiveGatewayErrors;
  if (od.splitExternalLocalOriginErrors) {
    out.splitExternalLocalOriginErrors = true;
    out.consecutiveLocalOriginFailures = od.consecutiveLocalOriginFailures ?? 5;
  }
  if (od.minHealthPercent !== undefined) out.minHealthPercent = od.minHealthPercent;
  return out;
}

/**
 * Upstream TLS. ISTIO_MUTUAL uses the proxy's own workload certificate (secret `default`)
 * and the mesh root (`ROOTCA`), the SDS names Istio uses; SIMPLE/MUTUAL with a
 * credentialName use that secret (Istio: `<name>` and `<name>-cacert`), and without one the
 * files they name (`file-cert:<chain>~<key>`, `file-root:<ca>`).
 */
export function upstreamTls(tls: ClientTLSSettings | undefined, defaultSni: string | undefined, mesh?: MeshPeer): UpstreamTls | undefined {
  if (!tls || !tls.mode || tls.mode === 'DISABLE') return undefined;
  if (tls.mode === 'ISTIO_MUTUAL') {
    const out = istioMutualTls(mesh ?? { sni: undefined, identities: [] });
    // A DestinationRule's own sni and subjectAltNames replace Istio's (buildIstioMutualTLS).
    if (tls.sni) out.sni = tls.sni;
    if (tls.subjectAltNames?.length) out.subjectAltNames = [...tls.subjectAltNames];
    return out;
  }
  const out: UpstreamTls = { mode: tls.mode };
  if (tls.credentialName) {
    if (tls.mode === 'MUTUAL') out.certificate = tls.credentialName;
    out.validationContext = `${tls.credentialName}-cacert`;
  } else {
    // Certificates named by file: the proxy reads them itself (client-credentials.ts).
    const files = fileCredentialNames(tls);
    if (files.certificate) out.certificate = files.certificate;
    if (files.validationContext) out.validationContext = files.validationContext;
  }
  const sni = tls.sni ?? defaultSni;
  if (sni) out.sni = sni;
  if (tls.subjectAltNames?.length) out.subjectAltNames = [...tls.subjectAltNames];
  if (tls.insecureSkipVerify) out.insecureSkipVerify = true;
  return out;
}

/** What Istio's mutual TLS to a mesh cluster is built from: its SNI and its endpoints' identities. */
export interface MeshPeer {
  /** Istio's `outbound_.<port>_.<subset>_.<host>` (model.BuildDNSSrvSubsetKey). */
  sni: string | undefined;
  /** The SPIFFE IDs of the cluster's endpoints, sorted: the server must prove one of them. */
  identities: readonly string[];
}

/**
 * Istio mutual TLS with the mesh's own credentials (Istio's buildIstioMutualTLS): the
 * workload certificate `default`, the roots `ROOTCA`, Istio's SNI for the cluster, and the
 * endpoints' service accounts as the SANs the server must carry (none known: any mesh
 * certificate, the chain having been verified).
 */
export function istioMutualTls(peer: MeshPeer): UpstreamTls {
  const out: UpstreamTls = { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA' };
  if (peer.sni) out.sni = peer.sni;
  if (peer.identities.length) out.subjectAltNames = [...peer.identities];
  return out;
}

/** Istio's SNI for a mesh cluster (model.BuildDNSSrvSubsetKey with TrafficDirectionOutbound). */
export function istioClusterSni(port: number, subset: string | undefined, host: string): string {
  return `outbound_.${port}_.${subset ?? ''}_.${host}`;
}
