/**
 * Istio's standard metrics, recorded from proxy events with prom-client.
 *
 * Names, buckets and the label set follow "Istio Standard Metrics"
 * (istio.io/latest/docs/reference/config/telemetry/metrics/) and istio/proxy's stats filter:
 * every label is always present, an unknown value is the string `unknown`, `reporter` is
 * `destination` on the server sidecar and `source` on the client sidecar or a gateway, and
 * `connection_security_policy` is `unknown` for the source reporter (it cannot know the
 * server's policy), else `mutual_tls` or `none`. Active health checks reaching an inbound
 * sidecar are not counted (`HEALTH_CHECK_USER_AGENT`), as Istio never counts probes.
 *
 * Besides the `istio_*` families, the proxy's own health is exported under Envoy's names for
 * the same counters (so Istio dashboards and runbooks apply) and a few `sinew_*` ones:
 *   envoy_cluster_upstream_rq_pending_overflow{cluster_name}   requests refused by circuit breaking (flag UO)
 *   envoy_cluster_upstream_rq_retry{cluster_name}              retries (attempts beyond the first)
 *   envoy_cluster_outlier_detection_ejections_enforced_total{cluster_name}
 *   envoy_cluster_outlier_detection_ejections_active{cluster_name}   (gauge)
 *   sinew_proxy_response_flags_total{response_flags}           every reply the proxy made itself, by flag
 *   sinew_proxy_config_updates_total{result="accepted|rejected"}
 *   sinew_proxy_config_version_info{version}                   1 for the config version in force
 *   sinew_metrics_merge_dropped_lines_total                    application lines refused by merge()
 *   sinew_telemetry_record_errors_total                        events that could not be recorded
 */
import { Counter, Gauge, Registry } from './prom-client-core.js';
import { BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER, type ProxyNode } from '../api/proxy-config.js';
import { HEALTH_CHECK_USER_AGENT, isPeerHealthCheck } from './events.js';
import {
  foreignEvent,
  telemetryChannels,
  type TelemetryConfigEvent,
  type TelemetryRequestEvent,
  type TelemetryTcpEvent,
  type TelemetryUpstreamEvent,
} from './events.js';
import { peerMetadataFromNode, type LocalIdentityOptions, type PeerMetadata } from './peer-metadata.js';
import { newHistogramCell, observe, StoredCounter, StoredHistogram, type HistogramCell } from './stored-families.js';

export const REQUEST_DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];
export const BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000];

const PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
] as const;

