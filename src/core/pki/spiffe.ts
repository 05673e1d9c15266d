/**
 * SPIFFE identities as Istio writes them: `spiffe://<trust domain>/ns/<namespace>/sa/<service
 * account>` (istio/istio pkg/spiffe). One module for the CA (which puts them in certificates),
 * the proxy (which reads them from peers) and the compiler (which names endpoints' identities).
 *
 * The syntax rules are the SPIFFE ID specification's (spiffe/spiffe standards/SPIFFE-ID.md):
 * a trust domain of lower-case letters, digits, `.`, `-` and `_`; path segments of letters,
 * digits, `.`, `-` and `_`, none empty, `.` or `..`.
 */

/** Istio's default trust domain (MeshConfig `trustDomain`). */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** The part of an identity the CA takes from the caller's authenticated credential. */
export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
}

export interface SpiffeIdentity extends WorkloadIdentity {
  trustDomain: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
/** SPIFFE-ID.md: "The trust domain name ... MUST NOT exceed 255 characters"; whole ID 2048 bytes. */
const MAX_TRUST_DOMAIN = 255;
const MAX_ID = 2048;

/** Why `trustDomain` is not a valid SPIFFE trust domain, or undefined when it is. */
export function checkTrustDomain(trustDomain: string): string | undefined {
  if (!trustDomain) return 'the trust domain is empty';
  if (trustDomain.length > MAX_TRUST_DOMAIN) return `the trust domain is longer than ${MAX_TRUST_DOMAIN} characters`;
  if (!TRUST_DOMAIN.test(trustDomain)) return `trust domain "${trustDomain}" may hold only lower-case letters, digits, ".", "-" and "_"`;
  return undefined;
}

/** Why `segment` cannot be a namespace or service account in a SPIFFE path, or undefined. */
function checkSegment(what: string, segment: string): string | undefined {
  if (!segment) return `the ${what} is empty`;
  if (segment === '.' || segment === '..' || !SEGMENT.test(segment)) return `${what} "${segment}" may hold only letters, digits, ".", "-" and "_"`;
  return undefined;
}

/** Why this identity cannot be written as a SPIFFE ID, or undefined when it can. */
export function checkIdentity(identity: SpiffeIdentity): string | undefined {
  return checkTrustDomain(identity.trustDomain) ?? checkSegment('namespace', identity.namespace) ?? checkSegment('service account', identity.serviceAccount);
}

/** `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`. Throws on an invalid part. */
export function spiffeId(identity: SpiffeIdentity): string {
  const problem = checkIdentity(identity);
  if (problem) throw new TypeError(`cannot make a SPIFFE ID: ${problem}`);
  return `spiffe://${identity.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
}

/**
 * Reads an Istio workload identity from a SPIFFE ID. Undefined for anything else: another
 * scheme, a bad trust domain, or a path that is not exactly `/ns/<ns>/sa/<sa>`.
 */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  if (uri.length > MAX_ID || !uri.startsWith('spiffe://')) return undefined;
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const trustDomain = rest.slice(0, slash);
  const parts = rest.slice(slash + 1).split('/');
  if (parts.length !== 4 || parts[0] !== 'ns' || parts[2] !== 'sa') return undefined;
  const identity = { trustDomain, namespace: parts[1], serviceAccount: parts[3] };
  return checkIdentity(identity) ? undefined : identity;
}
