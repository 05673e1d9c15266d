/**
 * When a proxy renews its workload certificate, and the loop that does it. Istio's agent
 * renews once half of the certificate's lifetime is left (SECRET_GRACE_PERIOD_RATIO 0.5),
 * moved by a small random jitter (SECRET_GRACE_PERIOD_RATIO_JITTER 0.01) so that proxies
 * started together do not all call the CA at the same instant (istio/istio
 * security/pkg/nodeagent/cache/secretcache.go rotateTime). A failed renewal is retried with
 * backoff while the current certificate keeps serving; a new key is made for every renewal.
 *
 * Time and chance come from an injected Clock and Random, so tests are exact.
 */
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { silentLogger, type Logger } from '../logger.js';
import { systemRandom, type Random } from '../random.js';
import { certificateMatchesKey, parseCertificate, splitPemCertificates, summarizeCertificate, type CertificateSummary } from './certificate-info.js';
import { generateKeyAndCsr, type WorkloadKeyType } from './workload-key.js';

export interface RotationPolicy {
  /** Renew when this fraction of the lifetime is left (Istio's default 0.5: at half life). */
  graceRatio?: number;
  /** The grace ratio moves by up to this much either way, drawn at random (Istio's default 0.01). */
  jitterRatio?: number;
}

export const DEFAULT_GRACE_RATIO = 0.5;
export const DEFAULT_JITTER_RATIO = 0.01;

/**
 * The instant (ms since the epoch) at which a certificate valid from `notBefore` to `notAfter`
 * should be renewed: `notAfter - lifetime * (graceRatio ± jitterRatio)`, never before
 * notBefore nor after notAfter.
 */
export function renewalTime(validity: { notBefore: number; notAfter: number }, random: Random = systemRandom, policy: RotationPolicy = {}): number {
  const lifetime = Math.max(0, validity.notAfter - validity.notBefore);
  const jitter = (random.next() * 2 - 1) * (policy.jitterRatio ?? DEFAULT_JITTER_RATIO);
  const grace = Math.min(1, Math.max(0, (policy.graceRatio ?? DEFAULT_GRACE_RATIO) + jitter));
  return Math.round(validity.notAfter - lifetime * grace);
}

/** A workload certificate and the key it was issued for, as a proxy holds them. */
export interface WorkloadCredential {
  privateKeyPem: string;
  /** Leaf first, then the CA chain, as the proxy presents it. */
  certificateChainPem: string;
  summary: CertificateSummary;
  /** When this credential will be renewed (ms since the epoch). */
  renewAt: number;
}

export interface CertificateManagerOptions {
  /**
   * Sends a CSR to the mesh CA and returns the chain it signed (leaf first). The caller
   * authenticates the request (the proxy's credential); the CA decides the identity.
   */
  requestCertificate(csrPem: string): Promise<{ certificateChainPem: string }>;
  /** Called with every new credential; the proxy builds new TLS contexts from it, open connections keep theirs. */
  onCertificate?(credential: WorkloadCredential): void;
  keyType?: WorkloadKeyType;
  /** The identity the proxy expects, written into the CSR (the CA does not trust it). */
  identity?: string;
  policy?: RotationPolicy;
  /** First retry after a failed request; doubles up to `maxRetryMs` (defaults 1 s and 30 s). */
  initialRetryMs?: number;
  maxRetryMs?: number;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** Makes a key pair and CSR (default: workload-key.ts). */
  generateKeyAndCsr?(options: { keyType?: WorkloadKeyType; identity?: string }): Promise<{ privateKeyPem: string; csrPem: string }>;
}

/**
 * Keeps a proxy's workload certificate fresh: obtains one on `start()`, renews it at about
 * half life, retries with backoff on failure, and hands every new credential to
 * `onCertificate`.
 */
export class WorkloadCertificateManager {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private credential: WorkloadCredential | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private failures = 0;
  private firstWaiters: { resolve: (c: WorkloadCredential) => void; reject: (e: Error) => void }[] = [];
  private nextAttemptAt: number | undefined;

  constructor(private readonly options: CertificateManagerOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.logger = options.logger ?? silentLogger;
  }

  /** Obtains the first certificate (retrying until it succeeds or `stop()` is called). */
  start(): Promise<WorkloadCredential> {
    const first = new Promise<WorkloadCredential>((resolve, reject) => this.firstWaiters.push({ resolve, reject }));
    void this.attempt();
    return first;
  }

  /** The credential in force, if any. */
  current(): WorkloadCredential | undefined {
    return this.credential;
  }

  /** When the next request to the CA is due (a renewal or a retry), ms since the epoch. */
  nextAttempt(): number | undefined {
    return this.nextAttemptAt;
  }

  /** Renews now (for example after the CA's root changed), whatever the schedule says. */
  renewNow(): Promise<void> {
    this.cancelTimer();
    return this.attempt();
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer();
    const waiters = this.firstWaiters;
    this.firstWaiters = [];
    for (const w of waiters) w.reject(new Error('the certificate manager was stopped before it obtained a certificate'));
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    this.nextAttemptAt = undefined;
    let credential: WorkloadCredential;
    try {
      credential = await this.obtain();
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const base = Math.min(this.options.maxRetryMs ?? 30_000, (this.options.initialRetryMs ?? 1000) * 2 ** (this.failures - 1));
      // Full jitter in the upper half: retries from many proxies spread out, none waits less than half.
      const delay = Math.round(base * (0.5 + this.random.next() / 2));
      this.logger.warn('workload certificate request failed; retrying', { error: (err as Error).message, retryInMs: delay, failures: this.failures });
      this.schedule(delay);
      return;
    }
    if (this.stopped) return;
    this.failures = 0;
    this.credential = credential;
    this.schedule(credential.renewAt - this.clock.now());
    this.logger.info('workload certificate issued', { identity: credential.summary.identities.join(','), serial: credential.summary.serial, notAfter: new Date(credential.summary.notAfter).toISOString() });
    this.options.onCertificate?.(credential);
    const waiters = this.firstWaiters;
    this.firstWaiters = [];
    for (const w of waiters) w.resolve(credential);
  }

  private async obtain(): Promise<WorkloadCredential> {
    const generate = this.options.generateKeyAndCsr ?? generateKeyAndCsr;
    const { privateKeyPem, csrPem } = await generate({ keyType: this.options.keyType, identity: this.options.identity });
    const { certificateChainPem } = await this.options.requestCertificate(csrPem);
    const [leafPem] = splitPemCertificates(certificateChainPem);
    if (!leafPem) throw new Error('the CA answered without a certificate');
    const leaf = parseCertificate(leafPem);
    if (!certificateMatchesKey(leaf, privateKeyPem)) throw new Error('the CA answered with a certificate for another key');
    const summary = summarizeCertificate(leaf);
    return { privateKeyPem, certificateChainPem, summary, renewAt: renewalTime(summary, this.random, this.options.policy) };
  }

  private schedule(delayMs: number): void {
    this.cancelTimer();
    const delay = Math.max(0, delayMs);
    this.nextAttemptAt = this.clock.now() + delay;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.attempt();
    }, delay).unref();
  }

  private cancelTimer(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