/** The label set of the HTTP families, in Istio's order. */
export const HTTP_LABELS = [...PEER_LABELS, 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy'] as const;
/** The TCP families carry no response code or gRPC status (Istio's TCP metrics). */
export const TCP_LABELS = [...PEER_LABELS, 'response_flags', 'connection_security_policy'] as const;


const UNKNOWN = 'unknown';

export { HEALTH_CHECK_USER_AGENT };

/** The two ends of a request as seen by the reporting proxy. */
export interface PeerInfo {
  /** The reporting proxy's own node. */
  local: ProxyNode;
  /** The other sidecar's metadata (from `x-envoy-peer-metadata`), when it sent any. */
  remote?: PeerMetadata;
  /** Overrides the event's `mtls`. */
  mtls?: boolean;
  /** Cluster id / trust domain / mesh id of the local proxy. */
  identity?: LocalIdentityOptions;
}

export interface MeshMetricsOptions {
  /** Register into this registry instead of a fresh one (no global registry: STYLE.md). */
  registry?: Registry;
}

/**
 * Metrics of one proxy. Recording is synchronous and allocation-light; rendering is async.
 * The Istio families' series are kept here (./stored-families.ts says why), prom-client's
 * Counter and Gauge serve the proxy's own, rarely-updated families.
 */
export class MeshMetrics {
  readonly registry: Registry;
  private readonly overflow: Counter<'cluster_name'>;
  private readonly retries: Counter<'cluster_name'>;
  private readonly ejections: Counter<'cluster_name'>;
  private readonly ejectionsActive: Gauge<'cluster_name'>;
  private readonly flagCounts: Counter<'response_flags'>;
  private readonly configUpdates: Counter<'result'>;
  private readonly configVersion: Gauge<'version'>;
  private readonly mergeDropped: Counter<string>;
  private readonly recordErrors: Counter<string>;
  private readonly localCache = new WeakMap<ProxyNode, PeerMetadata>();
  /** Every series of the HTTP and TCP families, in creation order (what a scrape renders). */
  private readonly httpSeries: HttpSeries[] = [];
  private readonly tcpSeries: TcpSeries[] = [];
  /** The same series by their label values, consulted when the lookup cache misses. */
  private readonly httpByLabels = new Map<string, HttpSeries>();
  private readonly tcpByLabels = new Map<string, TcpSeries>();
  /** Lookup cache: nested maps keyed by the values the labels derive from (bounded, see `remember`). */
  private httpLookup: Level = new Map();
  private tcpLookup: Level = new Map();
  private seriesCount = 0;

  constructor(options: MeshMetricsOptions = {}) {
    const registry = (this.registry = options.registry ?? new Registry());
    const registers = [registry];
    const http = () => this.httpSeries;
    const tcp = () => this.tcpSeries;
    new StoredCounter<HttpSeries>(
      { name: 'istio_requests_total', help: 'Requests handled by an Istio proxy.', series: http, read: (s) => s.requests, clear: (s) => (s.requests = undefined) },
      registry,
    );
    const histogram = (name: string, help: string, bounds: readonly number[], field: 'duration' | 'requestBytes' | 'responseBytes') =>
      new StoredHistogram<HttpSeries>({ name, help, bounds, series: http, read: (s) => s[field], clear: (s) => (s[field] = undefined) }, registry);
    histogram('istio_request_duration_milliseconds', 'Request duration in milliseconds.', REQUEST_DURATION_BUCKETS, 'duration');
    histogram('istio_request_bytes', 'HTTP request body sizes.', BYTES_BUCKETS, 'requestBytes');
    histogram('istio_response_bytes', 'HTTP response body sizes.', BYTES_BUCKETS, 'responseBytes');
    const tcpCounter = (name: string, help: string, field: 'sent' | 'received' | 'opened' | 'closed') =>
      new StoredCounter<TcpSeries>({ name, help, series: tcp, read: (s) => s[field], clear: (s) => (s[field] = undefined) }, registry);
    tcpCounter('istio_tcp_sent_bytes_total', 'Bytes sent during response in a TCP connection.', 'sent');
    tcpCounter('istio_tcp_received_bytes_total', 'Bytes received during request in a TCP connection.', 'received');
    tcpCounter('istio_tcp_connections_opened_total', 'TCP connections opened.', 'opened');
    tcpCounter('istio_tcp_connections_closed_total', 'TCP connections closed.', 'closed');
    this.overflow = new Counter({
      name: 'envoy_cluster_upstream_rq_pending_overflow',
      help: 'Requests refused because the cluster circuit breaker was open (response flag UO).',
      labelNames: ['cluster_name'],
      registers,
    });
    this.retries = new Counter({ name: 'envoy_cluster_upstream_rq_retry', help: 'Request retries.', labelNames: ['cluster_name'], registers });
    this.ejections = new Counter({
      name: 'envoy_cluster_outlier_detection_ejections_enforced_total',
      help: 'Hosts ejected by outlier detection.',
      labelNames: ['cluster_name'],
      registers,
    });
    this.ejectionsActive = new Gauge({
      name: 'envoy_cluster_outlier_detection_ejections_active',
      help: 'Hosts currently ejected by outlier detection.',
      labelNames: ['cluster_name'],
      registers,
    });
    this.flagCounts = new Counter({
      name: 'sinew_proxy_response_flags_total',
      help: 'Requests that finished with an Envoy response flag, by flag.',
      labelNames: ['response_flags'],
      registers,
    });
    this.configUpdates = new Counter({ name: 'sinew_proxy_config_updates_total', help: 'Pushed configs applied or rejected.', labelNames: ['result'], registers });
    this.configVersion = new Gauge({ name: 'sinew_proxy_config_version_info', help: 'The config version in force (value 1).', labelNames: ['version'], registers });
    this.mergeDropped = new Counter({
      name: 'sinew_metrics_merge_dropped_lines_total',
      help: 'Application metric lines left out of the merged endpoint because they were malformed or collided with proxy metrics.',
      registers,
    });
    this.recordErrors = new Counter({
      name: 'sinew_telemetry_record_errors_total',
      help: 'Proxy events that could not be recorded (malformed event); the request itself was unaffected.',
      registers,
    });
  }

  /** @internal Counts an event the subscription could not record. */
  countRecordError(): void {
    this.recordErrors.inc();
  }

  /**
   * Records one finished HTTP request under the reporter its direction implies. Health checks
   * reaching an inbound sidecar are not requests of the mesh and are left out (`isPeerHealthCheck`).
   */
  recordRequest(event: TelemetryRequestEvent, peers: PeerInfo): void {
    const remote = peers.remote ?? event.peer;
    if (isPeerHealthCheck(event.direction, event.method, event.userAgent, remote)) return;
    const mtls = peers.mtls ?? event.mtls;
    const service = serviceKey(event);
    const grpcStatus = event.grpcStatus;
    const status = event.status || 0;
    const flags = event.flags || '-';
    // The series is looked up by the values its labels derive from (no label object, no
    // prom-client hashing); only the first request of a combination builds its labels.
    const level = this.peerLevel(this.httpLookup, event.direction, event.direction === 'inbound' ? mtls : event.upstreamPeerUriSan, remote, peers, service);
    const byStatus = child(child(level, grpcStatus), status);
    let series = byStatus.get(flags) as HttpSeries | undefined;
    if (series === undefined) {
      const labels = this.peerLabels(event.direction, event, peers, 'http');
      // Istio's request_protocol is `grpc` for gRPC requests, else `http` for HTTP/1.x and HTTP/2.
      if (grpcStatus !== undefined) labels.request_protocol = 'grpc';
      labels.response_code = String(status);
      // istio/proxy's stats filter leaves grpc_response_status empty for non-gRPC requests.
      labels.grpc_response_status = grpcStatus ?? '';
      labels.response_flags = flags;
      labels.connection_security_policy = securityPolicy(event.direction, mtls);
      series = this.httpSeriesFor(labels, flags);
      this.remember(byStatus, flags, series);
    }
    series.requests = (series.requests ?? 0) + 1;
    observe((series.duration ??= newHistogramCell(REQUEST_DURATION_BUCKETS)), REQUEST_DURATION_BUCKETS, nonNegative(event.durationMs));
    observe((series.requestBytes ??= newHistogramCell(BYTES_BUCKETS)), BYTES_BUCKETS, nonNegative(event.requestBytes));
    observe((series.responseBytes ??= newHistogramCell(BYTES_BUCKETS)), BYTES_BUCKETS, nonNegative(event.responseBytes));

    const cluster = event.cluster;
    if (series.flags.length) {
      for (const f of series.flags) {
        this.flagCounts.inc({ response_flags: f });
        if (f === 'UO' && cluster) this.overflow.inc({ cluster_name: cluster });
      }
    }
    if (cluster && event.attempts > 1) this.retries.inc({ cluster_name: cluster }, event.attempts - 1);
  }

  /** Records a TCP connection (see `TelemetryTcpEvent.phase`). */
  recordTcp(event: TelemetryTcpEvent, peers: PeerInfo): void {
    const direction = event.direction ?? (/inbound/i.test(event.listener) ? 'inbound' : 'outbound');
    const mtls = peers.mtls ?? event.mtls;
    const flags = event.flags || '-';
    // Keyed by what the principals come from: TCP has no peer metadata to tell callers apart.
    const identity = direction === 'inbound' ? (mtls ? (event.downstreamPeerUriSan ?? true) : mtls) : event.upstreamPeerUriSan;
    const level = this.peerLevel(this.tcpLookup, direction, identity, peers.remote ?? event.peer, peers, serviceKey(event));
    let series = level.get(flags) as TcpSeries | undefined;
    if (series === undefined) {
      const labels = this.peerLabels(direction, event, peers, 'tcp');
      labels.response_flags = flags;
      labels.connection_security_policy = securityPolicy(direction, mtls);
      series = this.tcpSeriesFor(labels);
      this.remember(level, flags, series);
    }
    // An open-only event gives the series no closed or byte samples yet (prom-client's counters
    // had none either until first incremented).
    if (event.phase !== 'close') series.opened = (series.opened ?? 0) + 1;
    if (event.phase !== 'open') {
      series.closed = (series.closed ?? 0) + 1;
      series.received = (series.received ?? 0) + nonNegative(event.bytesReceived);
      series.sent = (series.sent ?? 0) + nonNegative(event.bytesSent);
    }
  }

  /** The series with these labels, created on first use. */
  private httpSeriesFor(labels: Record<string, string>, flags: string): HttpSeries {
    const key = labelKey(labels, HTTP_LABELS);
    let series = this.httpByLabels.get(key);
    if (series === undefined) {
      series = { labels: Object.freeze(labels), flags: flags === '-' ? [] : flags.split(','), requests: undefined, duration: undefined, requestBytes: undefined, responseBytes: undefined };
      this.httpByLabels.set(key, series);
      this.httpSeries.push(series);
    }
    return series;
  }

  private tcpSeriesFor(labels: Record<string, string>): TcpSeries {
    const key = labelKey(labels, TCP_LABELS);
    let series = this.tcpByLabels.get(key);
    if (series === undefined) {
      series = { labels: Object.freeze(labels), opened: undefined, closed: undefined, sent: undefined, received: undefined };
      this.tcpByLabels.set(key, series);
      this.tcpSeries.push(series);
    }
    return series;
  }

  /** @internal How many label combinations the series cache holds (bounded by `SERIES_CACHE_LIMIT`). */
  get cachedSeries(): number {
    return this.seriesCount;
  }

  /** Records an upstream-layer event: outlier ejections (`ejected` / `unejected`). */
  recordUpstreamEvent(event: TelemetryUpstreamEvent): void {
    if (event.type === 'ejected') {
      this.ejections.inc({ cluster_name: event.cluster });
      this.ejectionsActive.inc({ cluster_name: event.cluster });
    } else if (event.type === 'unejected') {
      this.ejectionsActive.dec({ cluster_name: event.cluster });
    }
  }

  /** Records a pushed config being applied or rejected (the proxy keeps its last good one). */
  recordConfig(event: TelemetryConfigEvent): void {
    this.configUpdates.inc({ result: event.accepted ? 'accepted' : 'rejected' });
    if (event.accepted) {
      this.configVersion.reset();
      this.configVersion.set({ version: event.version }, 1);
    }
  }

  /** Prometheus text exposition format 0.0.4 (what `/stats/prometheus` on 15090 serves). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type for `render()` and `merge()` responses. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The merged text for port 15020: the proxy's metrics followed by the application's
   * (Istio's agent merges the app's scrape with Envoy's so one annotation covers both).
   * The application's text is checked line by line so that one bad line cannot make
   * Prometheus reject the whole scrape: malformed lines, families whose names collide with the
   * proxy's, an OpenMetrics `# EOF` and duplicate HELP/TYPE lines are left out and counted.
   */
  async merge(appMetricsText: string): Promise<string> {
    const own = await this.render();
    const ownFamilies = new Set<string>();
    for (const m of await this.registry.getMetricsAsJSON()) ownFamilies.add(m.name);
    const { text, dropped } = sanitizeExposition(appMetricsText, ownFamilies);
    if (dropped) this.mergeDropped.inc(dropped);
    return own.endsWith('\n') || own.length === 0 ? own + text : own + '\n' + text;
  }

  // === labels ===

  private local(node: ProxyNode, identity?: LocalIdentityOptions): PeerMetadata {
    let md = this.localCache.get(node);
    if (!md) {
      md = peerMetadataFromNode(node, identity);
      this.localCache.set(node, md);
    }
    return md;
  }

  /** Descends the series cache by the inputs of the peer labels (reporter, both peers, `serviceKey`). */
  private peerLevel(
    root: Level,
    direction: string,
    /** Inbound: whether the connection was mutual TLS; outbound: the upstream connection's peer URI SAN. */
    mtls: boolean | string | undefined,
    remote: PeerMetadata | undefined,
    peers: PeerInfo,
    service: string | undefined,
  ): Level {
    const m = child(child(child(root, this.local(peers.local, peers.identity)), direction === 'inbound'), mtls);
    // Keyed by the remote's object: the proxy shares one decoded object per distinct header
    // value (src/proxy/peer-identity.ts). Another object with the same fields only costs a cache entry:
    // a miss finds the series by its labels.
    return child(child(m, remote ?? NO_PEER), service);
  }

  /** Adds a series to the lookup cache; past `SERIES_CACHE_LIMIT` entries the cache starts over. */
  private remember(level: Level, key: unknown, series: HttpSeries | TcpSeries): void {
    if (this.seriesCount >= SERIES_CACHE_LIMIT) {
      // A label explosion (hostile peer metadata, authorities, codes) must not grow the cache
      // without limit: start over; `level` is now detached, so this series is not cached (it
      // stays a series, found again by its labels).
      this.httpLookup = new Map();
      this.tcpLookup = new Map();
      this.seriesCount = 0;
      return;
    }
    level.set(key, series);
    this.seriesCount++;
  }

  private peerLabels(
    direction: string,
    event: { cluster?: string; authority?: string; destinationService?: string; mtls?: boolean; peer?: PeerMetadata; downstreamPeerUriSan?: string; downstreamLocalUriSan?: string; upstreamPeerUriSan?: string; upstreamLocalUriSan?: string },
    peers: PeerInfo,
    protocol: 'http' | 'tcp',
  ): Record<string, string> {
    const destinationReporter = direction === 'inbound';
    const local = this.local(peers.local, peers.identity);
    const remote = peers.remote ?? event.peer;
    const mtls = peers.mtls ?? event.mtls;
    const source = destinationReporter ? remote : local;
    const dest = destinationReporter ? local : remote;
    // Principals are only known from the mTLS handshake (Istio: "set when peer authentication is used").
    const principal = (md: PeerMetadata | undefined) => (mtls && md?.principal) || UNKNOWN;
    const service = destinationService(event);
    const { name, namespace } = splitServiceHost(service, dest?.namespace);
    // istio/proxy's stats filter (istio_stats.cc, populatePeerInfo): without a service or a
    // Host header the destination reporter names its own canonical service, the source
    // reporter `unknown`; Passthrough and BlackHole traffic is named after the cluster.
    const fallback = destinationReporter ? (local.canonicalService ?? UNKNOWN) : UNKNOWN;
    const special = specialCluster(event.cluster);
    return {
      reporter: destinationReporter ? 'destination' : 'source',
      source_workload: source?.workload ?? UNKNOWN,
      source_workload_namespace: source?.namespace ?? UNKNOWN,
      // istio/proxy's stats filter: the destination reporter reads both principals from the
      // downstream connection (the caller's certificate, its own), the source reporter from
      // the upstream one (its own certificate, the callee's); `unknown` without mutual TLS.
      source_principal: destinationReporter ? (mtls && event.downstreamPeerUriSan) || principal(source) : event.upstreamLocalUriSan || UNKNOWN,
      source_app: source?.app ?? UNKNOWN,
      source_version: source?.version ?? UNKNOWN,
      source_canonical_service: source?.canonicalService ?? UNKNOWN,
      source_canonical_revision: source?.canonicalRevision ?? UNKNOWN,
      source_cluster: source?.cluster ?? UNKNOWN,
      destination_workload: dest?.workload ?? UNKNOWN,
      destination_workload_namespace: dest?.namespace ?? UNKNOWN,
      destination_principal: destinationReporter ? (mtls && event.downstreamLocalUriSan) || principal(dest) : event.upstreamPeerUriSan || UNKNOWN,
      destination_app: dest?.app ?? UNKNOWN,
      destination_version: dest?.version ?? UNKNOWN,
      destination_service: service ?? fallback,
      destination_service_name: special ?? name ?? fallback,
      destination_service_namespace: namespace,
      destination_canonical_service: dest?.canonicalService ?? UNKNOWN,
      destination_canonical_revision: dest?.canonicalRevision ?? UNKNOWN,
      destination_cluster: dest?.cluster ?? UNKNOWN,
      request_protocol: protocol,
    };
  }
}

// === series cache ===

/** Most label combinations the lookup cache holds; past it the cache starts over (the series stay). */
export const SERIES_CACHE_LIMIT = 10_000;

/** Cache key for "no remote peer metadata" (distinct from a peer whose fields are undefined). */
const NO_PEER = Symbol('no-peer');

type Level = Map<unknown, unknown>;

/** One label combination of the HTTP families; a field is undefined while its family has no sample. */
interface HttpSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** The HTTP response flags, split once (empty for `-`). */
  readonly flags: readonly string[];
  requests: number | undefined;
  duration: HistogramCell | undefined;
  requestBytes: HistogramCell | undefined;
  responseBytes: HistogramCell | undefined;
}

