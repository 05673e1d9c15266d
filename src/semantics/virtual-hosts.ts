/**
 * Envoy's virtual host selection (RouteConfiguration): the request's authority (lower-cased,
 * port included when the request had one) picks a virtual host by its domains: an exact
 * domain first, then the longest suffix wildcard (`*.example.com`), then the longest prefix
 * wildcard (`example.*`), then `*`. A wildcard stands for at least one character (Envoy:
 * `*.foo.com` does not match `.foo.com`). Indexed once per config, so a request costs one map
 * lookup when its authority is named exactly.
 */
import type { Route, RouteConfiguration } from '../api/proxy-config.js';
import type { CompiledRouteMatch } from './route-match.js';
import type { Problems } from './string-match.js';

export interface DomainIndex<V> {
  readonly exact: ReadonlyMap<string, V>;
  /** `*.suffix` domains as [suffix including the dot, value], longest suffix first. */
  readonly suffixes: readonly (readonly [string, V])[];
  /** `prefix.*` domains as [prefix including the dot, value], longest prefix first. */
  readonly prefixes: readonly (readonly [string, V])[];
  readonly any?: V;
}

/** A virtual host compiled for matching: its routes in order, each carrying its compiled match. */
export interface MatchingVirtualHost<R extends { readonly match: CompiledRouteMatch }> {
  readonly name: string;
  readonly routes: readonly R[];
  /** Gateway `tls.httpsRedirect`: a plaintext request gets a 301 to https. */
  readonly requireTls: boolean;
}

/**
 * Compiles a route configuration for matching: each virtual host's routes by `compileRoute`
 * (which compiles the route's match with `compileRouteMatch`, plus whatever its caller needs
 * of the route), indexed by domain. The proxy compiles its route tables with it and
 * `explainRequest` its explanations, so both select alike.
 */
export function compileVirtualHosts<R extends { readonly match: CompiledRouteMatch }>(
  rc: RouteConfiguration,
  path: string,
  problems: Problems,
  compileRoute: (route: Route, path: string) => R,
): DomainIndex<MatchingVirtualHost<R>> {
  const hosts = rc.virtualHosts.map((vh, i) => ({
    name: vh.name,
    routes: vh.routes.map((r, j) => compileRoute(r, `${path}.virtualHosts[${i}].routes[${j}]`)),
    requireTls: vh.requireTls === true,
  }));
  return indexDomains(rc.virtualHosts, hosts, `${path}.virtualHosts`, problems);
}

/**
 * Indexes each virtual host's domains. Envoy rejects a route configuration in which one
 * domain appears in two virtual hosts, and so does this (a problem at `<path>[i].domains`).
 */
function indexDomains<V>(hosts: readonly { readonly domains: readonly string[] }[], values: readonly V[], path: string, problems: Problems): DomainIndex<V> {
  const exact = new Map<string, V>();
  const suffixes: [string, V][] = [];
  const prefixes: [string, V][] = [];
  let any: V | undefined;
  const seen = new Set<string>();
  hosts.forEach((vh, i) => {
    const value = values[i];
    if (vh.domains.length === 0) problems.add(`${path}[${i}].domains`, 'a virtual host needs at least one domain');
    for (const raw of vh.domains) {
      const d = raw.toLowerCase();
      if (seen.has(d)) problems.add(`${path}[${i}].domains`, `domain ${JSON.stringify(raw)} appears in more than one virtual host`);
      seen.add(d);
      if (d === '*') any = value;
      else if (d.startsWith('*')) suffixes.push([d.slice(1), value]);
      else if (d.endsWith('*')) prefixes.push([d.slice(0, -1), value]);
      else exact.set(d, value);
    }
  });
  suffixes.sort((a, b) => b[0].length - a[0].length);
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return { exact, suffixes, prefixes, any };
}

/** The virtual host for a lower-cased authority, in Envoy's order; undefined when none claims it. */
export function selectByDomain<V>(index: DomainIndex<V>, authority: string): V | undefined {
  const exact = index.exact.get(authority);
  if (exact !== undefined) return exact;
  for (const [suffix, v] of index.suffixes) {
    if (authority.length > suffix.length && authority.endsWith(suffix)) return v;
  }
  for (const [prefix, v] of index.prefixes) {
    if (authority.length > prefix.length && authority.startsWith(prefix)) return v;
  }
  return index.any;
}
