/**
 * A proxy's identity from the mesh CA (Istio's pilot-agent SDS server and secret cache, in
 * the proxy's own process): the `SecretProvider` the transport sockets read.
 *
 * - `default`: once a pushed config names the secret with `provider: mesh-ca`, a
 *   WorkloadCertificateManager (core/pki/rotation.ts) makes a key, sends a CSR through the
 *   injected `requestCertificate` (the push connection, whose credential tells the control
 *   plane who the proxy is), and renews at half life with jitter, retrying with backoff while
 *   the current certificate serves. The key lives in this object's memory only.
 * - `ROOTCA`: the trust bundle and revocations of the pushed config. A bundle that no longer
 *   holds the root of the proxy's certificate (the CA's signing material was replaced) makes
 *   the proxy renew at once, as does a revocation of its own certificate.
 *
 * A config whose ROOTCA cannot be read is refused as a whole (`prepare` throws), like any
 * other bad part of a config: the proxy NACKs and keeps the secrets it has.
 */
import type { ProxyConfig, RevocationList } from '../../api/proxy-config.js';
import { ROOT_CA_SECRET, WORKLOAD_CERTIFICATE_SECRET } from '../../api/proxy-config.js';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import { splitPemCertificates, summarizeCertificate } from '../../core/pki/certificate-info.js';
import { RevocationChecker } from '../../core/pki/revocation.js';
import { WorkloadCertificateManager, type RotationPolicy, type WorkloadCredential } from '../../core/pki/rotation.js';
import { TrustBundle } from '../../core/pki/trust-bundle.js';
import type { Random } from '../../core/random.js';
import type { SecretProvider, TlsCertificateSecret, ValidationContextSecret } from './secret-provider.js';

export interface MeshSecretsOptions {
  /** Sends a CSR to the mesh CA and returns the signed chain (the push client's requestCertificate). */
  requestCertificate(csrPem: string): Promise<{ certificateChainPem: string }>;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  policy?: RotationPolicy;
  /** First retry after a refused or failed request (1 s), doubling up to `maxRetryMs` (30 s). */
  initialRetryMs?: number;
  maxRetryMs?: number;
}

/** A config's secrets, read and checked, not yet in force. */
export interface PreparedSecrets {
  wantsCertificate: boolean;
  rootCa?: { trustedCaPem: string; bundle: TrustBundle; revocations: RevocationList | undefined };
}

/** What the admin endpoint and `sinew proxy-config <workload> secrets` show (never the key). */
export interface SecretsDescription {
  secrets: SecretDescription[];
  /** The last refused or failed request to the CA, until one succeeds. */
  lastError?: { message: string; at: string };
  /** When the proxy next asks the CA (a renewal or a retry). */
  nextRequestAt?: string;
  /**
   * Certificates named by file in the config in force (file-secrets.ts), added by the proxy's
   * admin port: their paths and whether they could be read, never their material.
   */
  files?: { name: string; files: { certificateChain?: string; privateKey?: string; trustedCa?: string }; loaded: boolean; error?: string }[];
}

export interface SecretDescription {
  name: string;
  /** Istio's `proxy-config secret` types: `Cert Chain` or `CA`. */
  type: 'Cert Chain' | 'CA';
  /** ACTIVE once there is something to serve, WARMING while the first certificate is awaited. */
  status: 'ACTIVE' | 'WARMING';
  /** Within its validity now. */
  valid: boolean;
  identity?: string;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  /** Certificate: the root it chains to; CA: each root of the bundle. */
  root?: string;
  roots?: { subject: string; serial: string; fingerprint256: string; notAfter: string }[];
  revocations?: { version: number; serials: number; identities: number };
  renewAt?: string;
  /** Public material only, as istioctl's -o json shows it: the chain (leaf first) or the bundle. */
  certificateChainPem?: string;
  trustedCaPem?: string;
}

/** The SecretProvider of a proxy that gets its identity from the mesh CA. */
export class MeshSecrets implements SecretProvider {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly manager: WorkloadCertificateManager;
  private readonly listeners = new Set<(name: string) => void>();
  private certificate: TlsCertificateSecret | undefined;
  private validation: ValidationContextSecret | undefined;
  private revocationList: RevocationList | undefined;
  private started = false;
  private closed = false;
  private lastError: { message: string; at: number } | undefined;