/** One label combination of the TCP families. */
interface TcpSeries {
  readonly labels: Readonly<Record<string, string>>;
  opened: number | undefined;
  closed: number | undefined;
  sent: number | undefined;
  received: number | undefined;
}

function child(level: Level, key: unknown): Level {
  let next = level.get(key) as Level | undefined;
  if (next === undefined) level.set(key, (next = new Map()));
  return next;
}

/**
 * A series' identity: its label values in the family's order, JSON-encoded so that no value
 * can pass for two (peer metadata is the calling workload's say, newlines and all). Only a
 * lookup-cache miss builds one.
 */
function labelKey(labels: Readonly<Record<string, string>>, names: readonly string[]): string {
  return JSON.stringify(names.map((n) => labels[n]));
}

/** Istio: `unknown` when the source reports (it cannot see the server's policy), else mutual_tls / none. */
function securityPolicy(direction: string, mtls: boolean | undefined): string {
  if (direction !== 'inbound' || mtls === undefined) return UNKNOWN;
  return mtls ? 'mutual_tls' : 'none';
}

/** prom-client throws on a negative counter increment; a NaN would poison the series. */
function nonNegative(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * The destination service host: what the proxy says, else the FQDN in an
 * `outbound|port|subset|fqdn` cluster name, else the request's authority without its port.
 */
export function destinationService(event: { cluster?: string; authority?: string; destinationService?: string }): string | undefined {
  if (event.destinationService) return event.destinationService;
  const c = event.cluster;
  if (c && c.startsWith('outbound|')) {
    // outbound|port|subset|fqdn, without splitting (this runs for every request).
    const subset = c.indexOf('|', 9);
    const fqdnStart = subset < 0 ? -1 : c.indexOf('|', subset + 1) + 1;
    if (fqdnStart > 0) {
      const end = c.indexOf('|', fqdnStart);
      const fqdn = end < 0 ? c.slice(fqdnStart) : c.slice(fqdnStart, end);
      if (fqdn) return fqdn;
    }
  }
  const a = event.authority;
  if (!a) return undefined;
  if (a.startsWith('[')) return a.slice(0, a.indexOf(']') + 1) || undefined;
  const colon = a.lastIndexOf(':');
  return colon > 0 && /^\d+$/.test(a.slice(colon + 1)) ? a.slice(0, colon) : a;
}

/** `PassthroughCluster` / `BlackHoleCluster` for traffic to them (Istio's destination_service_name), else undefined. */
function specialCluster(cluster: string | undefined): string | undefined {
  return cluster === PASSTHROUGH_CLUSTER || cluster === BLACKHOLE_CLUSTER ? cluster : undefined;
}

/**
 * What the service labels derive from, as one series-cache key: the destination service, and
 * for Passthrough / BlackHole traffic the cluster too (it names destination_service_name).
 */
function serviceKey(event: { cluster?: string; authority?: string; destinationService?: string }): string | undefined {
  const service = destinationService(event);
  const special = specialCluster(event.cluster);
  // A newline cannot occur in a host or header value (Node's parser refuses it), so the key
  // cannot collide with a plain service's.
  return special === undefined ? service : `${special}\n${service ?? ''}`;
}

/**
 * `reviews.default.svc.cluster.local` -> reviews / default; a short host uses the destination
 * namespace. The name is undefined without a host (the caller applies Istio's fallback).
 */
function splitServiceHost(host: string | undefined, destNamespace: string | undefined): { name: string | undefined; namespace: string } {
  if (!host) return { name: undefined, namespace: destNamespace ?? UNKNOWN };
  const parts = host.split('.');
  if (parts.length >= 3 && parts[2] === 'svc') return { name: parts[0], namespace: parts[1] };
  // A ServiceEntry host (`api.example.com`) or an embedded short name keeps the whole host as
  // its name, as Istio does for non-Kubernetes services.
  return { name: host, namespace: destNamespace ?? UNKNOWN };
}

// === subscription ===

export interface SubscribeMetricsOptions {
  identity?: LocalIdentityOptions;
}

/**
 * Turns metrics on for a proxy (STYLE.md 12): records every event the proxy publishes on the
 * `sinew:proxy:*` diagnostics channels (skipping events that name another node). Returns the
 * function that turns them off again.
 */
export function subscribeProxyMetrics(node: ProxyNode, metrics: MeshMetrics, options: SubscribeMetricsOptions = {}): () => void {
  const peers: PeerInfo = { local: node, identity: options.identity };
  // diagnostics_channel rethrows a subscriber's exception on the next tick (an uncaught
  // exception in the proxy), so recording is guarded: a bad event is counted, never thrown.
  const record = (msg: unknown, kind: 'request' | 'tcp' | 'config') => {
    if (foreignEvent(msg, node.id)) return;
    try {
      if (kind === 'request') metrics.recordRequest(msg as TelemetryRequestEvent, peers);
      else if (kind === 'tcp') metrics.recordTcp(msg as TelemetryTcpEvent, peers);
      else metrics.recordConfig(msg as TelemetryConfigEvent);
    } catch {
      metrics.countRecordError();
    }
  };
  const onRequest = (msg: unknown) => record(msg, 'request');
  const onTcp = (msg: unknown) => record(msg, 'tcp');
  const onConfig = (msg: unknown) => record(msg, 'config');
  telemetryChannels.request.subscribe(onRequest);
  telemetryChannels.tcp.subscribe(onTcp);
  telemetryChannels.config.subscribe(onConfig);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    telemetryChannels.request.unsubscribe(onRequest);
    telemetryChannels.tcp.unsubscribe(onTcp);
    telemetryChannels.config.unsubscribe(onConfig);
  };
}

