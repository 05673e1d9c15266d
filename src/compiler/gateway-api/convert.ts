/**
 * Gateway API routes as Istio's VirtualService rules, the way Istio compiles them
 * (pilot/pkg/config/kube/gateway/conversion.go): every HTTPRoute and GRPCRoute match becomes an
 * Istio HTTPRoute rule, the rules of all routes for one host are sorted by the Gateway API's
 * precedence, and the result goes through the same rule translation as a VirtualService
 * (../http-routes.ts), so a header filter, a redirect or a mirror means the same whichever API
 * wrote it.
 *
 * Two Gateway API semantics have no VirtualService field, and are expressed with ones that do:
 *
 *   - PathPrefix matches whole path segments (`/v2` matches `/v2` and `/v2/x`, not `/v2x`):
 *     Istio gives Envoy a path_separated_prefix; here it is an exact match on the prefix and a
 *     prefix match on the prefix and `/`, two rules with one action. ReplacePrefixMatch then
 *     rewrites each by what it matched.
 *   - a redirect without port or scheme keeps the listener's port (the spec's rule), which the
 *     compiler knows and the request's Host header (a local port in embedded mode) does not.
 */
import type { Resource } from '../../api/resources/meta.js';
import type {
  GRPCRouteMatch,
  GRPCRouteRule,
  HTTPBackendRef,
  HTTPCORSFilter,
  HTTPHeaderFilter,
  HTTPPathModifier,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
} from '../../api/resources/gateway-api/types.js';
import type { BackendState, RouteState } from '../../semantics/gateway-api/binding.js';
import type { CorsPolicySpec, HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, HeaderOperationsSpec } from '../istio-types.js';
import { byCreation } from '../../semantics/creation-order.js';

/** A route rule as Istio's converter emits it: one match, with where it came from. */
export interface ConvertedRule {
  /** `namespace/route/rule[.match]`, the route's name in telemetry and `explain` (rule names where the route gives them). */
  name: string;
  rule: HTTPRoute;
}

/** Where the rules are served: the port (redirects keep it; 0 in the mesh, where the request's is kept) and the cluster domain suffix. */
export interface ConvertScope {
  port: number;
  domainSuffix: string;
}

/** The sort key of one match (Istio's sortHTTPRoutes over the spec's precedence). */
interface Ranked {
  route: RouteState;
  ruleIndex: number;
  matchIndex: number;
  /** 3 exact, 2 prefix, 1 regex, 0 none. */
  pathRank: number;
  pathLength: number;
  hasMethod: boolean;
  headers: number;
  queryParams: number;
}

const serviceHost = (b: { namespace: string; name: string }, suffix: string) => `${b.name}.${b.namespace}.svc.${suffix}`;

/**
 * The rules of `routes` (each with the rule indexes of it that apply), sorted by the Gateway
 * API's precedence: an exact path before a prefix, a longer prefix before a shorter, a method
 * match, more header matches, more query parameter matches; then the older route, then
 * namespace/name, then the order in the route.
 */
export function convertRoutes(routes: readonly RouteState[], scope: ConvertScope, parentPorts?: ReadonlyMap<RouteState, number | undefined>): ConvertedRule[] {
  const ranked: Ranked[] = [];
  const ordered = [...routes].sort((a, b) => byCreation(a.resource, b.resource));
  for (const route of ordered) {
    const spec = route.resource.spec as { rules?: (HTTPRouteRule | GRPCRouteRule)[] };
    (spec.rules ?? []).forEach((rule, ruleIndex) => {
      const matches = (rule.matches?.length ? rule.matches : [{}]) as (HTTPRouteMatch | GRPCRouteMatch)[];
      matches.forEach((m, matchIndex) => ranked.push({ route, ruleIndex, matchIndex, ...rank(route.kind === 'GRPCRoute' ? grpcPath(m as GRPCRouteMatch) : (m as HTTPRouteMatch).path, m) }));
    });
  }
  // Stable: equal keys keep the route, rule and match order.
  ranked.sort((a, b) => b.pathRank - a.pathRank || b.pathLength - a.pathLength || Number(b.hasMethod) - Number(a.hasMethod) || b.headers - a.headers || b.queryParams - a.queryParams);
  return ranked.flatMap((r) => convertMatch(r.route, r.ruleIndex, r.matchIndex, scope, parentPorts?.get(r.route)));
}

