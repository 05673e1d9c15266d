/**
 * explainRequest: which listener, route table, virtual host, route and cluster a request
 * would take through a compiled ProxyConfig. Pure. Virtual hosts and routes are chosen by the
 * proxy's own matcher (src/semantics: the same compiled route match and domain index the
 * proxy routes with), so an explanation cannot disagree with what the proxy does. It is the
 * tool of the simulation tests (as Istio's pilot simulation tests send a synthetic request
 * through generated config) and of `sinew explain`.
 */
import type { Listener, ProxyConfig, Route, RouteConfiguration, WeightedCluster } from '../api/proxy-config.js';
import { SinewError } from '../core/errors.js';
import { compileRouteMatch, selectRoute, type CompiledRouteMatch, type RequestView } from '../semantics/route-match.js';
import type { Problems } from '../semantics/string-match.js';
import { compileVirtualHosts, selectByDomain, type DomainIndex, type MatchingVirtualHost } from '../semantics/virtual-hosts.js';

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
  const view = requestView(req);
  const vh = selectByDomain(compiledTable(table), view.authority);
  const base = { listener: listener.name, routeConfig: table.name };
  if (!vh) return { outcome: 'no-virtual-host', ...base };
  const withVh = { ...base, virtualHost: vh.name };
  if (vh.requireTls && view.scheme !== 'https') return { outcome: 'redirect', ...withVh, status: 301, requireTls: true };
  const selected = selectRoute(vh.routes, view);
  if (!selected) return { outcome: 'no-route', ...withVh };
  return describeRoute(config, selected.route.route, withVh);
}

// === the proxy's matcher over the compiled config ===

interface ExplainedRoute {
  route: Route;
  match: CompiledRouteMatch;
}

/** Route tables compiled for matching, once per frozen table (compiled configs are frozen). */
const compiledTables = new WeakMap<RouteConfiguration, DomainIndex<MatchingVirtualHost<ExplainedRoute>>>();

/**
 * A route table compiled for matching as the proxy compiles it (proxy/http/route-table.ts
 * calls the same `compileVirtualHosts` and `compileRouteMatch`). A table the proxy would
 * reject (a regex RE2 cannot compile, one domain in two virtual hosts) throws with every
 * problem, as the proxy would NACK it.
 */
function compiledTable(rc: RouteConfiguration): DomainIndex<MatchingVirtualHost<ExplainedRoute>> {
  const cached = compiledTables.get(rc);
  if (cached) return cached;
  const found: string[] = [];
  const problems: Problems = { add: (path, message) => found.push(`${path}: ${message}`) };
  const index = compileVirtualHosts(rc, `routeConfigs[${JSON.stringify(rc.name)}]`, problems, (route, path) => ({ route, match: compileRouteMatch(route.match, `${path}.match`, problems) }));
  if (found.length) throw new SinewError('SNW_ERR_PROXY_INVALID_CONFIG', `a proxy would reject this config:\n  ${found.join('\n  ')}`);
  if (Object.isFrozen(rc)) compiledTables.set(rc, index);
  return index;
}

/**
 * The request as the proxy's router sees it: path without query or fragment, lower-cased
 * authority, method upper-cased (GET when not given), scheme `http` unless given, headers by
 * lower-case name with the pseudo-headers the proxy answers for.
 */
function requestView(req: ExplainRequest): RequestView {
  const hash = req.path.indexOf('#');
  const target = hash >= 0 ? req.path.slice(0, hash) : req.path;
  const q = target.indexOf('?');
  const path = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q + 1) : '';
  const method = (req.method ?? 'GET').toUpperCase();
  const scheme = req.scheme ?? 'http';
  const authority = req.authority.toLowerCase();
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(req.headers ?? {})) headers.set(k.toLowerCase(), v);
  headers.set(':method', method);
  headers.set(':path', query ? `${path}?${query}` : path);
  headers.set(':authority', authority);
  headers.set(':scheme', scheme);
  headers.set('host', authority);
  return { method, scheme, authority, path, query, port: req.port, header: (name) => headers.get(name) };
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
