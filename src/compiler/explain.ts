/**
 * explainRequest: which listener, route table, virtual host, route and cluster a request
 * would take through a compiled ProxyConfig. Pure. It follows the matching rules the
 * ProxyConfig contract states (Envoy's): the first route whose match holds wins. It is the
 * tool of the simulation tests (as Istio's pilot simulation tests send a synthetic request
 * through generated config) and of `sinew explain`.
 */
import { RE2JS } from 're2js';
import type {
  HeaderMatcher,
  Listener,
  ProxyConfig,
  Route,
  RouteConfiguration,
  RouteMatch,
  StringMatch,
  VirtualHost,
  WeightedCluster,
} from '../api/proxy-config.js';

export interface ExplainRequest {
  /** Listener name; default: the listener on `port`, else the outbound capture listener. */
  listener?: string;
  /** The destination port (outbound: the service port of the URL; gateways: the listener's port). */
  port: number;
  /** Host header / authority, with or without port. */
  authority: string;
  /** Path, optionally with a query string. */
  path: string;
  method?: string;
  scheme?: string;
  headers?: Readonly<Record<string, string>>;
}

export type ExplainOutcome = 'route' | 'redirect' | 'direct' | 'tcp' | 'no-listener' | 'no-route-config' | 'no-virtual-host' | 'no-route';

export interface Explanation {
  outcome: ExplainOutcome;
  listener?: string;
  routeConfig?: string;
  virtualHost?: string;
  route?: string;
  /** Weighted destinations of the route, with whether each cluster exists in the config. */
  destinations?: (WeightedCluster & { exists: boolean })[];
  /** The destination with the highest weight (the only one, usually). */
  cluster?: string;
  /** The route taken, whole (timeouts, retries, rewrites, faults...). */
  detail?: Route;
  /** Redirect or direct-response status. */
  status?: number;
  /** Virtual host with requireTls and a plaintext request: a 301 to https. */
  requireTls?: boolean;
}

/** Explains one request against a compiled config. */
export function explainRequest(config: ProxyConfig, req: ExplainRequest): Explanation {
  const listener = selectListener(config, req);
  if (!listener) return { outcome: 'no-listener' };
  if (listener.protocol === 'tcp') {
    const route = listener.tcp?.routes.find((r) => r.port === undefined || r.port === req.port);
    if (!route) return { outcome: 'no-route', listener: listener.name };
    return { outcome: 'tcp', listener: listener.name, ...destinationsOf(config, route.destinations) };
  }
  const table = selectRouteConfig(config, listener, req.port);
  if (!table) return { outcome: 'no-route-config', listener: listener.name };
  const authority = req.authority.toLowerCase();
  const vh = selectVirtualHost(table.virtualHosts, authority);
  const base = { listener: listener.name, routeConfig: table.name };
  if (!vh) return { outcome: 'no-virtual-host', ...base };
  const withVh = { ...base, virtualHost: vh.name };
  if (vh.requireTls && (req.scheme ?? 'http') === 'http') return { outcome: 'redirect', ...withVh, status: 301, requireTls: true };
  const route = vh.routes.find((r) => routeMatches(r.match, req, authority));
  if (!route) return { outcome: 'no-route', ...withVh };
  return describeRoute(config, route, withVh);
}

function describeRoute(config: ProxyConfig, route: Route, base: Partial<Explanation>): Explanation {
  const a = route.action;
  if (a.kind === 'redirect') return { outcome: 'redirect', ...base, route: route.name, detail: route, status: a.responseCode };
  if (a.kind === 'direct') return { outcome: 'direct', ...base, route: route.name, detail: route, status: a.status };
  return { outcome: 'route', ...base, route: route.name, detail: route, ...destinationsOf(config, a.destinations) };
}

function destinationsOf(config: ProxyConfig, dests: readonly WeightedCluster[]): Pick<Explanation, 'destinations' | 'cluster'> {
  const names = new Set(config.clusters.map((c) => c.name));
  const destinations = dests.map((d) => ({ ...d, exists: names.has(d.cluster) }));
  let best: WeightedCluster | undefined;
  for (const d of dests) if (!best || d.weight > best.weight) best = d;
  return { destinations, cluster: best?.cluster };
}

export function selectListener(config: ProxyConfig, req: Pick<ExplainRequest, 'listener' | 'port'>): Listener | undefined {
  if (req.listener) return config.listeners.find((l) => l.name === req.listener);
  return (
    config.listeners.find((l) => l.address.port === req.port && l.direction !== 'inbound') ??
    // A gateway listener may listen elsewhere than its server port (embedded mode's port mapping).
    config.listeners.find((l) => l.direction === 'gateway' && (l.http?.routeConfigName === `http.${req.port}` || l.name.endsWith(`_${req.port}`))) ??
    config.listeners.find((l) => l.direction === 'outbound') ??
    config.listeners.find((l) => l.address.port === req.port)
  );
}

