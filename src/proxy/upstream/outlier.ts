/**
 * Outlier detection (Envoy's consecutive-errors detectors, Istio `outlierDetection`).
 *
 * - consecutive5xxErrors: 5xx responses in a row. Unless splitExternalLocalOriginErrors is set,
 *   local-origin failures count too (Envoy maps a connect failure/reset to 503 and a timeout
 *   to 504).
 * - consecutiveGatewayErrors: 502/503/504 in a row (and local-origin failures when not split).
 * - consecutiveLocalOriginFailures: only with splitExternalLocalOriginErrors; connect failures,
 *   resets and timeouts in a row.
 *
 * Consecutive-error ejections happen as soon as the threshold is reached. Every `interval` a
 * sweep un-ejects hosts whose ejection time passed (baseEjectionTime x ejection multiplier,
 * capped at Envoy's max_ejection_time of 300 s) and lowers the multiplier of hosts that stayed
 * healthy for the whole interval, so a host ejected again soon after returning stays out
 * longer (2x, 3x, ...). A host is only ejected when the share ejected afterwards is at most
 * maxEjectionPercent (Envoy: `100 * (ejected + 1) / hosts <= max_ejection_percent`).
 */
import type { OutlierDetection } from '../../api/proxy-config.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { UpstreamOutcome } from './types.js';

/** Envoy's default max_ejection_time. */
export const MAX_EJECTION_TIME_MS = 300_000;

export class OutlierState {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocal = 0;
  ejected = false;
  ejectedAt = 0;
  ejectedUntil: number | undefined;
  /** Envoy's eject-time backoff: the multiplier of baseEjectionTime. */
  multiplier = 0;
  /** Ejections of this host so far. */
  timesEjected = 0;

  resetCounters(): void {
    this.consecutive5xx = 0;
    this.consecutiveGateway = 0;
    this.consecutiveLocal = 0;
  }
}

export interface OutlierHost {
  readonly key: string;
  readonly od: OutlierState;
}

export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure';

export interface OutlierListener {
  /** The set of ejected hosts changed (the cluster recomputes its balancing set). */
  changed(): void;
  ejected(host: OutlierHost, reason: EjectionReason): void;
  unejected(host: OutlierHost): void;
  /** An ejection was skipped because of maxEjectionPercent. */
  overflow(host: OutlierHost, reason: EjectionReason): void;
}

const LOCAL_ORIGIN = new Set(['connect-failure', 'timeout', 'reset', 'refused']);

export class OutlierDetector {
  private timer: TimerHandle | undefined;
  private hosts: readonly OutlierHost[] = [];
  /** Ejections enforced since the detector started (Envoy ejections_enforced_total). */
  ejections = 0;
  /** Ejections skipped because of maxEjectionPercent (Envoy ejections_overflow). */
  overflows = 0;

  constructor(
    private config: OutlierDetection,
    private readonly clock: Clock,
    private readonly listener: OutlierListener,
  ) {}

  /** The cluster's current hosts (the denominator of maxEjectionPercent). */
  setHosts(hosts: readonly OutlierHost[]): void {
    this.hosts = hosts;
  }

  reconfigure(config: OutlierDetection): void {
    const restart = config.intervalMs !== this.config.intervalMs;
    this.config = config;
    if (restart && this.timer) {
      this.stop();
      this.start();
    }
  }

  start(): void {
    if (this.timer || !(this.config.intervalMs > 0)) return;
    this.timer = this.clock.setTimeout(() => this.tick(), this.config.intervalMs).unref();
  }

  stop(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Feeds one request outcome. */
  record(host: OutlierHost, outcome: UpstreamOutcome): void {
    const c = this.config;
    const od = host.od;
    const failure = outcome.failure;
    if (failure === 'cancelled') return; // the downstream gave up: says nothing about the host
    const local = failure !== undefined && LOCAL_ORIGIN.has(failure) && outcome.status === undefined;
    let status = outcome.status;
    if (c.splitExternalLocalOriginErrors) {
      if (local) {
        od.consecutiveLocal++;
        if (c.consecutiveLocalOriginFailures && od.consecutiveLocal >= c.consecutiveLocalOriginFailures) {
          this.eject(host, 'consecutive_local_origin_failure');
        }
        return;
      }
      od.consecutiveLocal = 0; // a response arrived: the connection worked
    } else if (local) {
      status = failure === 'timeout' ? 504 : 503;
    }
    if (status === undefined) return;
    if (status >= 500 && status <= 599) {
      const gateway = status === 502 || status === 503 || status === 504;
      if (gateway) od.consecutiveGateway++;
      else od.consecutiveGateway = 0;
      od.consecutive5xx++;
      if (gateway && c.consecutiveGatewayErrors && od.consecutiveGateway >= c.consecutiveGatewayErrors) {
        this.eject(host, 'consecutive_gateway_failure');
      } else if (c.consecutive5xxErrors && od.consecutive5xx >= c.consecutive5xxErrors) {
        this.eject(host, 'consecutive_5xx');
      }
    } else {
      od.consecutive5xx = 0;
      od.consecutiveGateway = 0;
    }
  }

  private eject(host: OutlierHost, reason: EjectionReason): void {
    const od = host.od;
    if (od.ejected) return;
    let ejectedNow = 0;
    for (const h of this.hosts) if (h.od.ejected) ejectedNow++;
    const total = Math.max(1, this.hosts.length);
    if ((100 * (ejectedNow + 1)) / total > this.config.maxEjectionPercent) {
      this.overflows++;
      od.resetCounters();
      this.listener.overflow(host, reason);
      return;
    }
    const base = this.config.baseEjectionTimeMs;
    const max = Math.max(base, MAX_EJECTION_TIME_MS);
    if (base * od.multiplier < max) od.multiplier++;
    const now = this.clock.now();
    od.ejected = true;
    od.ejectedAt = now;
    od.ejectedUntil = now + Math.min(base * od.multiplier, max);
    od.timesEjected++;
    od.resetCounters();
    this.ejections++;
    this.listener.ejected(host, reason);
    this.listener.changed();
  }

  /** The interval sweep; public so tests and the cluster can run it on demand. */
  tick(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.clock.now();
    let changed = false;
    for (const host of this.hosts) {
      const od = host.od;
      if (!od.ejected) {
        if (od.multiplier > 0) od.multiplier--;
        continue;
      }
      if (od.ejectedUntil !== undefined && now >= od.ejectedUntil) {
        od.ejected = false;
        od.ejectedUntil = undefined;
        od.resetCounters();
        changed = true;
        this.listener.unejected(host);
      }
    }
    if (changed) this.listener.changed();
    this.start();
  }

  ejectedCount(): number {
    let n = 0;
    for (const h of this.hosts) if (h.od.ejected) n++;
    return n;
  }
}