// === exposition checking for merge ===

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/;
const SUFFIXES = ['_bucket', '_count', '_sum', '_total', '_created', '_info'];

/** The family a sample line belongs to (`x_bucket` -> `x`). */
function familyOf(name: string, known: Set<string>): string {
  if (known.has(name)) return name;
  for (const s of SUFFIXES) if (name.endsWith(s) && known.has(name.slice(0, -s.length))) return name.slice(0, -s.length);
  return name;
}

/**
 * Keeps the well-formed lines of a Prometheus text exposition whose family is not in `taken`.
 * Returns the kept text (newline-terminated) and how many lines were dropped.
 */
export function sanitizeExposition(text: string, taken: Set<string>): { text: string; dropped: number } {
  const out: string[] = [];
  let dropped = 0;
  const seenMeta = new Set<string>();
  const declared = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) {
        if (line.trim() === '# EOF') continue; // OpenMetrics terminator: not valid mid-document.
        out.push(line); // a plain comment is harmless
        continue;
      }
      const [, kind, name, rest = ''] = m;
      const family = familyOf(name, taken);
      const bad =
        !METRIC_NAME.test(name) ||
        taken.has(family) ||
        seenMeta.has(kind + ' ' + name) ||
        (kind === 'TYPE' && !/^(counter|gauge|histogram|summary|untyped)$/.test(rest.trim()));
      if (bad) {
        dropped++;
        continue;
      }
      seenMeta.add(kind + ' ' + name);
      declared.add(name);
      out.push(line);
      continue;
    }
    const name = sampleName(line);
    if (name === undefined || taken.has(familyOf(name, taken)) || !validSample(line, name.length)) {
      dropped++;
      continue;
    }
    out.push(line);
  }
  return { text: out.length ? out.join('\n') + '\n' : '', dropped };
}

