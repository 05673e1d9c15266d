/**
 * Host names: how Istio reads a host written in a resource, how a Kubernetes client's name
 * resolves through DNS, and the names Istio gives services and workloads. Two different
 * rules live here on purpose, and each says which one it is:
 *
 * - config names (`resolveShortName`): Istio expands only a name without dots, with the
 *   namespace of the resource that wrote it; `reviews.default` stays `reviews.default`;
 * - client names (`resolveClientHost`): a process asking DNS for `reviews.default` gets the
 *   Service in `default`, through the resolv.conf search path Kubernetes gives every pod.
 */
import { isIP } from 'node:net';

/** Kubernetes' and Istio's default cluster domain (meshConfig `domainSuffix`). */
export const DEFAULT_DOMAIN_SUFFIX = 'cluster.local';

/** `<name>.<namespace>.svc.<suffix>`: a Kubernetes Service's FQDN. */
export function serviceFqdn(name: string, namespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

/**
 * Istio's ResolveShortnameToFQDN (pilot/pkg/model/config.go), for hosts written in config
 * (VirtualService hosts and destinations, DestinationRule hosts, ...): a name without dots is
 * a Service in the resource's namespace (`reviews` in `default` ->
 * `reviews.default.svc.cluster.local`); `*` and IP addresses stay as they are; any name with
 * a dot is taken as written. So `reviews.default` is NOT the reviews Service: it is the
 * literal host `reviews.default`, which no Service has (Istio's docs: "always use fully
 * qualified domain names"). Names are lower-cased, as DNS and Envoy's domain match compare
 * them.
 */
export function resolveShortName(host: string, namespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  const h = host.toLowerCase();
  if (h === '' || h === '*' || h.includes('.') || isIP(h) !== 0) return h;
  let out = h;
  if (namespace) out += `.${namespace}`;
  if (domainSuffix) out += `.svc.${domainSuffix}`;
  return out;
}

/**
 * `reviews.default` -> `{ name: 'reviews', namespace: 'default' }`: a config host of the form
 * `<service>.<namespace>`, which a Kubernetes client would resolve to that Service but Istio
 * reads as written (see `resolveShortName`). Undefined for any other form.
 */
export function splitServiceDotNamespace(host: string): { name: string; namespace: string } | undefined {
  const h = host.toLowerCase();
  const dot = h.indexOf('.');
  if (dot <= 0 || dot === h.length - 1 || h.indexOf('.', dot + 1) >= 0 || h.startsWith('*') || isIP(h) !== 0) return undefined;
  return { name: h.slice(0, dot), namespace: h.slice(dot + 1) };
}

/** The namespace of a Kubernetes Service FQDN (`reviews.default.svc.cluster.local` -> `default`); undefined otherwise. */
export function namespaceOfServiceHost(fqdn: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string | undefined {
  const suffix = `.svc.${domainSuffix}`;
  if (!fqdn.endsWith(suffix)) return undefined;
  const parts = fqdn.slice(0, -suffix.length).split('.');
  return parts.length === 2 && parts[0] !== '' && parts[1] !== '' ? parts[1] : undefined;
}

/**
 * The names a client in `fromNamespace` would try for `name`, in order: Kubernetes'
 * resolv.conf search path (`<ns>.svc.<suffix> svc.<suffix> <suffix>`, ndots 5), then the
 * name itself. A trailing dot makes the name absolute (no search).
 */
export function dnsSearchCandidates(name: string, fromNamespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string[] {
  const host = name.toLowerCase();
  if (host.endsWith('.')) return [host.slice(0, -1)];
  const dots = host.split('.').length - 1;
  if (dots >= 5) return [host];
  return [`${host}.${fromNamespace}.svc.${domainSuffix}`, `${host}.svc.${domainSuffix}`, `${host}.${domainSuffix}`, host];
}

/**
 * Resolves a name as a client in `fromNamespace` would (DNS, not Istio config): the first
 * search candidate that `exists` says is a service (`reviews` ->
 * `reviews.<ns>.svc.cluster.local`, `reviews.default` and `reviews.default.svc` -> the Service
 * in `default`). Unknown names: a single label is taken as a Service in `fromNamespace`;
 * anything else stays as written (an external host).
 */
export function resolveClientHost(name: string, fromNamespace: string, exists: (host: string) => boolean = () => false, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  const candidates = dnsSearchCandidates(name, fromNamespace, domainSuffix);
  for (const c of candidates) if (exists(c)) return c;
  const host = candidates[candidates.length - 1];
  return host.includes('.') ? host : serviceFqdn(host, fromNamespace, domainSuffix);
}

/** SPIFFE identity of a service account (Istio: `spiffe://<trust domain>/ns/<ns>/sa/<sa>`). */
export function spiffeIdentity(namespace: string, serviceAccount: string | undefined, trustDomain = DEFAULT_DOMAIN_SUFFIX): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount || 'default'}`;
}
