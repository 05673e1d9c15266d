/**
 * Readiness of the mesh's parts (a sidecar, the gateway, an app) and what happens when one is
 * late. Each part is watched for as long as the mesh runs (`PartWatch`):
 *
 *   - its check (a proxy's admin `/ready`, an app's readinessProbe) decides ready / not ready,
 *     with Kubernetes' success and failure thresholds;
 *   - a part that is not ready `readyTimeoutMs` after it started is reported — what it is,
 *     why it is not ready, and its last log lines — and, if it runs but never got ready, it is
 *     restarted (Kubernetes' startupProbe); its supervisor's backoff keeps growing across such
 *     restarts (CrashLoopBackOff), and each new launch gets twice the time of the one before,
 *     so a part that is only slow (a loaded machine) still gets to start. A crash loop is
 *     reported the same way (its supervisor restarts it). Reports repeat, less and less often,
 *     until it is ready;
 *   - the rest of the mesh is untouched: one late part never stops the others.
 *
 * A part that was ready and then fails its check is only marked not ready (readiness, not
 * liveness: Kubernetes does not restart it either); one that crashes starts again.
 */
import { connect } from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { describeExit, type ManagedProcess } from './supervisor.js';

/** The result of one readiness check. */
export interface Check {
  ok: boolean;
  /** What was seen, for people: `GET http://127.0.0.1:1234/health answered 503`. */
  detail: string;
}

