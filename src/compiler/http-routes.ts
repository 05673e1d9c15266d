/**
 * VirtualService HTTP rules -> ordered routes (Istio's BuildHTTPRoutesForVirtualService and
 * translateRoute, pilot/pkg/networking/core/route/route.go).
 */
import {
  HTTP_FILTERS,
  outboundClusterName,
  type ClaimMatcher,
  type CorsPolicy,
  type DirectResponseAction,
  type FaultInjection,
  type HashPolicy,
  type HeaderMatcher,
  type HeaderOperations,
  type MirrorPolicy,
  type QueryParamMatcher,
  type RedirectAction,
  type RetryPolicy,
  type RewriteAction,
  type Route,
  type RouteAction,
  type RouteMatch,
  type StringMatch,
  type WeightedCluster,
} from '../api/proxy-config.js';
import type { CompileContext, VirtualServiceResource } from './context.js';
import type { Destination, HTTPMatchRequest, HTTPRetry, HTTPRoute, HeaderOperationsSpec, StringMatchSpec } from './istio-types.js';
import { clusterPolicy, hashPolicy } from './policy.js';
import { isExportedTo } from '../semantics/visibility.js';
import { routingClaimPath } from '../semantics/jwt-claim-route.js';
import { durationMs, stringMatch } from './util.js';

/**
 * The Sinew annotation that turns on sticky weighted routing for a VirtualService
 * (istio/istio#9764): with a consistentHash DestinationRule, a user's hash picks the side
 * of a weighted split, so the same user stays on one version during a canary.
 */
export const STICKY_CANARY_ANNOTATION = 'sinew.dev/sticky-canary';

/** Where the routes are being built: the mesh (a sidecar) or a gateway's server port. */
export interface RouteScope {
  /** `mesh`, or the gateway `namespace/name`s the listener serves. */
  gateways: readonly string[];
  /** The port of the route table (service port for sidecars, server port for gateways). */
  port: number;
}

/** The gateway names a VirtualService binds to, as `namespace/name` (or `mesh`); default `mesh`. */
export function vsGateways(list: readonly string[] | undefined, vsNamespace: string): string[] {
  if (!list || list.length === 0) return ['mesh'];
  return list.map((g) => (g === 'mesh' || g.includes('/') ? g : `${vsNamespace}/${g}`));
}

/**
 * Istio's default retry policy when a route sets none (retry.DefaultPolicy): 2 retries on
 * connect-failure, refused-stream, unavailable, cancelled and retriable-status-codes, with
 * no retriable status code configured (so an upstream 503 is not retried), the
 * previous-hosts predicate, and Envoy's 25 ms backoff base.
 */
export function defaultRetryPolicy(): RetryPolicy {
  return {
    attempts: 2,
    retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
    backoffBaseMs: 25,
    avoidPreviousHosts: true,
  };
}

/** HTTPRetry -> retry policy (Istio retry.ConvertPolicy). `attempts: 0` turns retries off. */
export function retryPolicy(spec: HTTPRetry | undefined): RetryPolicy | undefined {
  if (!spec) return defaultRetryPolicy();
  if (!spec.attempts || spec.attempts <= 0) return undefined;
  const policy = defaultRetryPolicy();
  policy.attempts = spec.attempts;
  const perTry = durationMs(spec.perTryTimeout);
  if (perTry) policy.perTryTimeoutMs = perTry;
  // Envoy's retry_back_off base_interval (Istio HTTPRetry.backoff; the Gateway API's retry.backoff).
  const backoff = durationMs(spec.backoff);
  if (backoff) policy.backoffBaseMs = backoff;
  if (spec.retryOn) {
    // Istio: numeric entries are status codes to retry and imply retriable-status-codes.
    const on: string[] = [];
    const codes: number[] = [];
    for (const part of spec.retryOn.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (/^\d+$/.test(part)) codes.push(Number(part));
      else on.push(part);
    }
    if (codes.length && !on.includes('retriable-status-codes')) on.push('retriable-status-codes');
    policy.retryOn = on;
    if (codes.length) policy.retriableStatusCodes = codes;
  }
  return policy;
}

const GRPC_CODES: Record<string, number> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

