/**
 * Route tables compiled once per applied config: virtual-host selection and ordered route
 * matching (DESIGN.md behaviour 1: first match wins), both by the mesh's one set of matching
 * rules (src/semantics, which `explainRequest` runs too), and each route's action. Everything
 * that can be wrong with a route (bad regex, unknown retry condition, zero total weight) is
 * found here, at apply time.
 */
import type { RE2JS } from 're2js';
import type {
  HashPolicy,
  HeaderOperations,
  MirrorPolicy,
  RedirectAction,
  RetryPolicy,
  Route,
  RouteConfiguration,
  WeightedCluster,
} from '../../api/proxy-config.js';
import { compileRouteMatch, selectRoute as firstMatchingRoute, type CompiledRouteMatch, type RequestView } from '../../semantics/route-match.js';
import { compileRegex, type Problems } from '../../semantics/string-match.js';
import { compileVirtualHosts, selectByDomain, type DomainIndex, type MatchingVirtualHost } from '../../semantics/virtual-hosts.js';

// === compiled forms ===

export interface CompiledWeighted {
  readonly destinations: readonly WeightedCluster[];
  /** Cumulative weights; a destination of weight 0 owns an empty interval and is never chosen. */
  readonly cumulative: readonly number[];
  readonly total: number;
}

export interface CompiledRetry {
  readonly policy: RetryPolicy;
  readonly on: ReadonlySet<string>;
  readonly statusCodes: ReadonlySet<number>;
}

export interface CompiledRouteAction {
  readonly kind: 'route';
  readonly weighted: CompiledWeighted;
  readonly timeoutMs: number;
  readonly retry?: CompiledRetry;
  readonly rewritePrefix?: string;
  readonly rewriteRegex?: { re: RE2JS; substitution: string };
  readonly rewriteAuthority?: string;
  readonly mirrors: readonly MirrorPolicy[];
  readonly hashPolicy?: HashPolicy;
  readonly sticky: boolean;
  /** Buffer the request body (retries or mirrors need to replay it). */
  readonly needsBody: boolean;
}

export interface CompiledRoute {
  readonly name: string;
  readonly config: Route;
  /** The length of the path prefix the match consumed (for prefix rewrites), or -1 (semantics/route-match.ts). */
  readonly match: CompiledRouteMatch;
  readonly action: CompiledRouteAction | RedirectAction | { kind: 'direct'; status: number; body?: string };
  readonly requestHeaders?: HeaderOperations;
  readonly responseHeaders?: HeaderOperations;
  /** Envoy's typed_per_filter_config, each entry compiled by its filter's factory. */
  readonly perFilterConfig: ReadonlyMap<string, unknown> | undefined;
}

/** Compiles a route's config for the named filter (filter-chain.ts compilePerRouteConfig with the proxy's registry). */
export type PerFilterCompiler = (name: string, config: unknown, path: string, problems: Problems) => unknown;

export type CompiledVirtualHost = MatchingVirtualHost<CompiledRoute>;

export interface CompiledRouteTable {
  readonly name: string;
  /** The virtual hosts by domain (semantics/virtual-hosts.ts: Envoy's selection order). */
  readonly virtualHosts: DomainIndex<CompiledVirtualHost>;
}

/** Envoy's retry_on names the proxy understands; the ones it cannot act on are accepted and ignored. */
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'refused-stream', 'retriable-4xx',
  'retriable-status-codes', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
  'envoy-ratelimited', 'retriable-headers', 'http3-post-connect-failure',
]);

// === compile ===

export function compileRouteTable(rc: RouteConfiguration, path: string, problems: Problems, clusterExists: (name: string) => boolean, perFilter: PerFilterCompiler): CompiledRouteTable {
  return { name: rc.name, virtualHosts: compileVirtualHosts(rc, path, problems, (r, p) => compileRoute(r, p, problems, clusterExists, perFilter)) };
}

/** The virtual host for the request's (lower-cased) authority: exact, then longest `*.suffix`, then longest `prefix.*`, then `*`. */
export function selectVirtualHost(table: CompiledRouteTable, authority: string): CompiledVirtualHost | undefined {
  return selectByDomain(table.virtualHosts, authority);
}

/** First route whose match holds, with the length of the path prefix it consumed. */
export function selectRoute(vh: CompiledVirtualHost, req: RequestView): { route: CompiledRoute; matchedLength: number } | undefined {
  return firstMatchingRoute(vh.routes, req);
}

