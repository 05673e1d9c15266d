/**
 * The HTTP filter contract (Envoy's StreamDecoderFilter / StreamEncoderFilter and its
 * config.cc factories, STYLE.md 2 and 3). Each HTTP connection manager lists its filters by
 * name (`HttpConnectionManager.filters`); the proxy finds each name's factory in its registry
 * (filters/registry.ts) and compiles the filter's config once, when the config is applied: a
 * bad config is refused then (`FilterConfigError`), never on the first request. The compiled
 * filter then makes one instance per request (`create`), or none when it has nothing to do.
 *
 * A request's filters decode in the listed order: each `decodeHeaders` returns Continue (the
 * next filter runs) or Stop (the filter answered with `localReply`, or will call
 * `continueDecoding()` later, as the fault filter does after its delay). The router is the
 * last, terminal filter: it sends the request upstream or answers it (no route, redirect,
 * direct response). The response head, from the upstream or a local reply, goes back through
 * the filters' `encodeHeaders` in reverse order, so a filter listed first sees the response
 * last and can change any header the others set.
 *
 * Filters see `FilterStream`, a narrow view of the request, and never each other or the
 * connection manager (this module imports nothing of the proxy's but type-free data), so
 * the import graph stays a tree: stream.ts -> filter-chain.ts -> filter-api.ts <- filters.
 */
import type { ListenerDirection } from '../../api/proxy-config.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Random } from '../../core/random.js';
import type { PeerMetadata } from '../../telemetry/peer-metadata.js';
import type { ProxyTelemetry } from '../../telemetry/proxy-telemetry.js';
import type { ProxySpan, SpanRequest } from '../../telemetry/tracing.js';
import type { ProxyStats } from '../events.js';
import type { PeerIdentity } from '../peer-identity.js';
import type { ConnectionInfo } from '../transport/connection-info.js';
import type { HeaderBag } from './headers.js';
import type { LocalReply } from './local-reply.js';

/** What a filter hook returns (Envoy's FilterHeadersStatus: Continue / StopIteration). */
export const FilterStatus = { Continue: 0, Stop: 1 } as const;
export type FilterStatus = (typeof FilterStatus)[keyof typeof FilterStatus];

/** The proxy-wide things a filter may use. */
export interface FilterRuntime {
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly stats: ProxyStats;
  /** Undefined when telemetry is off: filters then do no telemetry work. */
  readonly telemetry: ProxyTelemetry | undefined;
  /** Which peers' metadata-exchange headers to trust (peer-identity.ts). */
  readonly peers: PeerIdentity;
  /** This proxy's own exchange headers and their proof, as ready field lines. */
  readonly peerHeaderLines: string;
}

/** The route a request matched, as filters see it: its name and its per-filter config. */
export interface FilterRoute {
  readonly name: string;
  /**
   * Envoy's typed_per_filter_config: each filter's route-level config, by filter name, as the
   * filter's factory compiled it (`compilePerRoute`).
   */
  readonly perFilterConfig: ReadonlyMap<string, unknown> | undefined;
}

/** The request as a filter sees it (HttpStream implements it). */
export interface FilterStream {
  readonly runtime: FilterRuntime;
  readonly direction: ListenerDirection;
  readonly method: string;
  readonly scheme: string;
  readonly authority: string;
  readonly path: string;
  readonly query: string;
  /** Request headers as they will go upstream; a filter may change them or replace the bag. */
  headers: HeaderBag;
  /** The request's headers as the client sent them (lower-case names), before any hygiene. */
  readonly downstreamHeaders: Readonly<Record<string, string | string[] | undefined>>;
  readonly requestId: string;
  readonly grpc: boolean;
  readonly h2: boolean;
  readonly userAgent: string | undefined;
  /** The downstream peer's address. */
  readonly peer: string;
  /** The port the request came in on (the listener's), or the destination port an outbound request names. */
  readonly port: number;
  /** This end of the downstream connection, `ip:port` (Istio's `destination.ip`). */
  readonly localAddress: string | undefined;
  /**
   * The original client's address (Envoy's downstream remote address, Istio's `remote.ip`):
   * at a gateway the X-Forwarded-For entry `xffNumTrustedHops` from the right, in a sidecar
   * the rightmost entry (Envoy with use_remote_address off); the peer when there is none.
   */
  remoteAddress(): string;
  /** What the connection's transport knows about its peer (transport/connection-info.ts). */
  readonly connection: ConnectionInfo;
  /** The matched route (the connection manager matches it before the filters run), if any. */
  readonly route: FilterRoute | undefined;
  /**
   * Envoy's clearRouteCache(): chooses the route again now, with `claims` (the payload of the
   * token jwt_authn verified) for the routes' claim conditions. The filters that have not run
   * yet are made again for the new route (cors and fault read their per-route config when
   * made), and the router uses it.
   */
  clearRouteCache(claims: Readonly<Record<string, unknown>> | undefined): void;
  readonly finished: boolean;

