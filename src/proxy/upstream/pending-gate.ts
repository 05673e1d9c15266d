/**
 * The wait for a connection (Envoy's "pending request"). A request that arrives when the
 * cluster already runs `maxConnections` HTTP/1.1 requests gets a lease whose dispatcher is
 * this gate: it holds the request until a running one finishes and the cluster promotes the
 * lease, then passes it to the endpoint's pool. At most `http1MaxPendingRequests` leases wait;
 * the next one is refused with UO at once (Envoy upstream_rq_pending_overflow).
 *
 * It meets the same dispatch contract as the pools it fronts (STYLE.md 1: one contract at
 * every tier), without loading undici: plaintext HTTP/1.1 proxies never need it.
 */
import type { Dispatcher } from 'undici';
import { SinewError } from '../../core/errors.js';
import type { UpstreamDispatcher, UpstreamDispatchOptions } from './types.js';

type Waiting = [UpstreamDispatchOptions, Dispatcher.DispatchHandler];

export class PendingGate implements UpstreamDispatcher {
  private waiting: Waiting[] = [];
  private target: UpstreamDispatcher | undefined;
  private failure: Error | undefined;

  dispatch(options: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.target) return this.target.dispatch(options, handler);
    if (this.failure) {
      failHandler(handler, this.failure);
      return true;
    }
    this.waiting.push([options, handler]);
    return true;
  }

  /** The lease got a connection slot: forward what waited, and everything after. */
  open(target: UpstreamDispatcher): void {
    if (this.target || this.failure) return;
    this.target = target;
    for (const [options, handler] of this.waiting.splice(0)) target.dispatch(options, handler);
  }

  /** The lease was released while still waiting: fail what waited. */
  fail(error: Error = new SinewError('SNW_ERR_UPSTREAM_PENDING_CANCELLED', 'the request was released while waiting for an upstream connection')): void {
    if (this.target || this.failure) return;
    this.failure = error;
    for (const [, handler] of this.waiting.splice(0)) failHandler(handler, error);
  }

  get waitingRequests(): number {
    return this.waiting.length;
  }
}

function failHandler(handler: Dispatcher.DispatchHandler, error: Error): void {
  // undici 7 handlers are either the new controller style or the legacy callback style.
  if (typeof handler.onResponseError === 'function') {
    const controller = {
      abort() {},
      pause() {},
      resume() {},
      get aborted() {
        return true;
      },
      get paused() {
        return false;
      },
      get reason() {
        return error;
      },
    };
    handler.onResponseError(controller as unknown as Dispatcher.DispatchController, error);
  } else if (typeof handler.onError === 'function') {
    handler.onError(error);
  }
}
