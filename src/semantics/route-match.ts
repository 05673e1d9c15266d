/**
 * The compiled route match: what a proxy evaluates for a request against a route's
 * `RouteMatch` (the ProxyConfig contract; Envoy's RouteMatch), compiled once per config into
 * closures. The proxy routes with it and `explainRequest` explains with it, so the two cannot
 * disagree. Conditions of one match are ANDed; routes are tried in order and the first match
 * wins (DESIGN.md behaviour 1).
 */
import type { ClaimMatcher, HeaderMatcher, QueryParamMatcher, RouteMatch } from '../api/proxy-config.js';
import { compileStringMatch, type Problems } from './string-match.js';

// === the request as routing sees it ===

/** Reads a header (or pseudo-header) value of the request being matched; undefined = absent. */
export type HeaderLookup = (name: string) => string | undefined;

export interface RequestView {
  /** As sent (Envoy compares `:method` case-sensitively). */
  method: string;
  /** `http` or `https`. */
  scheme: string;
  /** Lower-cased authority, port included when the request had one. */
  authority: string;
  /** Path without query or fragment, normalised. */
  path: string;
  /** Query string without the `?`, '' when none. */
  query: string;
  /** Port used for `RouteMatch.port` (listener port, or destination port on outbound capture). */
  port: number;
  /** Lower-case names; `:method`, `:path`, `:authority`, `:scheme` and `host` included. */
  header: HeaderLookup;
  /**
   * The value(s) of a claim of the request's verified JWT (jwt_authn's payload), undefined
   * when there is no such claim or no verified token. Absent: the request has no token.
   */
  claim?: ClaimLookup;
}

/** Reads a claim at a path into the verified token's payload: a string or a list of strings. */
export type ClaimLookup = (path: readonly string[]) => string | readonly string[] | undefined;

/** The request's query parameters, parsed on first use (most routes never ask). */
export type LazyParams = () => URLSearchParams;

/**
 * A compiled RouteMatch: the length of the path prefix the match consumed (what a prefix
 * rewrite replaces), or -1 when the route does not match.
 */
export type CompiledRouteMatch = (req: RequestView, params: LazyParams) => number;

export type CompiledHeaderMatcher = (lookup: HeaderLookup) => boolean;

export type CompiledQueryMatcher = (params: URLSearchParams) => boolean;

export type CompiledClaimMatcher = (req: RequestView) => boolean;

// === compile ===

/**
 * Envoy's HeaderMatcher (HeaderUtility::matchHeaders):
 * - no `match`: the header is present (even with an empty value);
 * - a string match: the value must match;
 * - an absent header matches nothing, unless `treatMissingAsEmpty` reads it as "" (Istio sets
 *   it on withoutHeaders string matches);
 * - `invert` negates the result, absent headers included. So Istio's "without end-user:
 *   jason" holds for a request with no `end-user` ("" is not "jason"), while "without
 *   end-user regex .*" never holds ("" matches `.*`); an inverted presence match holds
 *   exactly when the header is absent.
 */
export function compileHeaderMatcher(h: HeaderMatcher, path: string, problems: Problems): CompiledHeaderMatcher {
  const name = h.name.toLowerCase();
  if (name.length === 0) problems.add(`${path}.name`, 'header name is empty');
  const invert = h.invert === true;
  const missing = h.treatMissingAsEmpty === true ? '' : undefined;
  if (!h.match) {
    if (missing !== undefined) return () => !invert;
    return invert ? (lookup) => lookup(name) === undefined : (lookup) => lookup(name) !== undefined;
  }
  const matches = compileStringMatch(h.match, `${path}.match`, problems);
  if (!invert && missing === undefined) {
    return (lookup) => {
      const v = lookup(name);
      return v !== undefined && matches(v);
    };
  }
  return (lookup) => {
    const v = lookup(name) ?? missing;
    return v === undefined ? invert : matches(v) !== invert;
  };
}

/** Envoy's QueryParameterMatcher: no `match` = the parameter is present; else its first value must match. */
export function compileQueryMatcher(q: QueryParamMatcher, path: string, problems: Problems): CompiledQueryMatcher {
  const name = q.name;
  if (!q.match) return (params) => params.has(name);
  const matches = compileStringMatch(q.match, `${path}.match`, problems);
  return (params) => {
    const v = params.get(name);
    return v !== null && matches(v);
  };
}