function sampleName(line: string): string | undefined {
  const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  return m ? m[0] : undefined;
}

/** Validates the label block and value of a sample line after its metric name. */
function validSample(line: string, start: number): boolean {
  let i = start;
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const nm = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!nm || !LABEL_NAME.test(nm[0])) return false;
      i += nm[0].length;
      while (line[i] === ' ') i++;
      if (line[i] !== '=') return false;
      i++;
      while (line[i] === ' ') i++;
      if (line[i] !== '"') return false;
      i++;
      for (;;) {
        const c = line[i];
        if (c === undefined) return false;
        if (c === '\\') {
          const e = line[i + 1];
          if (e !== '\\' && e !== '"' && e !== 'n') return false;
          i += 2;
          continue;
        }
        i++;
        if (c === '"') break;
      }
      while (line[i] === ' ') i++;
      if (line[i] === ',') {
        i++;
        continue;
      }
      if (line[i] === '}') {
        i++;
        break;
      }
      return false;
    }
  }
  const rest = line.slice(i);
  if (!/^[ \t]/.test(rest)) return false;
  const fields = rest.trim().split(/[ \t]+/);
  if (fields.length < 1 || fields.length > 2) return false;
  if (!VALUE.test(fields[0])) return false;
  return fields.length === 1 || /^-?\d+$/.test(fields[1]);
}
