/**
 * Envoy's StringMatcher, compiled once into a function of the value: exact, prefix (either
 * optionally case-insensitive) or an RE2 regex that must match the whole value, as Envoy's
 * `safe_regex` does (re2js: the same syntax and linear-time guarantee).
 */
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import type { StringMatch } from '../api/proxy-config.js';

export type ValueMatcher = (value: string) => boolean;

/** Collects problems while compiling, so that a whole config reports all of them at once. */
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
 * Compiles a StringMatch. `ignoreCase` lowers both sides (Envoy's StringMatcher
 * `ignore_case`) and applies to exact and prefix only; so does `forceIgnoreCase`, which is
 * Istio's `ignoreUriCase` on a path (Envoy's RouteMatch `case_sensitive: false`, "ignored for
 * safe_regex"): a regex path match stays case-sensitive.
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
