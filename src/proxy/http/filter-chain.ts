/**
 * A listener's HTTP filter chain, compiled once per applied config from
 * `HttpConnectionManager.filters` (or DEFAULT_HTTP_FILTERS) with the proxy's registry of
 * factories, and route-level filter config (typed_per_filter_config) compiled by the same
 * factories. Every problem is collected with its path; the proxy refuses the whole config when
 * there is one (STYLE.md 3: compose once, fail early).
 */
import { DEFAULT_HTTP_FILTERS, type HttpFilterConfig, type ListenerDirection } from '../../api/proxy-config.js';
import type { Problems } from '../../semantics/string-match.js';
import { FilterConfigError, type CompiledHttpFilter, type HttpFilterFactory } from './filter-api.js';

/** The factories a proxy knows, by filter name. */
export type FilterRegistry = ReadonlyMap<string, HttpFilterFactory>;

export interface CompiledFilterChain {
  /** In decode order; the router, the terminal filter, is last. */
  readonly filters: readonly CompiledHttpFilter[];
}

/** Compiles a listener's filters; problems go to `problems` under `path` (`listeners[0].http.filters`). */
export function compileFilterChain(
  configs: readonly HttpFilterConfig[] | undefined,
  registry: FilterRegistry,
  path: string,
  direction: ListenerDirection,
  problems: Problems,
): CompiledFilterChain {
  const list = configs ?? DEFAULT_HTTP_FILTERS;
  const filters: CompiledHttpFilter[] = [];
  const seen = new Set<string>();
  if (list.length === 0) problems.add(path, 'a filter chain needs at least the router');
  list.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    const factory = typeof entry?.name === 'string' ? registry.get(entry.name) : undefined;
    if (factory === undefined) {
      problems.add(`${at}.name`, `no HTTP filter named ${JSON.stringify(entry?.name)} (this proxy has ${[...registry.keys()].join(', ')})`);
      return;
    }
    if (seen.has(entry.name)) problems.add(`${at}.name`, `${entry.name} is listed twice`);
    seen.add(entry.name);
    const last = i === list.length - 1;
    if (factory.terminal && !last) problems.add(`${at}.name`, `${entry.name} is a terminal filter: it must be last`);
    if (last && !factory.terminal) problems.add(`${at}.name`, `the last filter must be a terminal filter (the router), not ${entry.name}`);
    try {
      filters.push(factory.compile(entry.config, { path: `${at}.config`, direction }));
    } catch (err) {
      addFilterProblems(err, `${at}.config`, problems);
    }
  });
  return { filters };
}

/**
 * Compiles one route's config for a filter (the route table calls it for every entry of
 * `Route.perFilterConfig`); undefined after recording a problem.
 */
export function compilePerRouteConfig(registry: FilterRegistry, name: string, config: unknown, path: string, problems: Problems): unknown {
  const factory = registry.get(name);
  if (factory === undefined) {
    problems.add(path, `no HTTP filter named ${JSON.stringify(name)} to take this route config`);
    return undefined;
  }
  if (factory.compilePerRoute === undefined) {
    problems.add(path, `${name} takes no per-route config`);
    return undefined;
  }
  try {
    return factory.compilePerRoute(config, path);
  } catch (err) {
    addFilterProblems(err, path, problems);
    return undefined;
  }
}

/** A factory's refusal, with each of its problems; anything else it threw, as one problem. */
function addFilterProblems(err: unknown, path: string, problems: Problems): void {
  // A factory may name fields relative to its config (`tag`) or give the whole path it was handed.
  if (err instanceof FilterConfigError) for (const [p, m] of err.problems) problems.add(p.startsWith(path) ? p : `${path}.${p}`, m);
  else problems.add(path, `the filter's factory failed: ${(err as Error)?.message ?? String(err)}`);
}