function compileRoute(r: Route, path: string, problems: Problems, clusterExists: (name: string) => boolean, perFilter: PerFilterCompiler): CompiledRoute {
  const match = compileRouteMatch(r.match, `${path}.match`, problems);

  let action: CompiledRoute['action'];
  const a = r.action;
  if (a.kind === 'route') {
    action = compileRouteAction(a, `${path}.action`, problems, clusterExists);
  } else if (a.kind === 'redirect') {
    if (!Number.isInteger(a.responseCode) || a.responseCode < 300 || a.responseCode > 399) {
      problems.add(`${path}.action.responseCode`, `redirect code ${a.responseCode} is not a 3xx status`);
    }
    action = a;
  } else if (a.kind === 'direct') {
    if (!Number.isInteger(a.status) || a.status < 200 || a.status > 599) problems.add(`${path}.action.status`, `status ${a.status} is not in 200..599`);
    action = a;
  } else {
    problems.add(`${path}.action.kind`, `unknown action kind ${JSON.stringify((a as { kind: unknown }).kind)}`);
    action = { kind: 'direct', status: 500 };
  }

  let perFilterConfig: Map<string, unknown> | undefined;
  if (r.perFilterConfig !== undefined) {
    perFilterConfig = new Map();
    for (const [name, config] of Object.entries(r.perFilterConfig)) {
      perFilterConfig.set(name, perFilter(name, config, `${path}.perFilterConfig[${JSON.stringify(name)}]`, problems));
    }
  }
  checkHeaderOps(r.requestHeaders, `${path}.requestHeaders`, problems);
  checkHeaderOps(r.responseHeaders, `${path}.responseHeaders`, problems);
  return { name: r.name, config: r, match, action, requestHeaders: r.requestHeaders, responseHeaders: r.responseHeaders, perFilterConfig };
}

function compileRouteAction(a: Extract<Route['action'], { kind: 'route' }>, path: string, problems: Problems, clusterExists: (name: string) => boolean): CompiledRouteAction {
  const cumulative: number[] = [];
  let total = 0;
  if (a.destinations.length === 0) problems.add(`${path}.destinations`, 'a route needs at least one destination');
  a.destinations.forEach((d, i) => {
    if (!Number.isFinite(d.weight) || d.weight < 0) problems.add(`${path}.destinations[${i}].weight`, `weight ${d.weight} must be a number >= 0`);
    else total += d.weight;
    cumulative.push(total);
    if (!clusterExists(d.cluster)) {
      // Not an error: Envoy accepts routes to unknown clusters and answers 503 NC, and Istio
      // relies on it (DESIGN.md behaviour 11: a subset named before its DestinationRule exists).
    }
    checkHeaderOps(d.requestHeaders, `${path}.destinations[${i}].requestHeaders`, problems);
    checkHeaderOps(d.responseHeaders, `${path}.destinations[${i}].responseHeaders`, problems);
  });
  if (a.destinations.length > 0 && total <= 0) problems.add(`${path}.destinations`, 'the weights add up to 0: no destination could ever be chosen');

  let retry: CompiledRetry | undefined;
  if (a.retry) {
    const r = a.retry;
    const on = new Set<string>();
    for (const cond of r.retryOn) {
      const c = cond.trim();
      if (!RETRY_ON.has(c)) problems.add(`${path}.retry.retryOn`, `unknown retry condition ${JSON.stringify(c)}`);
      else on.add(c);
    }
    if (!Number.isInteger(r.attempts) || r.attempts < 0) problems.add(`${path}.retry.attempts`, `attempts ${r.attempts} must be an integer >= 0`);
    if (!(r.backoffBaseMs >= 0)) problems.add(`${path}.retry.backoffBaseMs`, 'must be >= 0');
    if (r.attempts > 0) retry = { policy: r, on, statusCodes: new Set(r.retriableStatusCodes ?? []) };
  }

  let rewriteRegex: CompiledRouteAction['rewriteRegex'];
  if (a.rewrite?.pathRegex) {
    const re = compileRegex(a.rewrite.pathRegex.pattern, `${path}.rewrite.pathRegex.pattern`, problems);
    // Envoy's substitution names groups \1..\9 (RE2::Replace); re2js wants $1.
    if (re) rewriteRegex = { re, substitution: a.rewrite.pathRegex.substitution.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1') };
  }
  for (const [i, m] of (a.mirrors ?? []).entries()) {
    if (!(m.percentage >= 0 && m.percentage <= 100)) problems.add(`${path}.mirrors[${i}].percentage`, `${m.percentage} is not in 0..100`);
  }
  if (a.stickyWeightedHash && !a.hashPolicy) problems.add(`${path}.stickyWeightedHash`, 'needs a hashPolicy to hash the request with');
  const mirrors = a.mirrors ?? [];
  return {
    kind: 'route',
    weighted: { destinations: a.destinations, cumulative, total },
    timeoutMs: a.timeoutMs ?? 0,
    retry,
    rewritePrefix: a.rewrite?.pathPrefix,
    rewriteRegex,
    rewriteAuthority: a.rewrite?.authority,
    mirrors,
    hashPolicy: a.hashPolicy,
    sticky: a.stickyWeightedHash === true,
    needsBody: retry !== undefined || mirrors.length > 0,
  };
}

const TOKEN = /^:?[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;

function checkHeaderOps(ops: HeaderOperations | undefined, path: string, problems: Problems): void {
  if (!ops) return;
  for (const name of [...Object.keys(ops.set ?? {}), ...Object.keys(ops.add ?? {}), ...(ops.remove ?? [])]) {
    if (!TOKEN.test(name)) problems.add(path, `header name ${JSON.stringify(name)} is not an RFC 7230 token`);
  }
  for (const value of [...Object.values(ops.set ?? {}), ...Object.values(ops.add ?? {})]) {
    if (/[\r\n\0]/.test(value)) problems.add(path, 'header values must not contain CR, LF or NUL');
  }
}
