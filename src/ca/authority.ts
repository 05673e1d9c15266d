/**
 * The mesh's certificate authority (Istio's Citadel, inside istiod there): a root and an
 * intermediate made on first start — or plug-in certificates in the layout of Istio's
 * `cacerts` secret — and workload certificates for SPIFFE identities, issued on a CSR whose key
 * never leaves the proxy.
 *
 * Who the caller is comes from the caller of `sign` (the control plane maps a proxy's
 * credential to namespace and service account); the CSR proves possession of the key and
 * nothing else. Everything the CA knows lives in its directory (see README "sinew ca" and
 * docs/architecture.md "The certificate authority"), so a restarted control plane and an
 * offline `sinew ca` command see the same CA; every change happens under the directory's lock
 * after re-reading what another process may have changed.
 *
 * Root rotation: `beginRootRotation` makes a new root and intermediate and adds the root to
 * the trust bundle while the old intermediate keeps signing; once every proxy holds the new
 * bundle (the control plane knows: they ACKed it), `completeRootRotation` signs with the new
 * intermediate, and the old root stays trusted until the last certificate it covers expires.
 */
import { appendFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RevocationList, Secret } from '../api/proxy-config.js';
import { ROOT_CA_SECRET } from '../api/proxy-config.js';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { normalizeSerial, summarizeCertificate, type CertificateSummary } from '../core/pki/certificate-info.js';
import { checkTrustDomain, DEFAULT_TRUST_DOMAIN, parseSpiffeId, spiffeId, type WorkloadIdentity } from '../core/pki/spiffe.js';
import { TrustBundle } from '../core/pki/trust-bundle.js';
import { x509 } from './x509-library.js';
import { verifyCsr } from './csr.js';
import { CaError } from './errors.js';
import {
  EMPTY_REVOCATIONS,
  formatIssuedLog,
  identityCutoff,
  liveIssued,
  parseIssuedLog,
  parseRevocations,
  revocationListAt,
  type IssuedRecord,
  type RevocationState,
  type RevokedIdentityRecord,
  type RevokedSerialRecord,
} from './records.js';
import { CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, ROOT_CERT_FILE, verifySigningBundle, type SigningBundle, type SigningBundleFiles } from './signing-bundle.js';
import { ensurePrivateDir, exists, ownerOnlyProblems, readIfExists, withDirLock, writePrivateFile } from './state-dir.js';
import {
  certificatePem,
  createIntermediateCertificate,
  createRootCertificate,
  createWorkloadCertificate,
  generateCaKeyPair,
  importSigningKey,
  privateKeyToPem,
  randomSerial,
  signingKeyFromPair,
} from './x509-build.js';

// === options and results ===

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Istio's defaults: workload certificates for 24 h (DEFAULT_WORKLOAD_CERT_TTL), at most 90 days (MAX_WORKLOAD_CERT_TTL). */
export const DEFAULT_WORKLOAD_TTL_MS = DAY;
export const DEFAULT_MAX_WORKLOAD_TTL_MS = 90 * DAY;
/** Istio's self-signed root lives 10 years (CITADEL_SELF_SIGNED_CA_CERT_TTL). */
export const DEFAULT_ROOT_TTL_MS = 3650 * DAY;
/** Sinew's intermediate lives a year and is renewed under the same root at half life. */
export const DEFAULT_INTERMEDIATE_TTL_MS = 365 * DAY;

export interface CertificateAuthorityOptions {
  /** The CA's directory (created 0700). */
  dir: string;
  /** Trust domain of the identities issued; default: the one the CA was created with, else `cluster.local`. */
  trustDomain?: string;
  workloadTtlMs?: number;
  maxWorkloadTtlMs?: number;
  rootTtlMs?: number;
  intermediateTtlMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** How long to wait for another process holding the directory's lock. */
  lockTimeoutMs?: number;
}

export interface InitOptions extends CertificateAuthorityOptions {
  /** A directory with Istio's `cacerts` files to sign with instead of a generated root. */
  pluginDir?: string;
  /**
   * Replace the signing material of an existing CA at once (the issued log and revocations are
   * kept). Certificates chaining to a replaced root stop being trusted: to change the root
   * without that, rotate it (beginRootRotation / completeRootRotation).
   */
  force?: boolean;
}

export interface SignRequest {
  /** PEM PKCS#10 request, signed by the key the certificate is for. */
  csrPem: string;
  /** Who the authenticated caller is. The CSR's own subject and SANs are ignored. */
  identity: WorkloadIdentity;
  /** Lifetime asked for (default: the CA's workload TTL; at most its maximum). */
  ttlMs?: number;
  /**
   * An opaque name for the caller's credential (e.g. the id of a proxy's token). Recorded with
   * the certificate, so that revoking the certificate also refuses renewals from that credential.
   */
  holder?: string;
}