  // --- what filters record about the request (telemetry reads it when the request ends) ---
  /** A fault filter delayed or aborted this request: retries and timeouts are off (Istio). */
  faultInjected: boolean;
  serverSpan: ProxySpan | undefined;
  /** Field lines this proxy adds to the upstream request (trace context, peer metadata). */
  proxyHeaderLines: string;
  /** The other sidecar's metadata, once proven. */
  peerMetadata: PeerMetadata | undefined;
  /** Inbound: the caller proved its exchange headers (the reply then carries this proxy's). */
  peerProven: boolean;
  /** Outbound: send this proxy's exchange headers to mesh destinations (the router adds them). */
  sendPeerMetadata: boolean;
  /**
   * What the security filters of this request share, made by the first of them
   * (filters/security-chain.ts): the request's attributes, the JWT identity among them.
   */
  securityRequest: object | undefined;
  /** Per-request facts filters leave for the access log (Envoy's dynamic metadata), `filter:key`. */
  dynamicMetadata: Record<string, string> | undefined;

  addFlag(flag: string): void;
  /** Answers the request here (the reply goes back through the encode filters). */
  localReply(reply: LocalReply, headers?: Record<string, string>, configured?: boolean): void;
  /** Resumes decoding after the filter that returned Stop (once; ignored after the request ended). */
  continueDecoding(): void;
  /**
   * Sinew's HTTP/1.1 codec takes ready field lines for the response head (no per-field
   * checks); true when it took `lines`, false when the filter must add header fields instead.
   */
  addResponseLines(lines: string): boolean;
  /** What a span records of the request (asked only when it is sampled). */
  spanRequest(): SpanRequest;
}

/** One request's instance of a filter. Every hook is optional. */
export interface HttpFilter {
  /** The request head, once routed. */
  decodeHeaders?(stream: FilterStream): FilterStatus;
  /**
   * The response head on its way to the client: `headers` may be changed. `upstream` holds the
   * upstream's own response head when there is one (absent for local replies). Stop means
   * the filter answered instead with `localReply` (only for an upstream response; the
   * upstream response is then dropped), and is ignored for local replies.
   */
  encodeHeaders?(stream: FilterStream, status: number, headers: HeaderBag, upstream: Readonly<HeaderBag> | undefined): FilterStatus;
  /** The request ended early (the client left, a timeout): stop timers and upstream work. */
  onReset?(): void;
}

/** A filter's config, compiled once per applied config. */
export interface CompiledHttpFilter {
  readonly name: string;
  /** This request's instance; undefined when the filter has nothing to do for it. */
  create(stream: FilterStream): HttpFilter | undefined;
}

/** Where a filter's config stands in the ProxyConfig, for errors. */
export interface FilterCompileContext {
  /** e.g. `listeners[2].http.filters[1]`. */
  readonly path: string;
  readonly direction: ListenerDirection;
}

/** Makes one kind of filter (Envoy's NamedHttpFilterConfigFactory). */
export interface HttpFilterFactory {
  /** `sinew.filters.http.<name>`. */
  readonly name: string;
  /** Compiles the listener-level config; throws FilterConfigError listing every problem. */
  compile(config: unknown, ctx: FilterCompileContext): CompiledHttpFilter;
  /**
   * Compiles a route's config for this filter (typed_per_filter_config); throws
   * FilterConfigError. Absent: the filter takes no per-route config, and a route giving it
   * one is refused.
   */
  compilePerRoute?(config: unknown, path: string): unknown;
  /** The terminal filter (the router): it must be last, and only it may be. */
  readonly terminal?: boolean;
}

/** A filter's config cannot be used. `problems` are `[path, message]` pairs. */
export class FilterConfigError extends Error {
  readonly code = 'SNW_ERR_FILTER_CONFIG';
  constructor(readonly problems: readonly (readonly [string, string])[]) {
    super(problems.map(([p, m]) => `${p}: ${m}`).join('; '));
    this.name = 'FilterConfigError';
  }
}

/** Throws one FilterConfigError for every problem collected, if any. */
export function throwProblems(problems: [string, string][]): void {
  if (problems.length > 0) throw new FilterConfigError(problems);
}
