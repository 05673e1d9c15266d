/**
 * The contract between the router (src/proxy/http) and the upstream layer
 * (src/proxy/upstream): cluster manager -> cluster -> load balancer -> endpoint pool.
 *
 * The router asks a cluster for an endpoint with `acquire`; it gets a lease holding a
 * dispatcher for that endpoint (its pool, honouring the cluster's connection-pool settings:
 * sinew's own HTTP/1.1 client for HTTP/1.1, plaintext or TLS, an undici Pool for HTTP/2),
 * or a failure with Envoy's
 * response flag (UH: no healthy endpoint, UO: a circuit-breaker limit would overflow). Every
 * lease is released exactly once with the outcome, which feeds LEAST_REQUEST counts, outlier
 * detection and the pending/active limits.
 */
import type { Dispatcher } from 'undici';
import type { Address, Cluster, ClusterLoadAssignment, Endpoint, EndpointHealth, Secret } from '../../api/proxy-config.js';
import type { UpstreamTransport } from '../transport/transport-socket.js';

/** What the router knows about a request when it asks for an endpoint. */
export interface PickContext {
  /** Hash of the request for RING_HASH / MAGLEV clusters (from the route's hashPolicy). */
  hash?: bigint | number;
  /** Endpoint keys (`host:port`) tried by earlier attempts of this request (retry "previous hosts"). */
  exclude?: ReadonlySet<string>;
  /** originalDst / PASSTHROUGH clusters: the address the client asked for. */
  originalDestination?: Address;
}

export type AcquireResult =
  | { ok: true; lease: UpstreamLease }
  | { ok: false; flag: 'UH' | 'UO'; detail: string };

/**
 * One contract at every tier (STYLE.md 1): undici's `dispatch(options, handler)` with its
 * controller-style handler API. Endpoint pools, the pending gate and undici's own Pool all
 * meet it, so the router does not know which one serves a lease.
 */
export interface UpstreamDispatcher {
  dispatch(options: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
}

/** undici's dispatch options, plus the fields the proxy adds to every upstream request itself. */
export interface UpstreamDispatchOptions extends Dispatcher.DispatchOptions {
  /**
   * The proxy's own fields (trace context, peer metadata) as ready-to-send HTTP/1.1 field lines
   * (src/core/header-lines.ts), already valid: sinew's HTTP/1.1 client appends them to the head
   * unchecked, and undici's pools get them merged into `headers`. `headers` must not also
   * carry them.
   */
  proxyHeaderLines?: string;
}

/** An endpoint's connection pool (see endpoint-pool.ts): dispatches, then drains or is torn down. */
export interface EndpointPool extends UpstreamDispatcher {
  readonly closed: boolean;
  readonly destroyed: boolean;
  /** Refuses new requests, lets running ones finish, then closes its connections. */
  close(): Promise<void>;
  /** Fails every running and waiting request now. */
  destroy(err?: Error | null): Promise<void>;
}

export interface UpstreamLease {
  readonly endpoint: Endpoint;
  /** `host:port`. */
  readonly key: string;
  /**
   * Dispatcher for this endpoint: its pool, or — when the request must wait for a
   * connection (HTTP/1.1 maxConnections reached, http1MaxPendingRequests not) — a gate that
   * passes the request to the pool once a running request finishes. Use it for this lease
   * only, and never close it (the cluster owns the pool).
   */
  readonly dispatcher: UpstreamDispatcher;
  /**
   * The transport socket this endpoint is reached with (plaintext, the cluster's TLS, or Istio
   * mutual TLS for a sidecar-backed endpoint of an auto mTLS cluster): what the TCP proxy
   * connects with, as the pool's clients do.
   */
  readonly transport: UpstreamTransport;
  /** Reports the outcome once. Later calls are ignored. */
  release(outcome: UpstreamOutcome): void;
}

export interface UpstreamOutcome {
  /** The response status, when a response head arrived. */
  status?: number;
  /** A failure before or instead of a response (local origin unless `reset` came from the peer). */
  failure?: 'connect-failure' | 'timeout' | 'reset' | 'refused' | 'cancelled';
}

export interface EndpointState {
  key: string;
  address: Address;
  health: EndpointHealth;
  /** Ejected by outlier detection until this time (ms since epoch), if ejected. */
  ejectedUntil?: number;
  activeRequests: number;
  totalRequests: number;
  failedRequests: number;
  labels: Readonly<Record<string, string>>;
}

export interface ClusterStats {
  name: string;
  /** Set while the cluster cannot connect (a TLS secret it names was not pushed): why. */
  unavailable?: string;
  /** Which client carries its requests: sinew's HTTP/1.1 client (plaintext or TLS) or undici (HTTP/2). */
  upstreamClient?: 'sinew-http1' | 'undici';
  /** Its connections' transport socket. */
  transport?: 'plaintext' | 'tls';
  activeRequests: number;
  pendingRequests: number;
  /** Requests refused with UO (any limit). */
  overflows: number;
  /** Retries refused because maxRetries was reached. */
  retryOverflows: number;
  ejections: number;
  endpoints: EndpointState[];
  /** Of `overflows`, those refused because too many requests already waited (Envoy upstream_rq_pending_overflow). */
  pendingOverflows?: number;
  /** Ejections skipped because of maxEjectionPercent (Envoy ejections_overflow). */
  ejectionOverflows?: number;
  /** Hosts ejected right now. */
  activeEjections?: number;
  /** Retries reserved and not yet released. */
  activeRetries?: number;
  /** Below minHealthPercent: balancing over every host (Envoy's panic mode). */
  panic?: boolean;
}

export interface UpstreamCluster {
  readonly name: string;
  readonly config: Cluster;
  acquire(ctx: PickContext): AcquireResult;
  /** Reserves one retry against connectionPool.maxRetries; false = over budget (no retry). */
  tryReserveRetry(): boolean;
  releaseRetry(): void;
  stats(): ClusterStats;
}

export interface ClusterManager {
  /**
   * Applies a new set of clusters and endpoints atomically. Pools of endpoints that stay are
   * kept (no reconnect storm); removed ones drain and close. `secrets` (ProxyConfig.secrets)
   * holds the TLS material clusters name; a cluster naming a missing secret, or an invalid
   * cluster, throws a SinewError and the previous set stays in service.
   */
  update(clusters: readonly Cluster[], endpoints: readonly ClusterLoadAssignment[], secrets?: readonly Secret[]): void;
  get(name: string): UpstreamCluster | undefined;
  /** For the admin port's /clusters. */
  stats(): ClusterStats[];
  close(): Promise<void>;
}