export interface IssuedCertificate {
  /** The leaf and then the CA chain, as a proxy presents it. */
  certificateChainPem: string;
  certificatePem: string;
  /** Every root proxies should trust now (several during a root rotation). */
  trustBundlePem: string;
  serial: string;
  identity: string;
  notBefore: number;
  notAfter: number;
}

export type RevokeTarget = { serial: string } | { identity: string };

export interface RevokeResult {
  kind: 'serial' | 'identity';
  /** The normalised serial or the SPIFFE ID. */
  target: string;
  /** False when it was revoked already (revoking is idempotent). */
  changed: boolean;
  /** Until when proxies will be told to refuse it. */
  expiresAt: number;
  /** Certificates it covers that have not expired yet. */
  liveCertificates: number;
}

export type CaSource = 'generated' | 'plugin';

/** `sinew ca list` and the status pages: what the CA holds, without keys. */
export interface CaDescription {
  dir: string;
  trustDomain: string;
  source: CaSource;
  signingCertificate: CertificateSummary;
  roots: CertificateSummary[];
  rotation?: { startedAt: number; newRoot: CertificateSummary };
  retiringRoots: { root: CertificateSummary; trustedUntil: number }[];
}

// === files ===

const META_FILE = 'ca.json';
const ROOT_KEY_FILE = 'root-key.pem';
const ISSUED_FILE = 'issued.jsonl';
const REVOCATIONS_FILE = 'revocations.json';
const NEXT_DIR = 'next';
const PRIVATE_FILES = [META_FILE, CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, ROOT_CERT_FILE, ROOT_KEY_FILE, ISSUED_FILE, REVOCATIONS_FILE];
/** Compact issued.jsonl after this many appends. */
const COMPACT_EVERY = 256;

interface CaMeta {
  format: 1;
  trustDomain: string;
  source: CaSource;
  createdAt: number;
  /** Grows whenever the signing material changes, so other processes know to reload it. */
  generation: number;
  rotation?: { startedAt: number };
  retiringRoots: { certificatePem: string; trustedUntil: number }[];
}

interface Material {
  bundle: SigningBundle;
  /** Generated CAs keep the root's key to renew their intermediate. */
  rootKeyPem?: string;
}

// === the CA ===

export class CertificateAuthority {
  private meta: CaMeta;
  private current: Material;
  private next: Material | undefined;
  private revocations: RevocationState;
  private appendsSinceCompaction = 0;
  private readonly listeners = new Set<() => void>();
  private readonly clock: Clock;
  private readonly logger: Logger;