/** Fault injection; an absent percentage means every request (Istio translateFault). */
function fault(spec: HTTPRoute['fault']): FaultInjection | undefined {
  if (!spec) return undefined;
  const out: FaultInjection = {};
  if (spec.delay) {
    const ms = durationMs(spec.delay.fixedDelay);
    if (ms !== undefined) out.delay = { fixedDelayMs: ms, percentage: spec.delay.percentage?.value ?? spec.delay.percent ?? 100 };
  }
  if (spec.abort) {
    const percentage = spec.abort.percentage?.value ?? 100;
    if (spec.abort.httpStatus !== undefined) out.abort = { httpStatus: spec.abort.httpStatus, percentage };
    else if (spec.abort.grpcStatus !== undefined) {
      const code = /^\d+$/.test(spec.abort.grpcStatus) ? Number(spec.abort.grpcStatus) : GRPC_CODES[spec.abort.grpcStatus.toUpperCase()];
      if (code !== undefined) out.abort = { grpcStatus: code, percentage };
    }
  }
  return out.delay || out.abort ? out : undefined;
}

function headerOps(spec: HeaderOperationsSpec | undefined): HeaderOperations | undefined {
  if (!spec) return undefined;
  const out: HeaderOperations = {};
  if (spec.set && Object.keys(spec.set).length) out.set = { ...spec.set };
  if (spec.add && Object.keys(spec.add).length) out.add = { ...spec.add };
  if (spec.remove?.length) out.remove = [...spec.remove];
  return Object.keys(out).length ? out : undefined;
}

function cors(spec: HTTPRoute['corsPolicy']): CorsPolicy | undefined {
  if (!spec) return undefined;
  const origins = (spec.allowOrigins ?? []).map((o) => stringMatch(o)).filter((o) => o !== undefined);
  for (const o of spec.allowOrigin ?? []) origins.push(o === '*' ? { prefix: '' } : { exact: o });
  const maxAge = durationMs(spec.maxAge);
  return {
    allowOrigins: origins,
    allowMethods: [...(spec.allowMethods ?? [])],
    allowHeaders: [...(spec.allowHeaders ?? [])],
    exposeHeaders: [...(spec.exposeHeaders ?? [])],
    ...(maxAge !== undefined ? { maxAgeSeconds: Math.floor(maxAge / 1000) } : {}),
    ...(spec.allowCredentials !== undefined ? { allowCredentials: spec.allowCredentials } : {}),
    unmatchedPreflights: spec.unmatchedPreflights === 'IGNORE' ? 'IGNORE' : 'FORWARD',
  };
}

/**
 * A header StringMatch. Istio's isCatchAllHeaderMatch: `{}`, `prefix: ""` and `regex: "*"`
 * all mean "the header is present".
 */
function headerStringMatch(sm: StringMatchSpec | undefined): StringMatch | undefined {
  if (!sm || sm.prefix === '' || sm.regex === '*') return undefined;
  return stringMatch(sm);
}

/**
 * Istio HTTPMatchRequest -> RouteMatch. Header names are lower-cased; `{}` means present. A
 * key `@request.auth.claims.<name>` is a condition on the verified JWT's claims instead
 * (Istio's TranslateRouteMatch: the metadata matcher takes precedence over the header one),
 * its claim names kept as written.
 */
