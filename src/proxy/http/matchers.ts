/**
 * String, header and query-parameter matchers, compiled once when a config is applied.
 * Regexes are RE2 (re2js) and must match the whole value, as Envoy's `safe_regex` does.
 */
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import type { HeaderMatcher, QueryParamMatcher, StringMatch } from '../../api/proxy-config.js';

export type ValueMatcher = (value: string) => boolean;

/** Collects problems while compiling, so that apply reports all of them at once. */
export interface Problems {
  add(path: string, message: string): void;
}

let re2Module: typeof import('re2js') | undefined;

/**
 * re2js, loaded the first time a config has a regex: ~1.7 MB of memory that a proxy whose
 * routes match by exact and prefix only should not pay.
 */
function loadRe2(): typeof import('re2js') {
  return (re2Module ??= createRequire(import.meta.url)('re2js') as typeof import('re2js'));
}

/** Compiles an RE2 pattern; records a problem and returns undefined when it does not compile. */
export function compileRegex(pattern: string, path: string, problems: Problems): RE2JS | undefined {
  try {
    return loadRe2().RE2JS.compile(pattern);
  } catch (err) {
    problems.add(path, `invalid RE2 regex ${JSON.stringify(pattern)}: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * `ignoreCase` lowers both sides (Envoy's StringMatcher `ignore_case`); `forceIgnoreCase`
 * is Istio's `ignoreUriCase` for paths, which Envoy applies to exact/prefix only.
 */
export function compileStringMatch(m: StringMatch, path: string, problems: Problems, forceIgnoreCase = false): ValueMatcher {
  if ('regex' in m) {
    const re = compileRegex(m.regex, `${path}.regex`, problems);
    return re ? (v) => re.matches(v) : () => false;
  }
  const ignoreCase = forceIgnoreCase || m.ignoreCase === true;
  if ('exact' in m) {
    if (ignoreCase) {
      const want = m.exact.toLowerCase();
      return (v) => v.length === want.length && v.toLowerCase() === want;
    }
    const want = m.exact;
    return (v) => v === want;
  }
  if ('prefix' in m) {
    if (ignoreCase) {
      const want = m.prefix.toLowerCase();
      return (v) => v.length >= want.length && v.slice(0, want.length).toLowerCase() === want;
    }
    const want = m.prefix;
    return (v) => v.startsWith(want);
  }
  problems.add(path, 'a string match needs one of exact, prefix or regex');
  return () => false;
}

/** Reads a header (or pseudo-header) value of the request being matched; undefined = absent. */
export type HeaderLookup = (name: string) => string | undefined;

export type CompiledHeaderMatcher = (lookup: HeaderLookup) => boolean;

/**
 * Envoy HeaderMatcher semantics as Istio configures them:
 * - no `match`: present_match (the header exists, even with an empty value);
 * - a string match: the value must match; an absent header does not match;
 * - `invert` (withoutHeaders): Istio sets `treat_missing_header_as_empty`, so an absent
 *   header is compared as "" before inverting. That is why routing.go's "without headers"
 *   aborts a request with no `end-user` (""≠"jason" -> inverted -> holds) while
 *   "without headers regex match any string" (`.*`) never holds ("" matches `.*`).
 *   A present-match inverted holds exactly when the header is absent.
 */
export function compileHeaderMatcher(h: HeaderMatcher, path: string, problems: Problems): CompiledHeaderMatcher {
  const name = h.name.toLowerCase();
  if (name.length === 0) problems.add(`${path}.name`, 'header name is empty');
  if (!h.match) {
    return h.invert ? (lookup) => lookup(name) === undefined : (lookup) => lookup(name) !== undefined;
  }
  const matches = compileStringMatch(h.match, `${path}.match`, problems);
  if (h.invert) return (lookup) => !matches(lookup(name) ?? '');
  return (lookup) => {
    const v = lookup(name);
    return v !== undefined && matches(v);
  };
}

export type CompiledQueryMatcher = (params: URLSearchParams) => boolean;

export function compileQueryMatcher(q: QueryParamMatcher, path: string, problems: Problems): CompiledQueryMatcher {
  const name = q.name;
  if (!q.match) return (params) => params.has(name);
  const matches = compileStringMatch(q.match, `${path}.match`, problems);
  return (params) => {
    const v = params.get(name);
    return v !== null && matches(v);
  };
}