  private constructor(
    private readonly options: CertificateAuthorityOptions,
    state: { meta: CaMeta; current: Material; next?: Material; revocations: RevocationState },
  ) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.meta = state.meta;
    this.current = state.current;
    this.next = state.next;
    this.revocations = state.revocations;
  }

  /** Opens the CA in `options.dir`, creating a root and intermediate on first start. */
  static async open(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    if (!(await isInitialized(options.dir))) {
      try {
        return await CertificateAuthority.init(options);
      } catch (err) {
        // Another process initialised it in the meantime: use theirs.
        if (!(err instanceof CaError && err.code === 'SNW_ERR_CA_EXISTS')) throw err;
      }
    }
    return CertificateAuthority.load(options);
  }

  /** Opens an existing CA; throws SNW_ERR_CA_NOT_INITIALIZED when there is none. */
  static async load(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const dir = options.dir;
    if (!(await isInitialized(dir))) {
      throw new CaError('SNW_ERR_CA_NOT_INITIALIZED', `there is no CA in ${dir} yet; create one with "sinew ca init" (or let the control plane create it on first start)`);
    }
    const clock = options.clock ?? systemClock;
    const state = await readState(dir, clock.now());
    const ca = new CertificateAuthority(options, state);
    await ca.adoptTrustDomain();
    ca.warnAboutExpiry();
    return ca;
  }

  /**
   * Creates the CA: a new root and intermediate, or the plug-in files of `pluginDir` after
   * checking them as Istio does. Refuses a directory that already holds a CA unless `force`.
   */
  static async init(options: InitOptions): Promise<CertificateAuthority> {
    const dir = options.dir;
    const clock = options.clock ?? systemClock;
    const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const tdProblem = checkTrustDomain(trustDomain);
    if (tdProblem) throw new CaError('SNW_ERR_CA_BAD_IDENTITY', `cannot create a CA: ${tdProblem}`);
    await ensurePrivateDir(dir);
    return withDirLock(
      dir,
      async () => {
        const now = clock.now();
        const existing = (await isInitialized(dir)) ? await readMeta(dir) : undefined;
        if (existing && !options.force) {
          throw new CaError('SNW_ERR_CA_EXISTS', `${dir} already holds a CA (trust domain ${existing.trustDomain}, ${existing.source}); use it as it is, or pass --force to replace its signing certificates`);
        }
        const files: SigningBundleFiles & { rootKeyPem?: string } = options.pluginDir ? await readPluginDir(options.pluginDir) : await generateRootAndIntermediate(trustDomain, now, options);
        // The same checks for plug-in files and for what we just made: nothing unverified is stored.
        const bundle = await verifySigningBundle(files, now, options.pluginDir ?? dir, options.pluginDir ? 'SNW_ERR_CA_PLUGIN_CERTS' : 'SNW_ERR_CA_STATE');
        await writeMaterial(dir, files);
        if (files.rootKeyPem) await writePrivateFile(join(dir, ROOT_KEY_FILE), files.rootKeyPem);
        else await rm(join(dir, ROOT_KEY_FILE), { force: true });
        await rm(join(dir, NEXT_DIR), { recursive: true, force: true });
        const meta: CaMeta = {
          format: 1,
          trustDomain,
          source: options.pluginDir ? 'plugin' : 'generated',
          createdAt: existing?.createdAt ?? now,
          generation: (existing?.generation ?? 0) + 1,
          retiringRoots: [],
        };
        await writePrivateFile(join(dir, META_FILE), JSON.stringify(meta, null, 2) + '\n');
        const revocations = parseRevocations(await readIfExists(join(dir, REVOCATIONS_FILE)));
        const ca = new CertificateAuthority(options, { meta, current: { bundle, rootKeyPem: files.rootKeyPem }, revocations });
        ca.logger.info(existing ? 'CA signing certificates replaced' : 'CA created', { dir, source: meta.source, trustDomain, root: bundle.anchor.fingerprint256 });
        return ca;
      },
      options.lockTimeoutMs,
    );
  }

  get dir(): string {
    return this.options.dir;
  }

  get trustDomain(): string {
    return this.meta.trustDomain;
  }

  get source(): CaSource {
    return this.meta.source;
  }

  /** Every root proxies should trust now: the signing root, a pending new root, retiring roots. */
  trustBundle(): TrustBundle {
    const now = this.clock.now();
    let bundle = this.current.bundle.roots;
    if (this.next) bundle = bundle.merge(this.next.bundle.roots);
    const retiring = this.meta.retiringRoots.filter((r) => r.trustedUntil >= now).map((r) => r.certificatePem);
    if (retiring.length) bundle = bundle.merge(TrustBundle.of(retiring));
    return bundle.withoutExpired(now);
  }

  /** The revocations proxies must enforce now (ProxyConfig shape). */
  revocationList(): RevocationList {
    return revocationListAt(this.revocations, this.clock.now());
  }

  /** The ProxyConfig secret with the trust bundle and revocations (Istio's `ROOTCA`). */
  rootCaSecret(): Secret {
    return { name: ROOT_CA_SECRET, trustedCaPem: this.trustBundle().pem(), revocations: this.revocationList() };
  }

  /** Calls `listener` after the trust bundle or the revocations change (here, or found by `refresh`). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads what another process (an offline `sinew ca` command) may have changed; true if anything did. */
  async refresh(): Promise<boolean> {
    return withDirLock(this.dir, () => this.refreshLocked(), this.options.lockTimeoutMs);
  }

  describe(): CaDescription {
    const now = this.clock.now();
    return {
      dir: this.dir,
      trustDomain: this.trustDomain,
      source: this.source,
      signingCertificate: summarizeCertificate(this.current.bundle.caCertNode),
      roots: this.current.bundle.roots.roots.map(({ pem: _pem, ...summary }) => summary),
      rotation: this.meta.rotation && this.next ? { startedAt: this.meta.rotation.startedAt, newRoot: summarizeCertificate(this.next.bundle.anchor) } : undefined,
      retiringRoots: this.meta.retiringRoots.filter((r) => r.trustedUntil >= now).map((r) => ({ root: summarizeCertificate(r.certificatePem), trustedUntil: r.trustedUntil })),
    };
  }

  // === issuance ===

  /**
   * Issues a workload certificate for the caller's identity on the CSR's key. Refuses a CSR
   * that is not signed by its own key, a revoked identity or credential, and lifetimes over
   * the maximum; the certificate never outlives the CA's own chain.
   */
  async sign(request: SignRequest): Promise<IssuedCertificate> {
    const id = this.identityOf(request.identity);
    const ttl = request.ttlMs ?? this.options.workloadTtlMs ?? DEFAULT_WORKLOAD_TTL_MS;
    const maxTtl = this.options.maxWorkloadTtlMs ?? DEFAULT_MAX_WORKLOAD_TTL_MS;
    if (!(Number.isFinite(ttl) && ttl >= 1000)) throw new CaError('SNW_ERR_CA_BAD_TTL', `a certificate lifetime must be at least 1s, not ${ttl}ms`);
    // Istio: "requested TTL %s is greater than the max allowed TTL %s".
    if (ttl > maxTtl) throw new CaError('SNW_ERR_CA_BAD_TTL', `the requested lifetime ${formatMs(ttl)} is greater than the maximum the CA allows (${formatMs(maxTtl)})`);
    const csr = await verifyCsr(request.csrPem);
    if (csr.requestedUris.length && !csr.requestedUris.includes(id)) {
      this.logger.debug('CSR asked for another identity; issuing for the authenticated one', { requested: csr.requestedUris, issued: id });
    }

    return withDirLock(
      this.dir,
      async () => {
        await this.refreshLocked();
        const now = this.clock.now();
        this.refuseRevoked(id, request.holder);
        await this.renewIntermediateIfDue(now);
        const { bundle } = this.current;
        // Certificate times have whole seconds; start at the second we are in (or at the end of
        // a lifted revocation of this identity, so the new certificate is not covered by it).
        const lifted = this.revocations.identities.find((r) => r.identity === id);
        const notBefore = Math.max(Math.floor(now / 1000) * 1000, lifted?.issuedBefore ?? 0);
        const notAfter = Math.min(notBefore + ttl, bundle.pathNotAfter);
        if (notAfter <= now) {
          throw new CaError('SNW_ERR_CA_EXPIRED', `the CA's signing certificate (or a certificate above it) expired at ${new Date(bundle.pathNotAfter).toISOString()}; ${this.source === 'plugin' ? 'plug in new certificates with "sinew ca init --plugin-dir <dir> --force"' : 'rotate the root with a new CA'}`);
        }
        if (notAfter < notBefore + ttl) this.logger.warn('workload certificate cut short by the CA certificate expiry', { identity: id, notAfter: new Date(notAfter).toISOString() });
        const serial = randomSerial();
        const leaf = await createWorkloadCertificate(csr.publicKey, id, serial, { cert: bundle.caCert, key: bundle.signingKey }, { notBefore: new Date(notBefore), notAfter: new Date(notAfter) });
        const leafPem = certificatePem(leaf);
        const record: IssuedRecord = { serial: normalizeSerial(serial), identity: id, notBefore, notAfter, root: bundle.anchor.fingerprint256 };
        if (request.holder) record.holder = request.holder;
        await this.appendIssued(record, now);
        return {
          certificateChainPem: leafPem + bundle.chainPems.join(''),
          certificatePem: leafPem,
          trustBundlePem: this.trustBundle().pem(),
          serial: record.serial,
          identity: id,
          notBefore,
          notAfter,
        };
      },
      this.options.lockTimeoutMs,
    );
  }

  /** The certificates issued and not yet compacted away (expired over an hour ago), oldest first. */
  async issued(): Promise<IssuedRecord[]> {
    const { records } = parseIssuedLog(await readIfExists(join(this.dir, ISSUED_FILE)));
    return records;
  }

  // === revocation ===

  /**
   * Revokes one certificate (by serial) or every certificate of an identity. Proxies are told
   * to refuse it until it expires; the CA refuses renewals for the identity, or for the
   * credential that held the certificate.
   */
  async revoke(target: RevokeTarget): Promise<RevokeResult> {
    return withDirLock(
      this.dir,
      async () => {
        await this.refreshLocked();
        const now = this.clock.now();
        const issued = await this.issued();
        const state: RevocationState = { ...this.revocations, serials: [...this.revocations.serials], identities: [...this.revocations.identities] };
        let result: RevokeResult;
        if ('serial' in target) {
          const serial = normalizeSerial(target.serial);
          const existing = state.serials.find((s) => s.serial === serial);
          if (existing) return { kind: 'serial', target: serial, changed: false, expiresAt: existing.expiresAt, liveCertificates: existing.expiresAt >= now ? 1 : 0 };
          const record = issued.find((r) => r.serial === serial);
          if (!record) throw new CaError('SNW_ERR_CA_REVOKE_TARGET', `this CA has no record of a certificate with serial ${serial}; "sinew ca list" shows the certificates it issued`);
          if (record.notAfter < now) throw new CaError('SNW_ERR_CA_REVOKE_TARGET', `certificate ${serial} (${record.identity}) expired at ${new Date(record.notAfter).toISOString()}; every proxy refuses it already`);
          const entry: RevokedSerialRecord = { serial, identity: record.identity, expiresAt: record.notAfter, revokedAt: now };
          if (record.holder) entry.holder = record.holder;
          state.serials.push(entry);
          result = { kind: 'serial', target: serial, changed: true, expiresAt: record.notAfter, liveCertificates: 1 };
        } else {
          const id = this.checkSpiffeId(target.identity);
          const index = state.identities.findIndex((i) => i.identity === id);
          if (index >= 0 && state.identities[index].blocked) {
            const existing = state.identities[index];
            return { kind: 'identity', target: id, changed: false, expiresAt: existing.expiresAt, liveCertificates: issued.filter((r) => r.identity === id && r.notAfter >= now).length };
          }
          const cutoff = identityCutoff(now);
          const covered = issued.filter((r) => r.identity === id && r.notBefore < cutoff && r.notAfter >= now);
          const expiresAt = Math.max(now, ...covered.map((r) => r.notAfter), index >= 0 ? state.identities[index].expiresAt : 0);
          const entry: RevokedIdentityRecord = { identity: id, revokedAt: now, issuedBefore: cutoff, expiresAt, blocked: true };
          if (index >= 0) state.identities[index] = entry;
          else state.identities.push(entry);
          result = { kind: 'identity', target: id, changed: true, expiresAt, liveCertificates: covered.length };
        }
        state.version++;
        await this.saveRevocations(state);
        this.logger.warn('certificate revoked', { [result.kind]: result.target, until: new Date(result.expiresAt).toISOString() });
        this.emitChange();
        return result;
      },
      this.options.lockTimeoutMs,
    );
  }

  /**
   * Lets the CA issue for a revoked identity again. Certificates issued before the revocation
   * stay refused until they expire; new ones start after it.
   */
  async unrevoke(identity: string): Promise<{ changed: boolean }> {
    return withDirLock(
      this.dir,
      async () => {
        await this.refreshLocked();
        const id = this.checkSpiffeId(identity);
        const index = this.revocations.identities.findIndex((i) => i.identity === id && i.blocked);
        if (index < 0) return { changed: false };
        const identities = [...this.revocations.identities];
        identities[index] = { ...identities[index], blocked: false };
        await this.saveRevocations({ ...this.revocations, version: this.revocations.version + 1, identities });
        this.logger.info('identity may be issued for again', { identity: id });
        this.emitChange();
        return { changed: true };
      },
      this.options.lockTimeoutMs,
    );
  }

  /** The full revocation records (with what the CA refuses to renew), for `sinew ca list`. */
  revocationRecords(): RevocationState {
    return this.revocations;
  }

  // === root rotation ===

  /** Makes a new root and intermediate and trusts the new root beside the old one; the old intermediate keeps signing. */
  async beginRootRotation(): Promise<CertificateSummary> {
    return withDirLock(
      this.dir,
      async () => {
        await this.refreshLocked();
        if (this.source !== 'generated') {
          throw new CaError('SNW_ERR_CA_ROTATION', 'a plug-in CA rotates its root outside Sinew: put both roots in root-cert.pem, switch ca-cert.pem, and run "sinew ca init --plugin-dir <dir> --force" at each step (istio.io "Plug in CA certificates")');
        }
        if (this.next) throw new CaError('SNW_ERR_CA_ROTATION', 'a root rotation is already under way; complete it first');
        const now = this.clock.now();
        const files = await generateRootAndIntermediate(this.trustDomain, now, this.options);
        const bundle = await verifySigningBundle(files, now, join(this.dir, NEXT_DIR), 'SNW_ERR_CA_STATE');
        const nextDir = join(this.dir, NEXT_DIR);
        await ensurePrivateDir(nextDir);
        await writeMaterial(nextDir, files);
        await writePrivateFile(join(nextDir, ROOT_KEY_FILE), files.rootKeyPem as string);
        this.next = { bundle, rootKeyPem: files.rootKeyPem };
        await this.saveMeta({ ...this.meta, generation: this.meta.generation + 1, rotation: { startedAt: now } });
        this.logger.info('root rotation begun: the new root is trusted beside the old one', { newRoot: bundle.anchor.fingerprint256 });
        this.emitChange();
        return summarizeCertificate(bundle.anchor);
      },
      this.options.lockTimeoutMs,
    );
  }

  /** Signs with the new intermediate from now on; the old root stays trusted until its last certificate expires. */
  async completeRootRotation(): Promise<{ oldRootTrustedUntil: number }> {
    return withDirLock(
      this.dir,
      async () => {
        await this.refreshLocked();
        if (!this.next) throw new CaError('SNW_ERR_CA_ROTATION', 'no root rotation is under way; begin one first');
        const now = this.clock.now();
        const oldRoot = this.current.bundle.anchor.fingerprint256;
        const lastIssued = (await this.issued()).filter((r) => r.root === oldRoot).reduce((max, r) => Math.max(max, r.notAfter), now);
        const next = this.next;
        const nextDir = join(this.dir, NEXT_DIR);
        await writeMaterial(this.dir, {
          caCertPem: next.bundle.caCertPem,
          caKeyPem: next.bundle.caKeyPem,
          certChainPem: next.bundle.chainPems.join(''),
          rootCertPem: next.bundle.roots.pem(),
        });
        await writePrivateFile(join(this.dir, ROOT_KEY_FILE), next.rootKeyPem as string);
        const retiring = this.current.bundle.roots.roots.map((r) => ({ certificatePem: r.pem, trustedUntil: lastIssued }));
        await this.saveMeta({ ...this.meta, generation: this.meta.generation + 1, rotation: undefined, retiringRoots: [...this.meta.retiringRoots.filter((r) => r.trustedUntil >= now), ...retiring] });
        await rm(nextDir, { recursive: true, force: true });
        this.current = next;
        this.next = undefined;
        this.logger.info('root rotation complete: signing with the new root', { oldRootTrustedUntil: new Date(lastIssued).toISOString() });
        this.emitChange();
        return { oldRootTrustedUntil: lastIssued };
      },
      this.options.lockTimeoutMs,
    );
  }

  // === inside ===

  private identityOf(identity: WorkloadIdentity): string {
    const id = { trustDomain: this.trustDomain, namespace: identity?.namespace, serviceAccount: identity?.serviceAccount };
    try {
      return spiffeId(id);
    } catch (err) {
      throw new CaError('SNW_ERR_CA_BAD_IDENTITY', (err as Error).message);
    }
  }

  private checkSpiffeId(identity: string): string {
    const parsed = parseSpiffeId(identity);
    if (!parsed) throw new CaError('SNW_ERR_CA_REVOKE_TARGET', `"${identity}" is not a workload identity: write spiffe://${this.trustDomain}/ns/<namespace>/sa/<service account>`);
    if (parsed.trustDomain !== this.trustDomain) throw new CaError('SNW_ERR_CA_REVOKE_TARGET', `${identity} is in trust domain ${parsed.trustDomain}; this CA issues for ${this.trustDomain}`);
    return identity;
  }

  private refuseRevoked(id: string, holder: string | undefined): void {
    const revoked = this.revocations.identities.find((r) => r.identity === id && r.blocked);
    if (revoked) {
      throw new CaError('SNW_ERR_CA_REVOKED', `identity ${id} was revoked at ${new Date(revoked.revokedAt).toISOString()}; the CA issues nothing for it until "sinew ca unrevoke ${id}"`);
    }
    if (holder) {
      const held = this.revocations.serials.find((s) => s.holder === holder);
      if (held) throw new CaError('SNW_ERR_CA_REVOKED', `certificate ${held.serial} issued to this caller was revoked; it needs a new credential before it can get another certificate`);
    }
  }

  /** Generated CAs renew their intermediate under the same root once half its life is gone. */
  private async renewIntermediateIfDue(now: number): Promise<void> {
    const { bundle, rootKeyPem } = this.current;
    if (this.source !== 'generated' || !rootKeyPem) return;
    const ttl = this.options.intermediateTtlMs ?? DEFAULT_INTERMEDIATE_TTL_MS;
    const notAfter = Date.parse(bundle.caCertNode.validTo);
    if (notAfter - now > ttl / 2) return;
    const rootPem = bundle.roots.roots.find((r) => r.fingerprint256 === bundle.anchor.fingerprint256)?.pem as string;
    const root = new x509.X509Certificate(rootPem);
    const renewedNotAfter = Math.min(now + ttl, root.notAfter.getTime());
    // Near the root's own end a new intermediate gains little: renew only for a real gain.
    if (renewedNotAfter - notAfter < ttl / 4) return;
    const keys = await generateCaKeyPair();
    const intermediate = await createIntermediateCertificate(keys.publicKey, { cert: root, key: await importSigningKey(rootKeyPem) }, this.trustDomain, {
      notBefore: new Date(now),
      notAfter: new Date(renewedNotAfter),
    });
    const files: SigningBundleFiles = { caCertPem: certificatePem(intermediate), caKeyPem: await privateKeyToPem(keys.privateKey), certChainPem: certificatePem(intermediate) + rootPem, rootCertPem: bundle.roots.pem() };
    const renewed = await verifySigningBundle(files, now, this.dir, 'SNW_ERR_CA_STATE');
    await writeMaterial(this.dir, files);
    await this.saveMeta({ ...this.meta, generation: this.meta.generation + 1 });
    this.current = { bundle: renewed, rootKeyPem };
    this.logger.info('intermediate CA certificate renewed', { notAfter: new Date(Date.parse(renewed.caCertNode.validTo)).toISOString() });
  }

  private async appendIssued(record: IssuedRecord, now: number): Promise<void> {
    const path = join(this.dir, ISSUED_FILE);
    await appendFile(path, JSON.stringify(record) + '\n', { mode: 0o600 });
    if (++this.appendsSinceCompaction < COMPACT_EVERY) return;
    this.appendsSinceCompaction = 0;
    const { records } = parseIssuedLog(await readIfExists(path));
    await writePrivateFile(path, formatIssuedLog(liveIssued(records, now)));
  }

  private async saveRevocations(state: RevocationState): Promise<void> {
    await writePrivateFile(join(this.dir, REVOCATIONS_FILE), JSON.stringify(state, null, 2) + '\n');
    this.revocations = state;
  }

  private async saveMeta(meta: CaMeta): Promise<void> {
    if (!meta.rotation) delete meta.rotation;
    await writePrivateFile(join(this.dir, META_FILE), JSON.stringify(meta, null, 2) + '\n');
    this.meta = meta;
  }

  /** Under the lock: reload what changed on disk since we last looked. */
  private async refreshLocked(): Promise<boolean> {
    let changed = false;
    const meta = await readMeta(this.dir);
    if (meta.generation !== this.meta.generation) {
      const state = await readState(this.dir, this.clock.now());
      this.meta = state.meta;
      this.current = state.current;
      this.next = state.next;
      changed = true;
    }
    const revocations = parseRevocationsFile(await readIfExists(join(this.dir, REVOCATIONS_FILE)), this.dir);
    if (revocations.version !== this.revocations.version) {
      this.revocations = revocations;
      changed = true;
    }
    if (changed) this.emitChange();
    return changed;
  }

  private async adoptTrustDomain(): Promise<void> {
    const wanted = this.options.trustDomain;
    if (!wanted || wanted === this.meta.trustDomain) return;
    const problem = checkTrustDomain(wanted);
    if (problem) throw new CaError('SNW_ERR_CA_BAD_IDENTITY', problem);
    await withDirLock(this.dir, () => this.saveMeta({ ...this.meta, trustDomain: wanted }), this.options.lockTimeoutMs);
    this.logger.warn('trust domain changed: new certificates carry the new identities', { from: this.meta.trustDomain, to: wanted });
  }

  private warnAboutExpiry(): void {
    const now = this.clock.now();
    const left = this.current.bundle.pathNotAfter - now;
    if (left < 30 * DAY) this.logger.warn('the CA certificates expire soon; workload certificates are cut short to their expiry', { expires: new Date(this.current.bundle.pathNotAfter).toISOString() });
  }

  private emitChange(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.logger.error('CA change listener failed', { error: (err as Error).message });
      }
    }
  }
}

