/**
 * Envoy's RetryStateImpl for one request: whether a response or a failure is retried, the
 * retry budget (connectionPool.maxRetries, reserved per retry on the cluster), the hosts
 * already tried, and the jittered exponential backoff. Retries need a body that can be sent
 * again, and a fault-injected request is never retried (DESIGN.md behaviour 6).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Random } from '../../../core/random.js';
import type { ProxyStats } from '../../events.js';
import type { UpstreamCluster } from '../../upstream/types.js';
import type { UpstreamFailure } from '../local-reply.js';
import type { CompiledRetry } from '../route-table.js';

/** gRPC status codes Envoy's retry_on names (envoy/config/route/v3 RetryPolicy, x-envoy-retry-grpc-on). */
const GRPC_RETRY_ON: Readonly<Record<string, string>> = { '1': 'cancelled', '4': 'deadline-exceeded', '8': 'resource-exhausted', '13': 'internal', '14': 'unavailable' };

export class RetryState {
  /** Retries made so far. */
  done = 0;
  /** Endpoint keys tried (avoidPreviousHosts). */
  tried: Set<string> | undefined;

  constructor(
    private readonly retry: CompiledRetry | undefined,
    private readonly stats: ProxyStats,
  ) {}

  /** Records the endpoint an attempt goes to, when the policy avoids hosts already tried. */
  onAttempt(key: string): void {
    if (this.retry?.policy.avoidPreviousHosts) (this.tried ??= new Set()).add(key);
  }

  /** Attempts left, and the request can be retried at all. */
  private allowed(replayable: boolean, faultInjected: boolean): boolean {
    const retry = this.retry;
    return retry !== undefined && replayable && !faultInjected && this.done < retry.policy.attempts;
  }

  /** A retry is allowed and the cluster's budget has room: reserves one (released by the attempt). */
  reserve(cluster: UpstreamCluster, replayable: boolean, faultInjected: boolean): boolean {
    if (!this.allowed(replayable, faultInjected)) return false;
    if (!cluster.tryReserveRetry()) {
      this.stats.inc('upstream_rq_retry_overflow');
      return false;
    }
    return true;
  }

  /** The response status (or gRPC status) is one the policy retries. */
  retriableStatus(status: number, headers: IncomingHttpHeaders): boolean {
    const retry = this.retry;
    if (!retry) return false;
    const on = retry.on;
    if (on.has('5xx') && status >= 500) return true;
    if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
    if (on.has('retriable-4xx') && status === 409) return true;
    if (on.has('retriable-status-codes') && retry.statusCodes.has(status)) return true;
    const grpc = headers['grpc-status'];
    if (grpc !== undefined) {
      const cond = GRPC_RETRY_ON[String(grpc)];
      if (cond && on.has(cond)) return true;
    }
    return false;
  }

  /** Envoy's RetryStateImpl::wouldRetryFromReset. */
  retriableFailure(failure: UpstreamFailure): boolean {
    const on = this.retry?.on;
    if (!on) return false;
    if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return true;
    if (failure === 'connect-failure') return on.has('connect-failure') || on.has('reset-before-request');
    if (failure === 'refused') return on.has('refused-stream') || on.has('connect-failure');
    return false;
  }

  /**
   * Counts the retry and returns its delay: Envoy's jittered exponential backoff, uniform in
   * [0, (2^n - 1) * base], capped at max (10 x base unless set).
   */
  nextBackoffMs(random: Random): number {
    const policy = this.retry!.policy;
    this.done++;
    this.stats.inc('upstream_rq_retry');
    const base = policy.backoffBaseMs;
    const max = policy.backoffMaxMs ?? base * 10;
    const ceiling = Math.min(max, (2 ** this.done - 1) * base);
    return Math.floor(random.next() * ceiling);
  }
}
