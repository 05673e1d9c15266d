/**
 * The mesh CA as the control plane hosts it (istiod's built-in CA): the CertificateAuthority
 * of `src/ca` in `<state dir>/ca`, joined to the push server.
 *
 * - **Issuance.** A proxy sends a CSR on its push connection; the push server has checked its
 *   credential in HELLO, so the node is proven, and the certificate's identity is
 *   `spiffe://<trust domain>/ns/<node namespace>/sa/<node service account>` whatever the CSR
 *   asks for (Istio: the identity comes from the caller's authenticated token, the CSR's SAN
 *   is ignored). The node id is recorded as the certificate's holder, so revoking the
 *   certificate also refuses that proxy's renewals.
 * - **Trust.** Every proxy's config carries the `ROOTCA` secret (the trust bundle and the
 *   revocation list) and the `default` secret (`provider: mesh-ca`: the proxy makes its own
 *   key and asks for the certificate). A change — a revocation, a root rotation, entries
 *   expiring, or a change an offline `sinew ca` command made to the directory — pushes new
 *   secrets to every proxy.
 * - **Root rotation** (Istio's SelfSignedCARootCertRotator): begun when the root has less than
 *   a fifth of its life left, or by `sinew ca rotate-root`; both roots are trusted while it
 *   runs; it completes — the new intermediate signs — once every connected proxy has ACKed a
 *   config whose bundle holds the new root, and the old root stays trusted until the last
 *   certificate it covers expires.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProxyConfig, ProxyNode, Secret } from '../api/proxy-config.js';
import { ROOT_CA_SECRET, WORKLOAD_CERTIFICATE_SECRET } from '../api/proxy-config.js';
import { CertificateAuthority, type CaDescription } from '../ca/authority.js';
import { CaError } from '../ca/errors.js';
import { CA_CERT_FILE } from '../ca/signing-bundle.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { deepFreeze } from '../core/freeze.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { splitPemCertificates, summarizeCertificate } from '../core/pki/certificate-info.js';
import type { ComposedConfig } from '../xds/content.js';
import type { PushServer } from '../xds/server.js';
export { CA_DIR } from './ca-dir.js';

export interface MeshCaOptions {
  /** The CA's directory; absent = a temporary one, removed on close (a control plane without state). */
  dir?: string;
  /** Istio plug-in certificates (`cacerts`: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem), as `sinew ca init --plugin-dir`. */
  pluginDir?: string;
  /** Workload certificate lifetime (default 24 h, Istio's DEFAULT_WORKLOAD_CERT_TTL). */
  workloadTtlMs?: number;
  /** How often the directory is re-read for changes other processes made (default 2 s). */
  refreshIntervalMs?: number;
  /** Begin a root rotation when less than this share of the root's life is left (Istio's CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE, 20). */
  rootGracePercent?: number;
  clock?: Clock;
  logger?: Logger;
}

/** What the control plane knows of the certificate it last issued to a proxy. */
export interface IssuedToProxy {
  identity: string;
  serial: string;
  notBefore: number;
  notAfter: number;
  /** SHA-256 fingerprint of the root it chains to. */
  root: string;
}

const DEFAULT_REFRESH_MS = 2_000;
const DEFAULT_ROOT_GRACE_PERCENT = 20;

/**
 * True when a root valid from `notBefore` to `notAfter` should be rotated at `now`: less than
 * `gracePercent` of its lifetime is left (Istio's root cert rotator checks the same ratio).
 */
export function rootRotationDue(root: { notBefore: number; notAfter: number }, now: number, gracePercent = DEFAULT_ROOT_GRACE_PERCENT): boolean {
  const lifetime = root.notAfter - root.notBefore;
  return lifetime > 0 && root.notAfter - now < (lifetime * gracePercent) / 100;
}

export class MeshCa {
  readonly ca: CertificateAuthority;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly options: MeshCaOptions;
  private readonly temporaryDir: string | undefined;
  private secrets: { json: string; rootCa: Secret; list: readonly Secret[] };
  private readonly listeners = new Set<(reason: string) => void>();
  private readonly issuedTo = new Map<string, IssuedToProxy>();
  /** Per own part of a config: the same own part with the secrets, while the secrets stay the same. */
  private withSecretsCache = new WeakMap<ProxyConfig, ProxyConfig>();
  /** The ROOTCA secret each proxy's latest config carried (for root rotation). */
  private readonly builtWith = new Map<string, Secret>();
  private rotation: { newRoot: string; acked: Set<string> } | undefined;
  private push: PushServer | undefined;
  private timer: TimerHandle | undefined;
  private ticking = false;
  private completing = false;
  private closed = false;
  private readonly unsubscribe: () => void;

  private constructor(ca: CertificateAuthority, options: MeshCaOptions, temporaryDir: string | undefined) {
    this.ca = ca;
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.temporaryDir = temporaryDir;
    this.secrets = this.computeSecrets();
    this.unsubscribe = ca.onChange(() => this.secretsMayHaveChanged('the CA changed'));
    this.noticeRotation(ca.describe());
  }

