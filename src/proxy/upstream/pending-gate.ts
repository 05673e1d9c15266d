/**
 * The wait for a connection (Envoy's "pending request"). A request that arrives when the
 * cluster already runs `maxConnections` HTTP/1.1 requests gets a lease whose dispatcher is
 * this gate: it holds the request until a running one finishes and the cluster promotes the
 * lease, then passes it to the endpoint's pool. At most `http1MaxPendingRequests` leases wait;
 * the next one is refused with UO at once (Envoy upstream_rq_pending_overflow).
 *
 * It is an undici Dispatcher, so `request()`, `stream()` and `dispatch()` work on it the same
 * as on a Pool (STYLE.md 1: one contract at every tier).
 */
import { Dispatcher } from 'undici';
import { SinewError } from '../../core/errors.js';

type Waiting = [Dispatcher.DispatchOptions, Dispatcher.DispatchHandler];

export class PendingGate extends Dispatcher {
  private waiting: Waiting[] = [];
  private target: Dispatcher | undefined;
  private failure: Error | undefined;

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.target) return this.target.dispatch(options, handler);
    if (this.failure) {
      failHandler(handler, this.failure);
      return true;
    }
    this.waiting.push([options, handler]);
    return true;
  }

  /** The lease got a connection slot: forward what waited, and everything after. */
  open(target: Dispatcher): void {
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

  // The pool behind the gate belongs to the cluster; closing a lease's gate closes nothing.
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    if (callback) {
      queueMicrotask(callback);
      return;
    }
    return Promise.resolve();
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const err = typeof errOrCallback === 'function' ? undefined : errOrCallback;
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    this.fail(err ?? undefined);
    if (cb) {
      queueMicrotask(cb);
      return;
    }
    return Promise.resolve();
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
