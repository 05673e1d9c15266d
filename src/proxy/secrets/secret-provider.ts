/**
 * What a proxy's TLS contexts read their certificates and trust from: the contract between the
 * proxy's identity (mesh-secrets.ts, fed by the mesh CA and the pushed config) and the
 * transport sockets that will make mutual TLS. Envoy's SDS in one process: secrets are
 * looked up by name, the way a transport socket's `sds_config` names them, and a change is
 * announced so that new connections use the new secret while open ones keep theirs.
 *
 * Names are Istio's SDS names (`src/api/proxy-config.ts`): `default` for the workload's own
 * certificate chain and key, `ROOTCA` for the roots to verify peers with and the revocations
 * to refuse after the chain verified.
 */
import type { TrustBundle } from '../../core/pki/trust-bundle.js';
import type { RevocationChecker } from '../../core/pki/revocation.js';

/** A certificate and its key, as node:tls takes them (`cert`, `key`). Istio's SDS `default`. */
export interface TlsCertificateSecret {
  readonly name: string;
  /** Leaf first, then the CA chain up to the root. */
  readonly certificateChainPem: string;
  /** PKCS#8 PEM. Made by this proxy and kept in its memory only: never written, logged or served. */
  readonly privateKeyPem: string;
  /** The leaf's SPIFFE ID (`spiffe://<trust domain>/ns/<ns>/sa/<sa>`). */
  readonly identity: string;
  /** Lower-case hex. */
  readonly serial: string;
  /** Milliseconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** SHA-256 fingerprint of the root the chain ends at. */
  readonly rootFingerprint: string;
  /** Grows with every new certificate: a TLS context built from an older one is stale. */
  readonly generation: number;
}

/** The roots to verify peers against, and what to refuse after that. Istio's SDS `ROOTCA`. */
export interface ValidationContextSecret {
  readonly name: string;
  /** Concatenated PEM, as node:tls takes it for `ca`; both roots during a root rotation. */
  readonly trustedCaPem: string;
  readonly trustBundle: TrustBundle;
  /** Run on the peer's leaf after node:tls verified the chain (`isRevoked` / `reason`). */
  readonly revocations: RevocationChecker;
  /** Grows with every change of roots or revocations. */
  readonly generation: number;
}

/** Read by the transport sockets; implemented by mesh-secrets.ts. */
export interface SecretProvider {
  /** The certificate and key of that name (`default`), or undefined until one was issued. */
  tlsCertificate(name: string): TlsCertificateSecret | undefined;
  /** The trust bundle and revocations of that name (`ROOTCA`), or undefined until pushed. */
  validationContext(name: string): ValidationContextSecret | undefined;
  /**
   * Calls `listener` with the secret's name after it changed (a renewal, a new bundle, new
   * revocations). Returns a function that unsubscribes.
   */
  onChange(listener: (name: string) => void): () => void;
}