// === reading and writing the directory ===

async function isInitialized(dir: string): Promise<boolean> {
  return exists(join(dir, META_FILE));
}

async function readMeta(dir: string): Promise<CaMeta> {
  const text = await readIfExists(join(dir, META_FILE));
  if (text === undefined) throw new CaError('SNW_ERR_CA_NOT_INITIALIZED', `there is no CA in ${dir}; create one with "sinew ca init"`);
  let meta: CaMeta;
  try {
    meta = JSON.parse(text) as CaMeta;
  } catch (err) {
    throw new CaError('SNW_ERR_CA_STATE', `${join(dir, META_FILE)} is not valid JSON: ${(err as Error).message}`, [], { cause: err });
  }
  if (meta.format !== 1 || typeof meta.trustDomain !== 'string' || !Number.isInteger(meta.generation) || !Array.isArray(meta.retiringRoots)) {
    throw new CaError('SNW_ERR_CA_STATE', `${join(dir, META_FILE)} is not a Sinew CA description (format 1); it may come from a newer Sinew`);
  }
  return meta;
}

function parseRevocationsFile(text: string | undefined, dir: string): RevocationState {
  try {
    return parseRevocations(text);
  } catch (err) {
    throw new CaError('SNW_ERR_CA_STATE', `${join(dir, REVOCATIONS_FILE)} cannot be read: ${(err as Error).message}`, [], { cause: err });
  }
}

