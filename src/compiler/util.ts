/**
 * Small pure helpers shared by the compiler: durations, string matches, ordering. Host names,
 * wildcards, label selectors and exportTo follow Istio's rules in src/semantics.
 */
import type { StringMatch } from '../api/proxy-config.js';
import type { StringMatchSpec } from './istio-types.js';

const DURATION_PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/**
 * A protobuf Duration in its JSON form (`"1s"`, `"0.5s"`) or Go's form that Istio also
 * accepts (`"100ms"`, `"1m30s"`), in milliseconds. Undefined when absent or unreadable
 * (validation rejects those before they reach the compiler).
 */
export function durationMs(value: string | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = String(value).trim();
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(DURATION_PART)) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    consumed += m[0].length;
  }
  if (consumed !== text.length || consumed === 0) return undefined;
  return Math.round(total);
}

/** Istio StringMatch -> ProxyConfig StringMatch; `{}` (or nothing) -> undefined. */
export function stringMatch(spec: StringMatchSpec | undefined): StringMatch | undefined {
  if (!spec) return undefined;
  if (spec.exact !== undefined) return { exact: spec.exact };
  if (spec.prefix !== undefined) return { prefix: spec.prefix };
  if (spec.regex !== undefined) return { regex: spec.regex };
  return undefined;
}

export function isEmpty(o: object | undefined): boolean {
  return !o || Object.keys(o).length === 0;
}