export function routeMatch(m: HTTPMatchRequest | undefined): RouteMatch {
  const out: RouteMatch = {};
  if (!m) return out;
  // Istio's catch-all uri (`regex: "*"`) matches every path.
  const path = m.uri?.regex === '*' ? undefined : stringMatch(m.uri);
  if (path) out.path = path;
  if (m.ignoreUriCase) out.ignorePathCase = true;
  const method = stringMatch(m.method);
  if (method) out.method = method;
  const scheme = stringMatch(m.scheme);
  if (scheme) out.scheme = scheme;
  const authority = stringMatch(m.authority);
  if (authority) out.authority = authority;
  const headers: HeaderMatcher[] = [];
  const claims: ClaimMatcher[] = [];
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const match = headerStringMatch(sm);
    const claim = routingClaimPath(name);
    if (claim) claims.push(match ? { path: claim, match } : { path: claim });
    else headers.push(match ? { name: name.toLowerCase(), match } : { name: name.toLowerCase() });
  }
  // withoutHeaders: the inverted matcher, with a missing header read as empty so that
  // "requests without end-user: jason" includes requests with no end-user at all, while
  // `regex: ".*"` (which matches the empty value) excludes everyone. An inverted claim
  // condition holds for a request without a verified token (Envoy's MetadataMatcher invert).
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) {
    const match = headerStringMatch(sm);
    const claim = routingClaimPath(name);
    if (claim) claims.push(match ? { path: claim, match, invert: true } : { path: claim, invert: true });
    else headers.push(match ? { name: name.toLowerCase(), match, invert: true, treatMissingAsEmpty: true } : { name: name.toLowerCase(), invert: true });
  }
  if (claims.length) out.claims = claims;
  if (headers.length) out.headers = headers;
  const qp: QueryParamMatcher[] = [];
  for (const [name, sm] of Object.entries(m.queryParams ?? {})) {
    const match = stringMatch(sm);
    qp.push(match ? { name, match } : { name });
  }
  if (qp.length) out.queryParams = qp;
  if (m.port) out.port = m.port;
  return out;
}

/**
 * Does this match block apply to the proxy being compiled? Istio drops blocks whose
 * sourceLabels / sourceNamespace do not select the proxy, whose `gateways` do not include
 * the current one, or whose port differs from the route table's (DESIGN.md behaviour 3).
 */
function matchApplies(ctx: CompileContext, m: HTTPMatchRequest, scope: RouteScope, vsNamespace: string): boolean {
  if (m.sourceLabels && !ctx.nodeMatches(m.sourceLabels)) return false;
  if (m.sourceNamespace && !ctx.isNodeNamespace(m.sourceNamespace)) return false;
  if (m.gateways && m.gateways.length > 0) {
    const gws = vsGateways(m.gateways, vsNamespace);
    if (!gws.some((g) => scope.gateways.includes(g))) return false;
  }
  if (m.port && m.port !== scope.port) return false;
  return true;
}