  /** Opens (or on first start creates) the CA, taking plug-in certificates when given. */
  static async open(options: MeshCaOptions): Promise<MeshCa> {
    const temporaryDir = options.dir ? undefined : await mkdtemp(join(tmpdir(), 'sinew-ca-'));
    const dir = options.dir ?? join(temporaryDir as string, 'ca');
    const caOptions = { dir, workloadTtlMs: options.workloadTtlMs, clock: options.clock, logger: options.logger };
    try {
      let ca: CertificateAuthority | undefined;
      if (options.pluginDir) {
        ca = await loadIfThere(caOptions);
        if (!ca) ca = await CertificateAuthority.init({ ...caOptions, pluginDir: options.pluginDir });
        else if (ca.describe().signingCertificate.fingerprint256 !== (await pluginFingerprint(options.pluginDir))) {
          // istiod reloads changed cacerts the same way: the new files replace the signing
          // material (checked first, every problem named), and certificates under a replaced
          // root stop being trusted.
          (options.logger ?? silentLogger).warn('the plug-in certificates differ from the CA in the state directory; signing with the plug-in certificates from now on', { pluginDir: options.pluginDir, dir });
          ca = await CertificateAuthority.init({ ...caOptions, pluginDir: options.pluginDir, force: true });
        }
      } else {
        ca = await CertificateAuthority.open(caOptions);
      }
      const meshCa = new MeshCa(ca as CertificateAuthority, options, temporaryDir);
      await meshCa.rememberIssued();
      return meshCa;
    } catch (err) {
      if (temporaryDir) await rm(temporaryDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Joins the push server: re-reads the directory periodically and completes root rotations on ACKs. */
  attach(push: PushServer): void {
    this.push = push;
    push.on('ack', (status) => {
      const rotation = this.rotation;
      if (!rotation) return;
      if (this.builtWith.get(status.node.id)?.trustedCaPem?.includes(rotation.newRoot)) rotation.acked.add(status.node.id);
      this.maybeCompleteRotation();
    });
    push.on('disconnect', (status) => {
      this.builtWith.delete(status.node.id);
      this.maybeCompleteRotation();
    });
    this.schedule();
  }

  /** Calls `listener` when the secrets every proxy holds changed (the daemon pushes then). */
  onSecretsChanged(listener: (reason: string) => void): void {
    this.listeners.add(listener);
  }

  /** The `ROOTCA` and `default` secrets every proxy's config carries now. */
  identitySecrets(): readonly Secret[] {
    return this.secrets.list;
  }

  /**
   * `built` with the identity secrets added to its own part. The same own part gets the same
   * object back while the secrets stay the same, so the push server still sees an unchanged
   * proxy as unchanged without looking inside.
   */
  withSecrets(node: ProxyNode, built: ProxyConfig | ComposedConfig): ProxyConfig | ComposedConfig {
    this.builtWith.set(node.id, this.secrets.rootCa);
    const own = 'own' in built && 'shared' in built ? built.own : (built as ProxyConfig);
    let joined = this.withSecretsCache.get(own);
    if (!joined) {
      joined = Object.freeze({ ...own, secrets: Object.freeze([...(own.secrets ?? []), ...this.secrets.list]) as Secret[] });
      this.withSecretsCache.set(own, joined);
    }
    return 'own' in built && 'shared' in built ? { own: joined, shared: built.shared } : joined;
  }

  /** Signs a workload certificate for a proxy whose credential the push server checked. */
  async issue(node: ProxyNode, csrPem: string): Promise<{ certificateChainPem: string }> {
    const identity = { namespace: node.namespace, serviceAccount: node.serviceAccount ?? 'default' };
    try {
      const issued = await this.ca.sign({ csrPem, identity, holder: node.id });
      // The chain ends with the root it was signed under (cert-chain.pem runs up to the root).
      const root = splitPemCertificates(issued.certificateChainPem).at(-1);
      this.issuedTo.set(node.id, { identity: issued.identity, serial: issued.serial, notBefore: issued.notBefore, notAfter: issued.notAfter, root: root ? summarizeCertificate(root).fingerprint256 : '' });
      this.logger.info('workload certificate issued', { node: node.id, identity: issued.identity, serial: issued.serial, notAfter: new Date(issued.notAfter).toISOString() });
      return { certificateChainPem: issued.certificateChainPem };
    } catch (err) {
      this.logger.warn('workload certificate refused', { node: node.id, error: (err as Error).message });
      throw err;
    }
  }

  /** After a restart: the certificates the proxies hold are in the issued log, by holder (the node id). */
  private async rememberIssued(): Promise<void> {
    const now = this.clock.now();
    for (const record of await this.ca.issued()) {
      if (!record.holder || record.notAfter < now) continue;
      const known = this.issuedTo.get(record.holder);
      if (!known || known.notBefore <= record.notBefore) this.issuedTo.set(record.holder, { identity: record.identity, serial: record.serial, notBefore: record.notBefore, notAfter: record.notAfter, root: record.root });
    }
  }

  /** The certificate last issued to a proxy node, if any (for `sinew status`). */
  certificateOf(nodeId: string): IssuedToProxy | undefined {
    return this.issuedTo.get(nodeId);
  }

  /** A root rotation under way, and which proxies have ACKed the new bundle. */
  rotationStatus(): { newRoot: string; acked: string[] } | undefined {
    return this.rotation ? { newRoot: this.rotation.newRoot, acked: [...this.rotation.acked].sort() } : undefined;
  }

  /** Re-reads the directory, expires revocations, begins or completes a root rotation; what the timer runs (tests call it). */
  async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      await this.ca.refresh();
      const description = this.ca.describe();
      if (!description.rotation && this.ca.source === 'generated') {
        const root = description.roots[0];
        if (root && rootRotationDue(root, this.clock.now(), this.options.rootGracePercent)) {
          this.logger.warn('the mesh root nears its expiry; beginning a root rotation', { notAfter: new Date(root.notAfter).toISOString() });
          await this.ca.beginRootRotation();
        }
      }
      this.secretsMayHaveChanged('revocations expired');
      this.noticeRotation(this.ca.describe());
      this.maybeCompleteRotation();
    } catch (err) {
      this.logger.error('the CA could not be refreshed; proxies keep the trust bundle they hold', { error: (err as Error).message });
    } finally {
      this.ticking = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.unsubscribe();
    if (this.temporaryDir) await rm(this.temporaryDir, { recursive: true, force: true });
  }

  // === inside ===

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.clock
      .setTimeout(() => {
        void this.tick().finally(() => this.schedule());
      }, this.options.refreshIntervalMs ?? DEFAULT_REFRESH_MS)
      .unref();
  }

  private computeSecrets(): { json: string; rootCa: Secret; list: readonly Secret[] } {
    const rootCa = deepFreeze(this.ca.rootCaSecret());
    const workload: Secret = Object.freeze({ name: WORKLOAD_CERTIFICATE_SECRET, provider: 'mesh-ca' as const });
    return { json: JSON.stringify(rootCa), rootCa, list: Object.freeze([rootCa, workload]) };
  }

  private secretsMayHaveChanged(reason: string): void {
    const next = this.computeSecrets();
    if (next.json === this.secrets.json) return;
    this.secrets = next;
    this.withSecretsCache = new WeakMap();
    this.noticeRotation(this.ca.describe());
    this.logger.info('trust bundle or revocations changed; pushing them to every proxy', { reason, roots: this.ca.trustBundle().roots.length, revocations: this.ca.revocationList().version });
    for (const listener of this.listeners) listener(`ca: ${reason}`);
  }

  private noticeRotation(description: CaDescription): void {
    if (!description.rotation) {
      this.rotation = undefined;
      return;
    }
    const newRoot = this.ca.trustBundle().roots.find((r) => r.fingerprint256 === description.rotation!.newRoot.fingerprint256)?.pem;
    if (!newRoot || this.rotation?.newRoot === newRoot) return;
    this.rotation = { newRoot, acked: new Set() };
    this.logger.info('root rotation under way: pushing both roots; it completes once every proxy has ACKed them', { newRoot: description.rotation.newRoot.fingerprint256 });
  }

  private maybeCompleteRotation(): void {
    const rotation = this.rotation;
    if (!rotation || !this.push || this.completing || this.closed) return;
    const waiting = this.push.status().filter((p) => !rotation.acked.has(p.node.id));
    if (waiting.length) return;
    this.completing = true;
    this.ca
      .completeRootRotation()
      .then(
        ({ oldRootTrustedUntil }) => {
          this.logger.info('root rotation complete: every connected proxy holds the new root', { proxies: rotation.acked.size, oldRootTrustedUntil: new Date(oldRootTrustedUntil).toISOString() });
          this.rotation = undefined;
        },
        (err: Error) => this.logger.error('root rotation could not be completed; will try again', { error: err.message }),
      )
      .finally(() => {
        this.completing = false;
      });
  }
}

async function loadIfThere(options: Parameters<typeof CertificateAuthority.load>[0]): Promise<CertificateAuthority | undefined> {
  try {
    return await CertificateAuthority.load(options);
  } catch (err) {
    if (err instanceof CaError && err.code === 'SNW_ERR_CA_NOT_INITIALIZED') return undefined;
    throw err;
  }
}

/** The fingerprint of a plug-in directory's ca-cert.pem; undefined when it cannot be read (init then names the problem). */
async function pluginFingerprint(pluginDir: string): Promise<string | undefined> {
  try {
    return summarizeCertificate(await readFile(join(pluginDir, CA_CERT_FILE), 'utf8')).fingerprint256;
  } catch {
    return undefined;
  }
}