function rank(path: { type?: string; value?: string } | undefined, m: HTTPRouteMatch | GRPCRouteMatch): Omit<Ranked, 'route' | 'ruleIndex' | 'matchIndex'> {
  const type = path?.type;
  const pathRank = type === 'Exact' ? 3 : type === 'PathPrefix' ? 2 : type === 'RegularExpression' ? 1 : 0;
  const value = path?.value ?? '';
  const pathLength = type === 'PathPrefix' && value !== '/' ? value.replace(/\/$/, '').length : value.length;
  return { pathRank, pathLength, hasMethod: 'method' in m && typeof m.method === 'string', headers: m.headers?.length ?? 0, queryParams: 'queryParams' in m ? (m.queryParams?.length ?? 0) : 0 };
}

/** A GRPCRoute method match as the path it constrains (gRPC calls are `POST /<service>/<method>`). */
function grpcPath(m: GRPCRouteMatch): { type: 'Exact' | 'PathPrefix' | 'RegularExpression'; value: string } | undefined {
  const method = m.method;
  if (!method || (!method.service && !method.method)) return undefined;
  const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if ((method.type ?? 'Exact') === 'Exact') {
    if (method.service && method.method) return { type: 'Exact', value: `/${method.service}/${method.method}` };
    if (method.service) return { type: 'PathPrefix', value: `/${method.service}` };
    return { type: 'RegularExpression', value: `/[^/]+/${re(method.method!)}` };
  }
  return { type: 'RegularExpression', value: `/${method.service || '[^/]+'}/${method.method || '[^/]+'}` };
}

/** The Istio rules of one match: one, or two for a PathPrefix that is not `/` (see the module comment). */
function convertMatch(route: RouteState, ruleIndex: number, matchIndex: number, scope: ConvertScope, parentPort: number | undefined): ConvertedRule[] {
  const r = route.resource;
  const ns = r.metadata.namespace;
  const grpc = route.kind === 'GRPCRoute';
  const rule = ((r.spec as { rules?: (HTTPRouteRule | GRPCRouteRule)[] }).rules ?? [])[ruleIndex];
  const m = (rule.matches?.[matchIndex] ?? {}) as HTTPRouteMatch & GRPCRouteMatch;
  const path = grpc ? grpcPath(m) : m.path;
  const base: HTTPMatchRequest = {};
  if (m.headers?.length) {
    base.headers = {};
    // The first match of a header name counts (the spec leaves repeated names to the first).
    for (const h of m.headers) if (!(h.name.toLowerCase() in base.headers)) base.headers[h.name.toLowerCase()] = h.type === 'RegularExpression' ? { regex: h.value } : { exact: h.value };
  }
  if (!grpc && m.queryParams?.length) {
    base.queryParams = {};
    for (const q of m.queryParams) if (!(q.name in base.queryParams)) base.queryParams[q.name] = q.type === 'RegularExpression' ? { regex: q.value } : { exact: q.value };
  }
  if (!grpc && m.method) base.method = { exact: m.method };
  // A GAMMA parentRef with a port shapes that port of the Service only.
  if (parentPort !== undefined) base.port = parentPort;

  const label = `${ns}/${r.metadata.name}/${rule.name ?? ruleIndex}${(rule.matches?.length ?? 0) > 1 ? `.${matchIndex}` : ''}`;
  const prefixValue = path?.type === 'PathPrefix' ? (path.value === '/' ? '/' : (path.value ?? '/').replace(/\/$/, '')) : undefined;
  const out: ConvertedRule[] = [];
  if (prefixValue !== undefined && (prefixValue !== '/' || replacesPrefix(rule))) {
    // Segment prefix: `/p` itself, then `/p/...` (for `/`, the root itself and the rest).
    out.push({ name: `${label}#exact`, rule: translate(route, rule, ruleIndex, { ...base, uri: { exact: prefixValue } }, scope, { matched: prefixValue, slash: false }) });
    out.push({ name: label, rule: translate(route, rule, ruleIndex, { ...base, uri: { prefix: prefixValue === '/' ? '/' : `${prefixValue}/` } }, scope, { matched: prefixValue, slash: true }) });
  } else {
    const uri = path?.type === 'Exact' ? { exact: path.value ?? '/' } : path?.type === 'RegularExpression' ? { regex: path.value ?? '.*' } : path?.type === 'PathPrefix' ? { prefix: '/' } : undefined;
    out.push({ name: label, rule: translate(route, rule, ruleIndex, uri ? { ...base, uri } : base, scope, undefined) });
  }
  return out;
}

/**
 * A rule's filters, with a RequestRedirect or URLRewrite its backendRefs carry taken up to the
 * rule when every backend carries the same one: an Istio route redirects or rewrites for the
 * whole rule, never per destination. (Backends that disagree keep their own, which the
 * conversion cannot express: the rule's own filters apply.)
 */