async function readMaterial(dir: string, now: number): Promise<Material> {
  const read = async (file: string) => readIfExists(join(dir, file));
  const [caCertPem, caKeyPem, certChainPem, rootCertPem, rootKeyPem] = await Promise.all([read(CA_CERT_FILE), read(CA_KEY_FILE), read(CERT_CHAIN_FILE), read(ROOT_CERT_FILE), read(ROOT_KEY_FILE)]);
  const missing = [[CA_CERT_FILE, caCertPem], [CA_KEY_FILE, caKeyPem], [ROOT_CERT_FILE, rootCertPem]].filter(([, v]) => v === undefined).map(([f]) => `${join(dir, f as string)} is missing`);
  if (missing.length) throw new CaError('SNW_ERR_CA_STATE', `the CA in ${dir} is incomplete:`, missing);
  const bundle = await verifySigningBundle({ caCertPem: caCertPem!, caKeyPem: caKeyPem!, certChainPem, rootCertPem: rootCertPem! }, now, dir, 'SNW_ERR_CA_STATE');
  return { bundle, rootKeyPem };
}

async function readState(dir: string, now: number): Promise<{ meta: CaMeta; current: Material; next?: Material; revocations: RevocationState }> {
  const modes = await ownerOnlyProblems(dir, PRIVATE_FILES);
  const nextDir = join(dir, NEXT_DIR);
  const hasNext = await exists(nextDir);
  if (hasNext) modes.push(...(await ownerOnlyProblems(nextDir, [CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, ROOT_CERT_FILE, ROOT_KEY_FILE])));
  if (modes.length) throw new CaError('SNW_ERR_CA_STATE', `the CA's files in ${dir} must be readable by their owner only:`, modes);
  const meta = await readMeta(dir);
  const current = await readMaterial(dir, now);
  const next = meta.rotation && hasNext ? await readMaterial(nextDir, now) : undefined;
  const revocations = parseRevocationsFile(await readIfExists(join(dir, REVOCATIONS_FILE)), dir);
  return { meta, current, next, revocations };
}

