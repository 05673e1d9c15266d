/**
 * The proxy's half of revocation: is this peer certificate one the mesh CA revoked? The CA
 * keeps the list (`src/ca`) and the control plane pushes it with the trust bundle
 * (`Secret.revocations` in the ProxyConfig). The check runs after the TLS stack has verified
 * the chain, so it only has to look at the leaf: by serial, or by identity and issue time.
 */
import type { RevocationList } from '../../api/proxy-config.js';
import { normalizeSerial, parseCertificate, uriSans, type NodeX509 } from './certificate-info.js';

/** A revocation list compiled for lookups on every handshake. */
export class RevocationChecker {
  readonly version: number;
  private readonly serials: ReadonlySet<string>;
  private readonly identities: ReadonlyMap<string, number>;

  constructor(list: RevocationList | undefined) {
    this.version = list?.version ?? 0;
    this.serials = new Set((list?.serials ?? []).map((s) => normalizeSerial(s.serial)));
    const identities = new Map<string, number>();
    for (const entry of list?.identities ?? []) identities.set(entry.identity, Math.max(identities.get(entry.identity) ?? -Infinity, entry.issuedBefore));
    this.identities = identities;
  }

  /** True when nothing is revoked (the usual case: the check costs nothing). */
  get empty(): boolean {
    return this.serials.size === 0 && this.identities.size === 0;
  }

  /** Why `cert` is revoked (for the log and the connection's close reason), or undefined when it is not. */
  reason(cert: NodeX509 | string): string | undefined {
    if (this.empty) return undefined;
    const x = typeof cert === 'string' ? parseCertificate(cert) : cert;
    const serial = normalizeSerial(x.serialNumber);
    if (this.serials.has(serial)) return `certificate ${serial} is revoked`;
    if (this.identities.size) {
      const notBefore = Date.parse(x.validFrom);
      for (const uri of uriSans(x)) {
        const issuedBefore = this.identities.get(uri);
        // Certificates issued before the revocation are covered; the CA issues none while the
        // identity stays revoked, and those issued after it is lifted start at issuedBefore or later.
        if (issuedBefore !== undefined && notBefore < issuedBefore) return `identity ${uri} is revoked (certificate ${serial} was issued before the revocation)`;
      }
    }
    return undefined;
  }

  isRevoked(cert: NodeX509 | string): boolean {
    return this.reason(cert) !== undefined;
  }
}

/**
 * True when the mesh CA revoked `cert` (a PEM string or node X509Certificate). For a check on
 * every handshake build a `RevocationChecker` once per list instead.
 */
export function isRevoked(cert: NodeX509 | string, list: RevocationList | undefined): boolean {
  return new RevocationChecker(list).isRevoked(cert);
}