function filtersOf(rule: HTTPRouteRule | GRPCRouteRule): HTTPRouteFilter[] {
  const own = (rule.filters ?? []) as HTTPRouteFilter[];
  const refs = (rule.backendRefs ?? []) as HTTPBackendRef[];
  if (!refs.length) return own;
  const hoisted: HTTPRouteFilter[] = [];
  for (const type of ['RequestRedirect', 'URLRewrite'] as const) {
    if (own.some((f) => f.type === type)) continue;
    const perBackend = refs.map((r) => JSON.stringify(((r.filters ?? []) as HTTPRouteFilter[]).find((f) => f.type === type) ?? null));
    if (perBackend[0] !== 'null' && perBackend.every((p) => p === perBackend[0])) hoisted.push(JSON.parse(perBackend[0]) as HTTPRouteFilter);
  }
  return hoisted.length ? [...own, ...hoisted] : own;
}

function replacesPrefix(rule: HTTPRouteRule | GRPCRouteRule): boolean {
  return filtersOf(rule).some((f) => f.urlRewrite?.path?.type === 'ReplacePrefixMatch' || f.requestRedirect?.path?.type === 'ReplacePrefixMatch');
}

/**
 * A ReplacePrefixMatch for the half of a segment prefix being built: the exact half replaces the
 * whole path; the `prefix/` half consumed the prefix and its slash, so the replacement ends with
 * one (`/p/x` with `/q` becomes `/q/x`, with `/` becomes `/x`).
 */
function prefixReplacement(mod: HTTPPathModifier, half: { matched: string; slash: boolean } | undefined): string | undefined {
  const to = mod.replacePrefixMatch ?? '/';
  if (!half) return to;
  if (!half.slash) return to;
  return to.endsWith('/') ? to : `${to}/`;
}

function headerOperations(f: HTTPHeaderFilter | undefined): HeaderOperationsSpec | undefined {
  if (!f) return undefined;
  const out: HeaderOperationsSpec = {};
  if (f.set?.length) out.set = Object.fromEntries(f.set.map((h) => [h.name.toLowerCase(), h.value]));
  if (f.add?.length) out.add = Object.fromEntries(f.add.map((h) => [h.name.toLowerCase(), h.value]));
  if (f.remove?.length) out.remove = f.remove.map((h) => h.toLowerCase());
  return Object.keys(out).length ? out : undefined;
}

/** The Gateway API's CORS filter as Istio's corsPolicy: `*` any origin, `https://*.x.com` a pattern; unmatched preflights answered here. */
function corsPolicy(f: HTTPCORSFilter): CorsPolicySpec {
  const origins = (f.allowOrigins ?? []).map((o) => {
    if (o === '*') return { regex: '.*' };
    if (!o.includes('*')) return { exact: o };
    return { regex: o.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('[^/]*') };
  });
  return {
    allowOrigins: origins,
    ...(f.allowMethods?.length ? { allowMethods: f.allowMethods } : {}),
    ...(f.allowHeaders?.length ? { allowHeaders: f.allowHeaders } : {}),
    ...(f.exposeHeaders?.length ? { exposeHeaders: f.exposeHeaders } : {}),
    ...(f.maxAge !== undefined ? { maxAge: `${f.maxAge}s` } : {}),
    ...(f.allowCredentials !== undefined ? { allowCredentials: f.allowCredentials } : {}),
    // Istio's conversion answers a preflight from another origin itself, without CORS headers,
    // rather than forwarding it (the Gateway API expects it not to reach the backend).
    unmatchedPreflights: 'IGNORE',
  };
}

function destinationOf(b: BackendState, scope: ConvertScope): HTTPRouteDestination['destination'] {
  return { host: serviceHost(b.service!, scope.domainSuffix), port: { number: b.service!.port } };
}