async function writeMaterial(dir: string, files: SigningBundleFiles): Promise<void> {
  await writePrivateFile(join(dir, ROOT_CERT_FILE), files.rootCertPem);
  await writePrivateFile(join(dir, CERT_CHAIN_FILE), files.certChainPem ?? files.caCertPem);
  await writePrivateFile(join(dir, CA_KEY_FILE), files.caKeyPem);
  await writePrivateFile(join(dir, CA_CERT_FILE), files.caCertPem);
}

/** Reads Istio's `cacerts` files from a directory (cert-chain.pem optional, as in Istio). */
async function readPluginDir(dir: string): Promise<SigningBundleFiles> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new CaError('SNW_ERR_CA_PLUGIN_CERTS', `cannot read the plug-in directory ${dir}: ${(err as Error).message}`, [], { cause: err });
  }
  const missing = [CA_CERT_FILE, CA_KEY_FILE, ROOT_CERT_FILE].filter((f) => !names.includes(f));
  if (missing.length) {
    throw new CaError('SNW_ERR_CA_PLUGIN_CERTS', `${dir} is not a plug-in CA directory: it needs ${CA_CERT_FILE}, ${CA_KEY_FILE}, ${ROOT_CERT_FILE} and usually ${CERT_CHAIN_FILE} (Istio's cacerts secret):`, missing.map((f) => `${f} is missing`));
  }
  const read = async (f: string) => (await readIfExists(join(dir, f))) as string;
  return {
    caCertPem: await read(CA_CERT_FILE),
    caKeyPem: await read(CA_KEY_FILE),
    certChainPem: names.includes(CERT_CHAIN_FILE) ? await read(CERT_CHAIN_FILE) : undefined,
    rootCertPem: await read(ROOT_CERT_FILE),
  };
}