/** Outbound capture picks the table named after the destination port, else the fallback (ProxyConfig contract). */
export function selectRouteConfig(config: ProxyConfig, listener: Listener, port: number): RouteConfiguration | undefined {
  const http = listener.http;
  if (!http) return undefined;
  const name = http.routeConfigByPort ? (config.routeConfigs.some((r) => r.name === String(port)) ? String(port) : http.fallbackRouteConfigName) : http.routeConfigName;
  return config.routeConfigs.find((r) => r.name === name);
}

/**
 * Envoy's virtual host selection: exact domain, then the longest suffix wildcard
 * (`*.example.com`), then the longest prefix wildcard (`example.*`), then `*`.
 */
export function selectVirtualHost(hosts: readonly VirtualHost[], authority: string): VirtualHost | undefined {
  const a = authority.toLowerCase();
  let bestSuffix: { vh: VirtualHost; len: number } | undefined;
  let bestPrefix: { vh: VirtualHost; len: number } | undefined;
  let any: VirtualHost | undefined;
  for (const vh of hosts) {
    for (const d of vh.domains) {
      const domain = d.toLowerCase();
      if (domain === a) return vh;
      if (domain === '*') any ??= vh;
      else if (domain.startsWith('*')) {
        const suffix = domain.slice(1);
        if (a.endsWith(suffix) && a.length > suffix.length && (!bestSuffix || suffix.length > bestSuffix.len)) bestSuffix = { vh, len: suffix.length };
      } else if (domain.endsWith('*')) {
        const prefix = domain.slice(0, -1);
        if (a.startsWith(prefix) && a.length > prefix.length && (!bestPrefix || prefix.length > bestPrefix.len)) bestPrefix = { vh, len: prefix.length };
      }
    }
  }
  return bestSuffix?.vh ?? bestPrefix?.vh ?? any;
}

const regexCache = new Map<string, RE2JS>();

/** StringMatch semantics: exact, prefix (optionally case-insensitive), RE2 regex over the whole value. */
export function stringMatches(m: StringMatch, value: string, ignoreCase = false): boolean {
  if ('regex' in m) {
    const pattern = ignoreCase ? `(?i)${m.regex}` : m.regex;
    let re = regexCache.get(pattern);
    if (!re) {
      re = RE2JS.compile(pattern);
      if (regexCache.size < 1000) regexCache.set(pattern, re);
    }
    return re.matches(value);
  }
  const ci = ignoreCase || m.ignoreCase === true;
  const v = ci ? value.toLowerCase() : value;
  if ('exact' in m) return v === (ci ? m.exact.toLowerCase() : m.exact);
  return v.startsWith(ci ? m.prefix.toLowerCase() : m.prefix);
}

/** Envoy's HeaderUtility::matchHeaders, including invert and treat_missing_header_as_empty. */
function headerMatches(h: HeaderMatcher, raw: string | undefined): boolean {
  const value = raw === undefined && h.match && h.treatMissingAsEmpty ? '' : raw;
  const holds = value !== undefined && (!h.match || stringMatches(h.match, value));
  return h.invert ? !holds : holds;
}

/** Does a request meet every condition of a route match (AND)? */
export function routeMatches(m: RouteMatch, req: ExplainRequest, authority = req.authority.toLowerCase()): boolean {
  const q = req.path.indexOf('?');
  const path = q >= 0 ? req.path.slice(0, q) : req.path;
  const query = new URLSearchParams(q >= 0 ? req.path.slice(q + 1) : '');
  const method = (req.method ?? 'GET').toUpperCase();
  const scheme = req.scheme ?? 'http';
  if (m.path && !stringMatches(m.path, path, m.ignorePathCase)) return false;
  if (m.method && !stringMatches(m.method, method)) return false;
  if (m.scheme && !stringMatches(m.scheme, scheme)) return false;
  if (m.authority && !stringMatches(m.authority, authority)) return false;
  if (m.port !== undefined && m.port !== req.port) return false;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  headers[':method'] = method;
  headers[':path'] = req.path;
  headers[':authority'] = authority;
  headers[':scheme'] = scheme;
  for (const h of m.headers ?? []) if (!headerMatches(h, headers[h.name])) return false;
  for (const p of m.queryParams ?? []) {
    const value = query.get(p.name);
    if (value === null) return false;
    if (p.match && !stringMatches(p.match, value)) return false;
  }
  return true;
}
