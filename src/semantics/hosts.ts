/**
 * Host names and wildcards as Istio compares them (istio/istio pkg/config/host/name.go): a
 * host is a name (`reviews.default.svc.cluster.local`), a suffix wildcard (`*.example.com`)
 * or `*`. Resolve short names first (names.ts): these compare names as written.
 */

/** A wildcard host: `*` or `*.suffix` (Istio's IsWildCarded: the first character is `*`). */
export function isWildcardHost(host: string): boolean {
  return host.length > 0 && host.charCodeAt(0) === 42;
}

/**
 * Istio's host.Name.Matches: the two hosts overlap, in either direction. Two names match when
 * equal; a wildcard matches the names and narrower wildcards under its suffix
 * (`*.com` ~ `foo.com`, `*.com` ~ `*.foo.com`, `*` ~ anything), never its own bare suffix
 * (`*.foo.com` !~ `foo.com`).
 */
export function hostsOverlap(a: string, b: string): boolean {
  const aWild = isWildcardHost(a);
  const bWild = isWildcardHost(b);
  if (aWild) {
    if (bWild) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
    return b.endsWith(a.slice(1));
  }
  if (bWild) return a.endsWith(b.slice(1));
  return a === b;
}

/**
 * Istio's host.Name.SubsetOf: every name `host` covers is covered by `of` (`Matches` in one
 * direction). A name is a subset of itself and of the wildcards above it; a wildcard only of
 * an equal or wider wildcard (`*.foo.com` of `*.com`, not of `bar.foo.com`).
 */
export function hostSubsetOf(host: string, of: string): boolean {
  if (isWildcardHost(host)) {
    if (!isWildcardHost(of)) return false;
    return host.length >= of.length && host.slice(1).endsWith(of.slice(1));
  }
  if (isWildcardHost(of)) return host.endsWith(of.slice(1));
  return host === of;
}

/**
 * Where two host patterns overlap, the narrower of the two (what a gateway serves for a
 * VirtualService host under a server host, as Istio's gateway config picks the more specific
 * host); undefined when they do not overlap.
 */
export function hostIntersection(a: string, b: string): string | undefined {
  if (hostSubsetOf(b, a)) return b;
  if (hostSubsetOf(a, b)) return a;
  return undefined;
}

/**
 * How specific a host pattern is, for "the most specific host wins" (Istio's
 * MostSpecificHostMatch, used for DestinationRules): a name beats every wildcard, a longer
 * wildcard beats a shorter one.
 */
export function hostSpecificity(host: string): number {
  return isWildcardHost(host) ? host.length : Number.MAX_SAFE_INTEGER;
}