/** Merges a root match with a delegate's (Istio mergeHTTPMatchRequest): the delegate narrows the root. */
function mergeMatch(root: HTTPMatchRequest | undefined, delegate: HTTPMatchRequest | undefined): HTTPMatchRequest | undefined {
  if (!root) return delegate;
  if (!delegate) return root;
  const merged: HTTPMatchRequest = { ...root };
  for (const [k, v] of Object.entries(delegate)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  merged.headers = { ...(delegate.headers ?? {}), ...(root.headers ?? {}) };
  merged.withoutHeaders = { ...(delegate.withoutHeaders ?? {}), ...(root.withoutHeaders ?? {}) };
  merged.queryParams = { ...(delegate.queryParams ?? {}), ...(root.queryParams ?? {}) };
  merged.sourceLabels = { ...(delegate.sourceLabels ?? {}), ...(root.sourceLabels ?? {}) };
  return merged;
}

/** A rule to translate, with the namespace its hosts resolve in and the name its routes carry. */
interface RuleSource {
  rule: HTTPRoute;
  namespace: string;
  name: string;
  /** Root matches a delegate's rules are merged under. */
  parentMatches?: (HTTPMatchRequest | undefined)[];
}

/** Routes of one VirtualService for a route table, in rule order (first match wins). */
export function buildVirtualServiceRoutes(ctx: CompileContext, vs: VirtualServiceResource, scope: RouteScope): Route[] {
  const sticky = vs.metadata.annotations?.[STICKY_CANARY_ANNOTATION] === 'true';
  const routes: Route[] = [];
  const ns = vs.metadata.namespace;
  const rules: RuleSource[] = [];
  (vs.spec.http ?? []).forEach((rule, i) => {
    const name = `${ns}/${vs.metadata.name}/${i}`;
    if (rule.delegate?.name) {
      const dns = rule.delegate.namespace ?? ns;
      const delegate = ctx.findVirtualService(rule.delegate.name, dns);
      // A delegate must be exported to the root's namespace (Istio); otherwise the rule is dropped.
      if (!delegate || !isExportedTo(delegate.spec.exportTo, dns, ns)) return;
      (delegate.spec.http ?? []).forEach((drule, j) => {
        if (drule.delegate) return; // Istio supports one level of delegation only
        rules.push({ rule: drule, namespace: dns, name: `${name}>${dns}/${delegate.metadata.name}/${j}`, parentMatches: rule.match?.length ? rule.match : [undefined] });
      });
      return;
    }
    rules.push({ rule, namespace: ns, name });
  });
  for (const src of rules) {
    const rootMatches = src.parentMatches ?? [undefined];
    const own = src.rule.match?.length ? src.rule.match : [undefined];
    const combined: (HTTPMatchRequest | undefined)[] = [];
    for (const r of rootMatches) for (const o of own) combined.push(mergeMatch(r, o));
    const hasMatches = combined.some((m) => m !== undefined);
    const applicable = combined.filter((m) => !m || matchApplies(ctx, m, scope, ns));
    if (hasMatches && applicable.length === 0) continue; // every block excludes this proxy
    const base = translateRule(ctx, src.rule, src.namespace, scope, sticky);
    // A gateway's route table serves one server port, which matchApplies has checked: the
    // proxy may listen on another (sinew up maps server ports to free ones), so the route
    // keeps no port of its own, as Envoy's routes have none in Istio's gateway config.
    const atGateway = !scope.gateways.includes('mesh');
    applicable.forEach((m, j) => {
      const match = routeMatch(m);
      if (atGateway) delete match.port;
      routes.push({ ...base, name: applicable.length > 1 ? `${src.name}.${j}` : src.name, match });
    });
    // A rule without conditions matches everything: later rules can never be reached.
    if (!hasMatches) break;
  }
  return routes;
}

/** The route used when no VirtualService covers a service: everything to the service port (Istio's default route). */
export function defaultRoute(ctx: CompileContext, host: string, port: number): Route {
  const action: RouteAction = { kind: 'route', destinations: [{ cluster: outboundClusterName(port, undefined, host), weight: 100 }], retry: defaultRetryPolicy() };
  // Istio puts the DestinationRule's consistent hash on the default route too.
  const hash = hashPolicyFor(ctx, host, undefined, port);
  if (hash) action.hashPolicy = hash;
  return { name: 'default', match: { path: { prefix: '/' } }, action };
}

/** The cluster a Destination names, as Istio's GetDestinationCluster picks its port. */
export function destinationCluster(ctx: CompileContext, d: Destination, namespace: string, listenerPort: number): { cluster: string; host: string; port: number } {
  const host = ctx.resolve(d.host, namespace);
  const service = ctx.service(host);
  let port = d.port?.number;
  // No port: the service's only port, else the port of the route table being built.
  if (port === undefined) port = service && service.ports.length === 1 ? service.ports[0].port : listenerPort;
  return { cluster: outboundClusterName(port, d.subset, host), host, port };
}

function translateRule(ctx: CompileContext, rule: HTTPRoute, namespace: string, scope: RouteScope, sticky: boolean): Omit<Route, 'name' | 'match'> {
  const out: Omit<Route, 'name' | 'match'> = { action: actionOf(ctx, rule, namespace, scope, sticky) };
  const reqHeaders = headerOps(rule.headers?.request);
  if (reqHeaders) out.requestHeaders = reqHeaders;
  const resHeaders = headerOps(rule.headers?.response);
  if (resHeaders) out.responseHeaders = resHeaders;
  // CORS and fault injection are HTTP filters; a route carries their config by filter name
  // (Envoy's typed_per_filter_config), as Istio's route generation does.
  const perFilter: Record<string, unknown> = {};
  const c = cors(rule.corsPolicy);
  if (c) perFilter[HTTP_FILTERS.cors] = c;
  const f = fault(rule.fault);
  if (f) perFilter[HTTP_FILTERS.fault] = f;
  if (c || f) out.perFilterConfig = perFilter;
  return out;
}

function actionOf(ctx: CompileContext, rule: HTTPRoute, namespace: string, scope: RouteScope, sticky: boolean): RouteAction | RedirectAction | DirectResponseAction {
  if (rule.redirect) {
    const r = rule.redirect;
    const action: RedirectAction = { kind: 'redirect', responseCode: r.redirectCode ?? 301 };
    if (r.scheme) action.scheme = r.scheme;
    if (r.authority) action.host = r.authority;
    if (r.port) action.port = r.port;
    if (r.derivePort) action.derivePort = r.derivePort;
    if (r.uri) action.path = r.uri;
    else if (r.prefixRewrite !== undefined) action.prefixRewrite = r.prefixRewrite;
    return action;
  }
  if (rule.directResponse) {
    const d = rule.directResponse;
    const action: DirectResponseAction = { kind: 'direct', status: d.status };
    if (d.body?.string !== undefined) action.body = d.body.string;
    else if (d.body?.bytes !== undefined) action.body = Buffer.from(d.body.bytes, 'base64').toString('utf8');
    return action;
  }
  const dests = rule.route ?? [];
  const destinations: WeightedCluster[] = dests.map((rd) => {
    const { cluster } = destinationCluster(ctx, rd.destination, namespace, scope.port);
    // A lone destination gets everything (DESIGN.md behaviour 2).
    const wc: WeightedCluster = { cluster, weight: rd.weight ?? (dests.length === 1 ? 100 : 0) };
    const rq = headerOps(rd.headers?.request);
    if (rq) wc.requestHeaders = rq;
    const rs = headerOps(rd.headers?.response);
    if (rs) wc.responseHeaders = rs;
    return wc;
  });
  const action: RouteAction = { kind: 'route', destinations };
  const timeout = durationMs(rule.timeout);
  if (timeout) action.timeoutMs = timeout;
  const retry = retryPolicy(rule.retries);
  if (retry) action.retry = retry;
  const rewrite: RewriteAction = {};
  if (rule.rewrite?.uri !== undefined) rewrite.pathPrefix = rule.rewrite.uri;
  const rr = rule.rewrite?.uriRegexRewrite;
  if (rr?.match !== undefined) rewrite.pathRegex = { pattern: rr.match, substitution: rr.rewrite ?? '' };
  if (rule.rewrite?.authority) rewrite.authority = rule.rewrite.authority;
  if (Object.keys(rewrite).length) action.rewrite = rewrite;
  const mirrors: MirrorPolicy[] = [];
  if (rule.mirror) {
    mirrors.push({ cluster: destinationCluster(ctx, rule.mirror, namespace, scope.port).cluster, percentage: rule.mirrorPercentage?.value ?? rule.mirrorPercent ?? 100 });
  }
  for (const m of rule.mirrors ?? []) {
    mirrors.push({ cluster: destinationCluster(ctx, m.destination, namespace, scope.port).cluster, percentage: m.percentage?.value ?? 100 });
  }
  if (mirrors.length) action.mirrors = mirrors;
  const hash = routeHashPolicy(ctx, dests.map((d) => d.destination), namespace, scope.port);
  if (hash) {
    action.hashPolicy = hash;
    if (sticky && destinations.length > 1) action.stickyWeightedHash = true;
  }
  return action;
}

/**
 * The hash policy for a route: the consistentHash of the first destination whose
 * DestinationRule (subset and port applied) has one, as Istio's hashForService does.
 */
function routeHashPolicy(ctx: CompileContext, dests: Destination[], namespace: string, listenerPort: number): HashPolicy | undefined {
  for (const d of dests) {
    const { host, port } = destinationCluster(ctx, d, namespace, listenerPort);
    const hp = hashPolicyFor(ctx, host, d.subset, port);
    if (hp) return hp;
  }
  return undefined;
}

/** The consistent-hash policy of a host's DestinationRule for a subset and port, if any. */
function hashPolicyFor(ctx: CompileContext, host: string, subsetName: string | undefined, port: number): HashPolicy | undefined {
  const service = ctx.service(host);
  if (!service) return undefined;
  const dr = ctx.destinationRule(service);
  if (!dr) return undefined;
  const subset = subsetName ? dr.subsets.find((s) => s.name === subsetName) : undefined;
  const policy = clusterPolicy(dr.trafficPolicy, subset?.trafficPolicy, port);
  return hashPolicy(policy?.loadBalancer);
}

