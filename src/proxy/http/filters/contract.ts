/**
 * The narrow interface the security filters are written against, shaped like Envoy's HTTP
 * filters (STYLE.md 2): a factory registered under a name builds its frozen config once
 * (`compile`, which throws for a bad config so the proxy NACKs it), and the result is called
 * for each request's headers with an explicit result: go on, or stop with a local reply.
 * Filters never import each other; what one learns for the next (the JWT filter's identity
 * for the RBAC filter) travels in the context's request attributes.
 */
import type { LocalReply } from '../local-reply.js';
import type { RequestAttributes } from '../../../security/attributes.js';

/** A reply the filter makes instead of letting the request go on, with headers of its own. */
export interface FilterLocalReply extends LocalReply {
  headers?: Readonly<Record<string, string>>;
}

/** Envoy's FilterHeadersStatus: Continue, or StopIteration with a local reply sent. */
export type FilterHeadersStatus = 'continue' | { stop: FilterLocalReply };

/** The request's headers as the upstream will get them (lower-case names). */
export interface RequestHeaderMutation {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  remove(name: string): void;
  /** Every header, for filters that forward a selection (ext_authz). */
  entries(): Iterable<[string, string]>;
}

export interface HttpFilterContext {
  /**
   * What authorization decides on. Filters may add to it: the JWT filter sets `auth` for the
   * filters after it, as Envoy's jwt_authn writes dynamic metadata that RBAC reads. Its
   * `headers` must be a live view of `requestHeaders`, so that a header one filter sets is
   * what the next one matches.
   */
  readonly attributes: RequestAttributes;
  readonly requestHeaders: RequestHeaderMutation;
  /** Adds a header to the response the client will get, whoever makes it (ext_authz's headersToDownstreamOnAllow). */
  addResponseHeader(name: string, value: string): void;
  /** Per-request facts for the access log, by filter (Envoy's dynamic metadata). */
  setMetadata(filter: string, key: string, value: string): void;
  /** Aborted when the client goes away; a filter waiting on I/O gives up then. */
  readonly signal: AbortSignal;
  /**
   * Envoy's clearRouteCache(): the route is chosen again now, with the verified claims in
   * `attributes.auth` (jwt_authn's payload metadata) for `@request.auth.claims` matches; the
   * filters after this one and the router see the route chosen then.
   */
  clearRouteCache(): void;
}

export interface HttpFilter {
  decodeHeaders(ctx: HttpFilterContext): FilterHeadersStatus | Promise<FilterHeadersStatus>;
}

export interface HttpFilterFactory {
  /** The name listeners use in `httpFilters` (src/api/proxy-config.ts). */
  readonly name: string;
  /** Checks and freezes a config; throws (with every problem) when it cannot be used. */
  compile(config: unknown): HttpFilter;
}

/** What a network filter sees of a new connection: the attributes a TCP connection has. */
export type NetworkFilterResult = 'continue' | { close: { details: string } };

export interface NetworkFilter {
  onNewConnection(attributes: RequestAttributes): NetworkFilterResult;
}

export interface NetworkFilterFactory {
  /** The name listeners use in `networkFilters`. */
  readonly name: string;
  compile(config: unknown): NetworkFilter;
}

/** Counters a filter increments (the proxy's /stats); nothing is counted when absent. */
export interface FilterStats {
  inc(name: string, by?: number): void;
}
