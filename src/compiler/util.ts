/**
 * Small pure helpers shared by the compiler: durations, host names, exportTo, ordering.
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
export function stringMatch(spec: StringMatchSpec | undefined, ignoreCase = false): StringMatch | undefined {
  if (!spec) return undefined;
  if (spec.exact !== undefined) return ignoreCase ? { exact: spec.exact, ignoreCase: true } : { exact: spec.exact };
  if (spec.prefix !== undefined) return ignoreCase ? { prefix: spec.prefix, ignoreCase: true } : { prefix: spec.prefix };
  if (spec.regex !== undefined) return ignoreCase ? { regex: `(?i)${spec.regex}` } : { regex: spec.regex };
  return undefined;
}

/**
 * Istio's ResolveShortnameToFQDN: a name without dots is a Kubernetes Service in the
 * resource's namespace; names with dots are taken as written (Istio does not expand
 * `reviews.default`, and neither do we, so a config means the same in both).
 */
export function resolveShortName(host: string, namespace: string, domainSuffix: string): string {
  const h = host.toLowerCase();
  if (h === '*' || h.includes('.')) return h;
  return `${h}.${namespace}.svc.${domainSuffix}`;
}

/** Istio host.Name.Matches: `*` matches all, `*.example.com` matches any name ending in `.example.com` (and wildcards within it). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern === host) return true;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    if (host.startsWith('*')) return host.slice(1).endsWith(suffix);
    return host.endsWith(suffix);
  }
  return false;
}

/** Two host patterns overlap; returns the more specific one (what a gateway virtual host serves), else undefined. */
export function hostIntersection(a: string, b: string): string | undefined {
  if (hostMatches(a, b)) return b;
  if (hostMatches(b, a)) return a;
  return undefined;
}

/**
 * Istio's exportTo: absent or empty = everywhere (meshConfig default `*`), `*` = everywhere,
 * `.` = the owner's namespace, `~` = nowhere, otherwise the namespaces listed.
 */
export function isExportedTo(exportTo: readonly string[] | undefined, ownerNamespace: string, clientNamespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*') return true;
    if (e === '.' && ownerNamespace === clientNamespace) return true;
    if (e === clientNamespace) return true;
  }
  return false;
}

/** Label selector: all key/values present. */
export function labelsMatch(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

export function isEmpty(o: object | undefined): boolean {
  return !o || Object.keys(o).length === 0;
}