/** A new self-signed root and an intermediate under it, in the cacerts layout plus the root's key. */
/**
 * New signing material for a CA kept somewhere other than a directory of its own (a cluster's
 * Secret): a root and an intermediate, as Istio's `cacerts` files, without the root's key. The
 * intermediate lives as long as the root, because no process keeps the root's key to renew it,
 * as istiod's self-signed root in `istio-ca-secret` signs for its whole life.
 */
export async function generateSigningFiles(now: number, trustDomain = DEFAULT_TRUST_DOMAIN, rootTtlMs = DEFAULT_ROOT_TTL_MS): Promise<SigningBundleFiles> {
  const { rootKeyPem: _rootKey, ...files } = await generateRootAndIntermediate(trustDomain, now, { dir: '', rootTtlMs, intermediateTtlMs: rootTtlMs });
  return files;
}

async function generateRootAndIntermediate(trustDomain: string, now: number, options: CertificateAuthorityOptions): Promise<SigningBundleFiles & { rootKeyPem: string }> {
  const rootKeys = await generateCaKeyPair();
  const root = await createRootCertificate(rootKeys, trustDomain, { notBefore: new Date(now), notAfter: new Date(now + (options.rootTtlMs ?? DEFAULT_ROOT_TTL_MS)) });
  const intermediateKeys = await generateCaKeyPair();
  const intermediate = await createIntermediateCertificate(intermediateKeys.publicKey, { cert: root, key: await signingKeyFromPair(rootKeys) }, trustDomain, {
    notBefore: new Date(now),
    notAfter: new Date(Math.min(now + (options.intermediateTtlMs ?? DEFAULT_INTERMEDIATE_TTL_MS), root.notAfter.getTime())),
  });
  const rootPem = certificatePem(root);
  const caCertPem = certificatePem(intermediate);
  return {
    caCertPem,
    caKeyPem: await privateKeyToPem(intermediateKeys.privateKey),
    // Istio's layout (tools/certs Makefile): the chain is ca-cert followed by the root.
    certChainPem: caCertPem + rootPem,
    rootCertPem: rootPem,
    rootKeyPem: await privateKeyToPem(rootKeys.privateKey),
  };
}

function formatMs(ms: number): string {
  if (ms % DAY === 0) return `${ms / DAY}d`;
  if (ms % HOUR === 0) return `${ms / HOUR}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

