/**
 * The roots a proxy trusts. Normally one: the mesh root. During a root rotation the CA
 * publishes the old and the new root together, so that certificates chaining to either verify
 * while proxies move from one to the other; the old root leaves the bundle once the last
 * certificate it signed has expired (istio.io "Plug in CA certificates": a combined root
 * during the migration).
 */
import { parseCertificate, splitPemCertificates, summarizeCertificate, type CertificateSummary } from './certificate-info.js';

export class TrustBundleError extends Error {
  readonly code = 'SNW_ERR_TRUST_BUNDLE';

  constructor(message: string) {
    super(message);
    this.name = 'TrustBundleError';
  }
}

export interface TrustedRoot extends CertificateSummary {
  pem: string;
}

/** An immutable set of root certificates, in the order given, without duplicates. */
export class TrustBundle {
  readonly roots: readonly TrustedRoot[];

  private constructor(roots: TrustedRoot[]) {
    this.roots = roots;
  }

  /**
   * Reads every certificate of `pem` (one or several concatenated). Each must be a CA
   * certificate; duplicates (same SHA-256 fingerprint) are kept once. Throws TrustBundleError
   * on an empty bundle or a certificate that cannot be a root.
   */
  static fromPem(pem: string): TrustBundle {
    const blocks = splitPemCertificates(pem);
    if (blocks.length === 0) throw new TrustBundleError('the trust bundle holds no PEM certificate');
    return TrustBundle.of(blocks);
  }

  /** A bundle of the given PEM certificates (each one certificate). */
  static of(pems: readonly string[]): TrustBundle {
    const roots: TrustedRoot[] = [];
    const seen = new Set<string>();
    for (const [i, pem] of pems.entries()) {
      let summary: CertificateSummary;
      try {
        summary = summarizeCertificate(parseCertificate(pem));
      } catch (err) {
        throw new TrustBundleError(`certificate ${i + 1} of the trust bundle cannot be read: ${(err as Error).message}`);
      }
      if (!summary.isCA) throw new TrustBundleError(`certificate ${i + 1} of the trust bundle (${summary.subject.replace(/\n/g, ', ') || 'empty subject'}) is not a CA certificate`);
      if (seen.has(summary.fingerprint256)) continue;
      seen.add(summary.fingerprint256);
      roots.push({ ...summary, pem: pem.endsWith('\n') ? pem : pem + '\n' });
    }
    return new TrustBundle(roots);
  }

  /** The bundle with `other`'s roots added after its own (the union during a rotation). */
  merge(other: TrustBundle): TrustBundle {
    return TrustBundle.of([...this.roots, ...other.roots].map((r) => r.pem));
  }

  /** The bundle without roots that expired before `now` (ms); never empties itself. */
  withoutExpired(now: number): TrustBundle {
    const live = this.roots.filter((r) => r.notAfter >= now);
    return live.length && live.length !== this.roots.length ? new TrustBundle(live) : this;
  }

  has(fingerprint256: string): boolean {
    return this.roots.some((r) => r.fingerprint256 === fingerprint256);
  }

  /** Concatenated PEM, as node:tls takes it for `ca` and the ProxyConfig for `trustedCaPem`. */
  pem(): string {
    return this.roots.map((r) => r.pem).join('');
  }
}
