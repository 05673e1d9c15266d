/**
 * Host names as Kubernetes DNS resolves them inside the cluster: a Service `reviews` in
 * namespace `default` is `reviews.default.svc.cluster.local`, reachable from its own
 * namespace as `reviews`, and from anywhere as `reviews.default` or `reviews.default.svc`.
 */

export const DEFAULT_DOMAIN_SUFFIX = 'cluster.local';

/** `<name>.<namespace>.svc.<suffix>`. */
export function serviceFqdn(name: string, namespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

/**
 * The names a client in `fromNamespace` would try for `name`, in order: Kubernetes'
 * resolv.conf search path (`<ns>.svc.<suffix> svc.<suffix> <suffix>`, ndots 5), then the
 * name itself. A trailing dot makes the name absolute (no search).
 */
export function searchCandidates(name: string, fromNamespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string[] {
  const host = name.toLowerCase();
  if (host.endsWith('.')) return [host.slice(0, -1)];
  const dots = host.split('.').length - 1;
  const absolute = [host];
  if (dots >= 5) return absolute;
  return [`${host}.${fromNamespace}.svc.${domainSuffix}`, `${host}.svc.${domainSuffix}`, `${host}.${domainSuffix}`, host];
}

/**
 * Resolves a name as a client in `fromNamespace` would: the first search candidate that
 * `exists` says is a service (`reviews` -> `reviews.<ns>.svc.cluster.local`,
 * `reviews.default` and `reviews.default.svc` -> the Service in `default`). Unknown names:
 * a single label is taken as a Service in `fromNamespace`; anything else stays as written
 * (an external host).
 */
export function resolveHost(name: string, fromNamespace: string, exists: (host: string) => boolean = () => false, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  const candidates = searchCandidates(name, fromNamespace, domainSuffix);
  for (const c of candidates) if (exists(c)) return c;
  const host = candidates[candidates.length - 1];
  return host.includes('.') ? host : serviceFqdn(host, fromNamespace, domainSuffix);
}

/** SPIFFE identity of a service account (Istio: `spiffe://<trust domain>/ns/<ns>/sa/<sa>`). */
export function spiffeIdentity(namespace: string, serviceAccount: string | undefined, trustDomain = DEFAULT_DOMAIN_SUFFIX): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount || 'default'}`;
}