/** An HTTP GET counts as ready with a 2xx or 3xx answer (Kubernetes' httpGet probe). */
export async function httpCheck(url: string, timeoutMs = 1000): Promise<Check> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await res.arrayBuffer();
    const ok = res.status >= 200 && res.status < 400;
    return { ok, detail: `GET ${url} answered ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: NodeJS.ErrnoException };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : e.cause?.code === 'ECONNREFUSED' ? 'connection refused' : (e.cause?.message ?? e.message);
    return { ok: false, detail: `GET ${url}: ${why}` };
  }
}

/** A TCP connect counts as ready (Kubernetes' tcpSocket probe). */
export function tcpCheck(host: string, port: number, timeoutMs = 1000): Promise<Check> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean, detail: string) => {
      socket.destroy();
      resolve({ ok, detail: `TCP ${host}:${port} ${detail}` });
    };
    socket.setTimeout(timeoutMs, () => done(false, `no connection within ${timeoutMs} ms`));
    socket.once('connect', () => done(true, 'accepted a connection'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(false, err.code === 'ECONNREFUSED' ? 'refused the connection' : err.message));
  });
}

/** Polls `check` until it holds, the deadline passes (throws `failure`) or `signal` aborts. */
export async function waitFor(check: () => Promise<boolean>, options: { timeoutMs: number; signal?: AbortSignal; failure: () => string }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(options.failure());
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface PartWatchOptions {
  /** Who, for people: `echo-v1-0's sidecar`, `the ingress gateway`. */
  name: string;
  process: ManagedProcess;
  check: () => Promise<Check>;
  /** More lines on why it is not ready (the control plane's view of a proxy). */
  explain?: () => Promise<string[]>;
  /** How long a (re)started part may take to become ready before it is reported (and restarted). */
  readyTimeoutMs: number;
  /** Checks wait this long after each start (readinessProbe.initialDelaySeconds). */
  initialDelayMs?: number;
  /** Check period once ready (ms); before that it checks every `fastPeriodMs`. */
  periodMs?: number;
  fastPeriodMs?: number;
  successThreshold?: number;
  failureThreshold?: number;
  /** Called on every change of readiness or of the reason it is not ready. */
  onChange: (ready: boolean, reason: string | undefined) => void;
  /** Where reports go (one call per report, one string per line). */
  report: (lines: string[]) => void;
  clock?: Clock;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;

export class PartWatch {
  ready = false;
  reason: string | undefined = 'starting';
  /** Times it was reported late in the current not-ready spell. */
  reports = 0;
  private readonly clock: Clock;
  private timer?: TimerHandle;
  private stopped = false;
  private checking = false;
  private successes = 0;
  private failures = 0;
  /** When the current launch began running (monotonic ms). */
  private launchedAt: number;
  private readyThisLaunch = false;
  /** Restarts this watch forced in the current spell: each gives the next launch twice the time. */
  private forcedRestarts = 0;
  /** When the current not-ready spell began. */
  private notReadySince: number;
  /** When a part that is not running (a crash loop) or fell from ready is reported next. */
  private nextReportAt: number;
  private readonly onState = (state: string) => {
    if (state === 'running') {
      this.launchedAt = this.clock.monotonic();
      this.readyThisLaunch = false;
      this.successes = 0;
      this.failures = 0;
    } else if (state === 'backoff') this.setNotReady(`exited (${describeExit(this.options.process.lastExit)})`);
  };

  constructor(private readonly options: PartWatchOptions) {
    this.clock = options.clock ?? systemClock;
    const now = this.clock.monotonic();
    this.launchedAt = now;
    this.notReadySince = now;
    this.nextReportAt = now + this.startWindowMs(0);
    options.process.on('state', this.onState);
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.options.process.off('state', this.onState);
    if (this.timer) this.clock.clearTimeout(this.timer);
  }

  /** How long a launch may take to get ready: the timeout, doubled for each restart this watch forced. */
  private startWindowMs(forcedRestarts: number): number {
    return (this.options.readyTimeoutMs + (this.options.initialDelayMs ?? 0)) * 2 ** forcedRestarts;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  /** One round: check, update readiness, report when late; then the next round is scheduled. */
  private async tick(): Promise<void> {
    if (this.stopped || this.checking) return;
    this.checking = true;
    try {
      await this.round();
    } finally {
      this.checking = false;
    }
    const period = this.ready ? (this.options.periodMs ?? 1000) : (this.options.fastPeriodMs ?? 200);
    this.schedule(period);
  }

  private async round(): Promise<void> {
    const { process: proc } = this.options;
    const now = this.clock.monotonic();
    if (proc.state === 'running' && now - this.launchedAt >= (this.options.initialDelayMs ?? 0)) {
      const result = await this.options.check().catch((err: Error): Check => ({ ok: false, detail: err.message }));
      if (this.stopped || proc.state !== 'running') return;
      if (result.ok) {
        this.successes++;
        this.failures = 0;
      } else {
        this.failures++;
        this.successes = 0;
      }
      if (!this.ready && this.successes >= (this.options.successThreshold ?? 1)) this.setReady();
      else if (this.ready && this.failures >= (this.options.failureThreshold ?? 3)) this.setNotReady(result.detail);
      else if (!this.ready && !result.ok) this.setReason(result.detail);
    }
    if (!this.ready) await this.checkLate();
  }

  /**
   * A launch that runs but has not got ready within its window is reported and restarted (a
   * slow start gets twice the time on the next launch, so a loaded machine is not kept from
   * ever starting it). A part that is not running — a crash loop, which its supervisor
   * restarts — or that fell from ready is reported at growing intervals.
   */
  private async checkLate(): Promise<void> {
    const proc = this.options.process;
    const now = this.clock.monotonic();
    if (proc.state === 'running' && !this.readyThisLaunch) {
      if (now - this.launchedAt >= this.startWindowMs(this.forcedRestarts)) await this.reportLate(true);
      return;
    }
    if (now >= this.nextReportAt) {
      await this.reportLate(false);
      this.nextReportAt = this.clock.monotonic() + this.options.readyTimeoutMs * 2 ** this.reports;
    }
  }

  private setReady(): void {
    const spell = this.clock.monotonic() - this.notReadySince;
    const wasReported = this.reports > 0;
    this.ready = true;
    this.readyThisLaunch = true;
    this.reason = undefined;
    this.reports = 0;
    this.forcedRestarts = 0;
    this.options.onChange(true, undefined);
    if (wasReported) this.options.report([`✔ ${this.options.name} is ready (after ${seconds(spell)} not ready, ${this.options.process.restarts} restart${this.options.process.restarts === 1 ? '' : 's'})`]);
  }

  private setNotReady(reason: string): void {
    if (this.ready) {
      this.ready = false;
      const now = this.clock.monotonic();
      this.notReadySince = now;
      this.nextReportAt = now + this.startWindowMs(0);
      this.reports = 0;
      this.successes = 0;
    }
    this.setReason(reason);
  }

  private setReason(reason: string): void {
    if (this.reason === reason && !this.ready) return;
    this.reason = reason;
    this.options.onChange(false, reason);
  }

  private async reportLate(restart: boolean): Promise<void> {
    const { process: proc, name } = this.options;
    const why = this.reason ?? 'starting';
    const explain = this.options.explain ? await this.options.explain().catch((err: Error) => [`(could not ask why: ${err.message})`]) : [];
    if (this.stopped || this.ready) return;
    const now = this.clock.monotonic();
    const spell = now - this.notReadySince;
    const backoff = proc.state === 'backoff' ? Math.max(0, (proc.restartDueAt ?? now) - now) : proc.nextBackoffMs;
    this.reports++;
    const action = restart
      ? `restarting it in ${seconds(backoff)}, with ${seconds(this.startWindowMs(this.forcedRestarts + 1))} to get ready`
      : proc.state === 'backoff'
        ? `it starts again in ${seconds(backoff)}`
        : 'still checking';
    const lines = [`✘ ${name} is ${this.reports > 1 ? 'still ' : ''}not ready after ${seconds(spell)}: ${why}; ${action} (the rest of the mesh keeps serving)`, ...explain.map((l) => `    ${l}`)];
    const recent = proc.recentLines.slice(-10);
    if (recent.length) lines.push(`    its last ${recent.length === 1 ? 'line' : `${recent.length} lines`}:`, ...recent.map((l) => `      ${l}`));
    else lines.push('    it printed nothing');
    this.options.report(lines);
    if (restart) {
      this.forcedRestarts++;
      proc.restart();
      // Its restart's backoff is no crash loop: the next word on it comes when the new launch's time is up.
      this.nextReportAt = now + backoff + this.startWindowMs(this.forcedRestarts);
    }
  }
}
