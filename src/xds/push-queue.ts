/**
 * The push server's queue: change notifications in, debounced batches out. It knows nothing
 * of connections or encodings, so any transport of the push (today's JSON lines, a future
 * Envoy ADS stream over gRPC) shares it.
 *
 * Like Istio's pilot (`PILOT_DEBOUNCE_AFTER` 100 ms, `PILOT_DEBOUNCE_MAX` 10 s), requests are
 * debounced: a batch starts once no request has come for `debounceMs`, or `debounceMaxMs`
 * after the first one, and every request in between merges into it (their reasons, and the
 * union of the proxies they affect). One batch runs at a time; requests arriving during a run
 * are debounced as usual and start the next batch once the run reports it is done.
 */
import type { ProxyNode } from '../api/proxy-config.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';

/** Chooses the proxies a change affects. */
export type AffectedPredicate = (node: ProxyNode) => boolean;

/** What a debounced batch is to do: the merged requests. */
export interface PushBatch {
  /** The reasons given, each once, in the order first given. */
  readonly reasons: string[];
  /** Whether the batch concerns this proxy (every proxy, when any request named none). */
  affects(node: ProxyNode): boolean;
}

export interface PushQueueOptions {
  clock: Clock;
  logger: Logger;
  /** Quiet period before a batch (Istio PILOT_DEBOUNCE_AFTER, 100 ms). */
  debounceMs: number;
  /** Longest a batch may be held back by a stream of requests (Istio PILOT_DEBOUNCE_MAX, 10 s). */
  debounceMaxMs: number;
  /** Runs a batch; calls `done` when the whole batch has been handled (perhaps turns later). */
  run(batch: PushBatch, done: () => void): void;
}

interface Pending {
  firstAt: number;
  lastAt: number;
  reasons: Map<string, number>;
  /** undefined: every proxy. */
  predicates: AffectedPredicate[] | undefined;
}

/** Debounces and merges push requests into batches, one running at a time. */
export class PushQueue {
  /** `request` calls, before debouncing. */
  requests = 0;
  private pending: Pending | undefined;
  private timer: TimerHandle | undefined;
  private running = false;
  private closed = false;

  constructor(private readonly options: PushQueueOptions) {}

  /**
   * Asks for a push. `affected` limits it to the proxies it returns true for; without it,
   * every proxy is considered.
   */
  request(reason: string, affected?: AffectedPredicate): void {
    if (this.closed) return;
    this.requests++;
    const now = this.options.clock.monotonic();
    this.pending ??= { firstAt: now, lastAt: now, reasons: new Map(), predicates: [] };
    const pending = this.pending;
    pending.lastAt = now;
    pending.reasons.set(reason, (pending.reasons.get(reason) ?? 0) + 1);
    if (!affected) pending.predicates = undefined;
    else if (pending.predicates) pending.predicates.push(affected);
    if (!this.timer) this.arm(this.options.debounceMs);
  }

  /** Starts any pending batch now, skipping the rest of the debounce. */
  flush(): void {
    this.disarm();
    this.runPending();
  }

  /** Drops what is pending; later requests are ignored. */
  close(): void {
    this.closed = true;
    this.disarm();
    this.pending = undefined;
  }

  private arm(ms: number): void {
    this.timer = this.options.clock.setTimeout(() => this.onTimer(), ms).unref();
  }

  private disarm(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  // A single timer re-armed for the remaining quiet time, as pilot's debounce loop does,
  // instead of resetting a timer on every request.
  private onTimer(): void {
    this.timer = undefined;
    const pending = this.pending;
    if (!pending) return;
    const now = this.options.clock.monotonic();
    const quiet = now - pending.lastAt;
    const held = now - pending.firstAt;
    const { debounceMs, debounceMaxMs } = this.options;
    if (quiet >= debounceMs || held >= debounceMaxMs) {
      this.runPending();
      return;
    }
    this.arm(Math.min(debounceMs - quiet, debounceMaxMs - held));
  }

  private runPending(): void {
    if (this.running) return; // picked up when the current run ends
    const pending = this.pending;
    this.pending = undefined;
    if (!pending || this.closed) return;
    this.running = true;
    const batch: PushBatch = {
      reasons: [...pending.reasons.keys()],
      affects: pending.predicates ? (node) => this.anyAffects(pending.predicates!, node) : () => true,
    };
    let finished = false;
    this.options.run(batch, () => {
      if (finished) return;
      finished = true;
      this.running = false;
      // A debounce that fell due during the run found it busy; give it its turn now.
      if (this.pending && !this.timer) this.onTimer();
    });
  }

  private anyAffects(predicates: readonly AffectedPredicate[], node: ProxyNode): boolean {
    for (const predicate of predicates) {
      try {
        if (predicate(node)) return true;
      } catch (err) {
        // Pushing too much is safe, missing a proxy is not.
        this.options.logger.warn('affected-proxy predicate threw; pushing to be safe', { node: node.id, error: (err as Error).message });
        return true;
      }
    }
    return false;
  }
}