  constructor(private readonly options: MeshSecretsOptions) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.manager = new WorkloadCertificateManager({
      requestCertificate: async (csrPem) => {
        try {
          const answer = await options.requestCertificate(csrPem);
          this.lastError = undefined;
          return answer;
        } catch (err) {
          this.lastError = { message: (err as Error).message, at: this.clock.now() };
          throw err;
        }
      },
      onCertificate: (credential) => this.installCertificate(credential),
      policy: options.policy,
      initialRetryMs: options.initialRetryMs,
      maxRetryMs: options.maxRetryMs,
      clock: options.clock,
      random: options.random,
      logger: this.logger,
    });
  }

  // === SecretProvider ===

  tlsCertificate(name: string): TlsCertificateSecret | undefined {
    return name === WORKLOAD_CERTIFICATE_SECRET ? this.certificate : undefined;
  }

  validationContext(name: string): ValidationContextSecret | undefined {
    return name === ROOT_CA_SECRET ? this.validation : undefined;
  }

  onChange(listener: (name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // === fed by the pushed config ===

  /** Reads a config's secrets; throws (with what is wrong) when its ROOTCA cannot be used. */
  prepare(config: ProxyConfig): PreparedSecrets {
    const secrets = config.secrets ?? [];
    const wantsCertificate = secrets.some((s) => s.name === WORKLOAD_CERTIFICATE_SECRET && s.provider === 'mesh-ca');
    const root = secrets.find((s) => s.name === ROOT_CA_SECRET);
    if (!root?.trustedCaPem) return { wantsCertificate };
    let bundle: TrustBundle;
    try {
      bundle = TrustBundle.fromPem(root.trustedCaPem);
    } catch (err) {
      throw new Error(`secrets.${ROOT_CA_SECRET}.trustedCaPem: ${(err as Error).message}`);
    }
    return { wantsCertificate, rootCa: { trustedCaPem: root.trustedCaPem, bundle, revocations: root.revocations } };
  }

  /** Puts a prepared config's secrets in force (after the rest of the config applied). */
  commit(prepared: PreparedSecrets): void {
    if (this.closed) return;
    if (prepared.rootCa) this.installValidation(prepared.rootCa);
    if (prepared.wantsCertificate && !this.started) {
      this.started = true;
      this.manager.start().catch(() => {
        // Only stop() rejects the first certificate's promise; failures are retried inside.
      });
    }
  }

  /** Stops renewing; the key is dropped with this object. */
  close(): void {
    this.closed = true;
    this.manager.stop();
  }

  /** For the admin endpoint: every secret, without keys. */
  describe(): SecretsDescription {
    const now = this.clock.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const out: SecretDescription[] = [];
    const cert = this.certificate;
    if (cert) {
      out.push({
        name: cert.name,
        type: 'Cert Chain',
        status: 'ACTIVE',
        valid: cert.notBefore <= now && now <= cert.notAfter,
        identity: cert.identity,
        serial: cert.serial,
        notBefore: iso(cert.notBefore),
        notAfter: iso(cert.notAfter),
        root: cert.rootFingerprint,
        renewAt: this.manager.current() ? iso(this.manager.current()!.renewAt) : undefined,
        certificateChainPem: cert.certificateChainPem,
      });
    } else if (this.started) {
      out.push({ name: WORKLOAD_CERTIFICATE_SECRET, type: 'Cert Chain', status: 'WARMING', valid: false });
    }
    const v = this.validation;
    if (v) {
      const roots = v.trustBundle.roots;
      out.push({
        name: v.name,
        type: 'CA',
        status: 'ACTIVE',
        valid: roots.some((r) => r.notBefore <= now && now <= r.notAfter),
        serial: roots[0]?.serial,
        notBefore: roots[0] ? iso(Math.max(...roots.map((r) => r.notBefore))) : undefined,
        notAfter: roots[0] ? iso(Math.min(...roots.map((r) => r.notAfter))) : undefined,
        roots: roots.map((r) => ({ subject: r.subject.replace(/\n/g, ', '), serial: r.serial, fingerprint256: r.fingerprint256, notAfter: iso(r.notAfter) })),
        revocations: { version: v.revocations.version, serials: this.revocationList?.serials.length ?? 0, identities: this.revocationList?.identities.length ?? 0 },
        trustedCaPem: v.trustedCaPem,
      });
    }
    const next = this.manager.nextAttempt();
    return {
      secrets: out,
      ...(this.lastError ? { lastError: { message: this.lastError.message, at: iso(this.lastError.at) } } : {}),
      ...(next !== undefined && this.started ? { nextRequestAt: iso(next) } : {}),
    };
  }

  // === inside ===

  private installCertificate(credential: WorkloadCredential): void {
    const chain = splitPemCertificates(credential.certificateChainPem);
    const top = chain.at(-1);
    this.certificate = Object.freeze({
      name: WORKLOAD_CERTIFICATE_SECRET,
      certificateChainPem: credential.certificateChainPem,
      privateKeyPem: credential.privateKeyPem,
      identity: credential.summary.identities[0] ?? '',
      serial: credential.summary.serial,
      notBefore: credential.summary.notBefore,
      notAfter: credential.summary.notAfter,
      rootFingerprint: top && chain.length > 1 ? summarizeCertificate(top).fingerprint256 : '',
      generation: (this.certificate?.generation ?? 0) + 1,
    });
    this.emit(WORKLOAD_CERTIFICATE_SECRET);
  }

  private installValidation(rootCa: NonNullable<PreparedSecrets['rootCa']>): void {
    // A proxy keeps the revocation list with the highest version it has seen (RevocationList).
    const revocations = rootCa.revocations && (this.revocationList?.version ?? -1) <= rootCa.revocations.version ? rootCa.revocations : this.revocationList;
    const same = this.validation?.trustedCaPem === rootCa.trustedCaPem && revocations === this.revocationList;
    if (same || (this.validation?.trustedCaPem === rootCa.trustedCaPem && JSON.stringify(revocations) === JSON.stringify(this.revocationList))) return;
    this.revocationList = revocations;
    const checker = new RevocationChecker(revocations);
    this.validation = Object.freeze({ name: ROOT_CA_SECRET, trustedCaPem: rootCa.trustedCaPem, trustBundle: rootCa.bundle, revocations: checker, generation: (this.validation?.generation ?? 0) + 1 });
    this.emit(ROOT_CA_SECRET);
    const cert = this.certificate;
    if (!cert) return;
    // The bundle no longer trusts our certificate's root, or our own certificate was
    // revoked: peers will refuse it, so ask for a new one now rather than at half life.
    const why = cert.rootFingerprint && !rootCa.bundle.has(cert.rootFingerprint) ? 'the trust bundle no longer holds its root' : checker.reason(cert.certificateChainPem);
    if (why) {
      this.logger.warn('renewing the workload certificate now', { serial: cert.serial, reason: why });
      void this.manager.renewNow();
    }
  }

  private emit(name: string): void {
    for (const listener of this.listeners) {
      try {
        listener(name);
      } catch (err) {
        this.logger.error('secret change listener failed', { secret: name, error: (err as Error).message });
      }
    }
  }
}