/** One Istio rule: the match, and the rule's filters and backends as Istio's fields. */
function translate(route: RouteState, rule: HTTPRouteRule | GRPCRouteRule, ruleIndex: number, match: HTTPMatchRequest, scope: ConvertScope, half: { matched: string; slash: boolean } | undefined): HTTPRoute {
  const out: HTTPRoute = { match: [match] };
  const filters = filtersOf(rule);
  const request = headerOperations(filters.find((f) => f.type === 'RequestHeaderModifier')?.requestHeaderModifier);
  const response = headerOperations(filters.find((f) => f.type === 'ResponseHeaderModifier')?.responseHeaderModifier);
  if (request || response) out.headers = { ...(request ? { request } : {}), ...(response ? { response } : {}) };
  const cors = filters.find((f) => f.type === 'CORS')?.cors;
  if (cors) out.corsPolicy = corsPolicy(cors);

  const redirect = filters.find((f) => f.type === 'RequestRedirect')?.requestRedirect;
  if (redirect) {
    out.redirect = { redirectCode: redirect.statusCode ?? 302 };
    if (redirect.scheme) out.redirect.scheme = redirect.scheme;
    if (redirect.hostname) out.redirect.authority = redirect.hostname;
    // The spec: an explicit port; else the scheme's well-known port; else the listener's port.
    if (redirect.port !== undefined) out.redirect.port = redirect.port;
    else if (redirect.scheme) out.redirect.derivePort = 'FROM_PROTOCOL_DEFAULT';
    else if (scope.port) out.redirect.port = scope.port;
    if (redirect.path?.type === 'ReplaceFullPath') out.redirect.uri = redirect.path.replaceFullPath ?? '/';
    else if (redirect.path?.type === 'ReplacePrefixMatch') out.redirect.prefixRewrite = prefixReplacement(redirect.path, half);
    return out;
  }

  const rewrite = filters.find((f) => f.type === 'URLRewrite')?.urlRewrite;
  if (rewrite) {
    out.rewrite = {};
    if (rewrite.hostname) out.rewrite.authority = rewrite.hostname;
    if (rewrite.path?.type === 'ReplaceFullPath') out.rewrite.uriRegexRewrite = { match: '^/.*$', rewrite: rewrite.path.replaceFullPath ?? '/' };
    else if (rewrite.path?.type === 'ReplacePrefixMatch') out.rewrite.uri = prefixReplacement(rewrite.path, half);
  }

  const mirrors = filters
    .map((f, i) => ({ f, b: route.filterBackends.get(`${ruleIndex}/${i}`) }))
    .filter(({ f, b }) => f.type === 'RequestMirror' && b?.service && !b.problem);
  if (mirrors.length) {
    out.mirrors = mirrors.map(({ f, b }) => {
      const m = f.requestMirror!;
      const percent = m.percent ?? (m.fraction ? (m.fraction.numerator / (m.fraction.denominator ?? 100)) * 100 : 100);
      return { destination: destinationOf(b!, scope), percentage: { value: percent } };
    });
  }

  const timeouts = (rule as HTTPRouteRule).timeouts;
  const retry = (rule as HTTPRouteRule).retry;
  if (timeouts?.request && timeouts.request !== '0s') out.timeout = timeouts.request;
  if (retry) {
    // Istio's conversion: the codes are retried on, with Istio's own retry conditions.
    out.retries = { attempts: retry.attempts ?? 1, retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...(retry.codes ?? []).map(String)].join(','), ...(retry.backoff ? { backoff: retry.backoff } : {}) };
    if (timeouts?.backendRequest) out.retries.perTryTimeout = timeouts.backendRequest;
  } else if (timeouts?.backendRequest && timeouts.backendRequest !== '0s') {
    // A per-try timeout with Istio's default retries; with no request timeout, the backend's
    // timeout bounds the whole request as well (Istio's conversion).
    out.retries = { attempts: 2, perTryTimeout: timeouts.backendRequest, retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes' };
    if (!out.timeout) out.timeout = timeouts.backendRequest;
  }

  const backends = route.rules[ruleIndex] ?? [];
  const refs = (rule.backendRefs ?? []) as HTTPBackendRef[];
  const routable = backends.filter((b) => b.weight > 0);
  if (refs.length === 0 || routable.length === 0 || routable.every((b) => b.problem)) {
    // No backend to send to (none named, all weight 0, or none resolved): the spec's 500.
    out.directResponse = { status: 500 };
    delete out.rewrite;
    return out;
  }
  out.route = routable.map((b): HTTPRouteDestination => {
    const filters = (refs[b.index]?.filters ?? []) as HTTPRouteFilter[];
    const req = headerOperations(filters.find((f) => f.type === 'RequestHeaderModifier')?.requestHeaderModifier);
    const res = headerOperations(filters.find((f) => f.type === 'ResponseHeaderModifier')?.responseHeaderModifier);
    // A backend that does not resolve takes its share of the requests to a cluster that does
    // not exist, which the proxy answers 503 (NC): the spec asks for an error for that share.
    const destination = b.service && !b.problem ? destinationOf(b, scope) : { host: `${b.ref.name}.${b.namespace}.invalid`, port: { number: b.ref.port ?? 0 } };
    return { destination, weight: b.weight, ...(req || res ? { headers: { ...(req ? { request: req } : {}), ...(res ? { response: res } : {}) } } : {}) };
  });
  return out;
}

/** The routes of a set of route states that target `kinds` (HTTP-like routes). */
export function httpLikeRoutes(routes: readonly RouteState[]): RouteState[] {
  return routes.filter((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute');
}

/** Whether a resource was written in the Gateway API's HTTP semantics (for callers that mix). */
export const isGatewayApiRoute = (r: Resource) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute';