/**
 * A claim condition, as Istio compiles `@request.auth.claims.<name>` (MetadataMatcherForJWTClaims:
 * a string claim that matches, or a list claim with any element that matches; a claim of
 * another type, or none, matches nothing), inverted for withoutHeaders as Envoy's
 * MetadataMatcher `invert`: then a request without a verified token satisfies it. The value
 * comes only from the verified token (`RequestView.claim`), never from a header.
 */
export function compileClaimMatcher(c: ClaimMatcher, path: string, problems: Problems): CompiledClaimMatcher {
  const claim = [...c.path];
  if (claim.length === 0 || claim.some((k) => k.length === 0)) problems.add(`${path}.path`, `claim path ${JSON.stringify(claim)} has an empty name`);
  const invert = c.invert === true;
  const matches = c.match ? compileStringMatch(c.match, `${path}.match`, problems) : () => true;
  const holds = (value: string | readonly string[] | undefined): boolean => {
    if (value === undefined) return false;
    if (typeof value === 'string') return matches(value);
    for (const v of value) if (matches(v)) return true;
    return false;
  };
  return (req) => holds(req.claim?.(claim)) !== invert;
}

/**
 * Compiles a RouteMatch. The path condition is Envoy's `path`, `prefix` or `safe_regex`;
 * `ignorePathCase` (Istio's ignoreUriCase) applies to exact and prefix only, as Envoy's
 * `case_sensitive` is ignored for regexes. Without a path condition the route behaves as
 * Envoy's `prefix: "/"`.
 */
export function compileRouteMatch(m: RouteMatch, path: string, problems: Problems): CompiledRouteMatch {
  const checks: ((req: RequestView, params: LazyParams) => boolean)[] = [];
  let pathMatch: ((p: string) => number) | undefined;
  if (m.path) {
    const sm = m.path;
    const matcher = compileStringMatch(sm, `${path}.path`, problems, m.ignorePathCase === true);
    if ('prefix' in sm) {
      const len = sm.prefix.length;
      pathMatch = (p) => (matcher(p) ? len : -1);
    } else {
      pathMatch = (p) => (matcher(p) ? p.length : -1);
    }
  }
  if (m.method) {
    const f = compileStringMatch(m.method, `${path}.method`, problems);
    checks.push((req) => f(req.method));
  }
  if (m.scheme) {
    const f = compileStringMatch(m.scheme, `${path}.scheme`, problems);
    checks.push((req) => f(req.scheme));
  }
  if (m.authority) {
    const f = compileStringMatch(m.authority, `${path}.authority`, problems);
    checks.push((req) => f(req.authority));
  }
  if (m.port !== undefined) {
    const port = m.port;
    checks.push((req) => req.port === port);
  }
  const headers = (m.headers ?? []).map((h, i) => compileHeaderMatcher(h, `${path}.headers[${i}]`, problems));
  if (headers.length) checks.push((req) => headers.every((h) => h(req.header)));
  const query = (m.queryParams ?? []).map((q, i) => compileQueryMatcher(q, `${path}.queryParams[${i}]`, problems));
  if (query.length) checks.push((_req, params) => { const p = params(); return query.every((q) => q(p)); });
  const claims = (m.claims ?? []).map((c, i) => compileClaimMatcher(c, `${path}.claims[${i}]`, problems));
  if (claims.length) checks.push((req) => claims.every((c) => c(req)));

  return (req, params) => {
    const n = pathMatch ? pathMatch(req.path) : req.path.startsWith('/') ? 1 : 0;
    if (n < 0) return -1;
    for (const check of checks) if (!check(req, params)) return -1;
    return n;
  };
}

// === select ===

/** The first route whose match holds, with the length of the path prefix it consumed. */
export function selectRoute<R extends { readonly match: CompiledRouteMatch }>(routes: readonly R[], req: RequestView): { route: R; matchedLength: number } | undefined {
  let params: URLSearchParams | undefined;
  const lazyParams = () => (params ??= new URLSearchParams(req.query));
  for (const route of routes) {
    const n = route.match(req, lazyParams);
    if (n >= 0) return { route, matchedLength: n };
  }
  return undefined;
}
