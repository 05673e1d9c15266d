/**
 * One try of a request upstream (Envoy's UpstreamRequest): the dispatch handler of undici's
 * controller API, which sinew's HTTP/1.1 client and undici's pools both drive. It holds the
 * lease on the endpoint (released exactly once, with the outcome), the per-try timer and the
 * state the router's retry decisions read; the router owns everything across tries.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Clock, TimerHandle } from '../../../core/clock.js';
import type { ConnectionInfo } from '../../transport/connection-info.js';
import type { UpstreamLease, UpstreamOutcome } from '../../upstream/types.js';
import type { UpstreamFailure } from '../local-reply.js';

export type CancelReason = 'per-try-timeout' | 'global-timeout' | 'downstream' | 'protocol';

/** What a try tells the router. */
export interface UpstreamRequestOwner {
  onHeaders(attempt: UpstreamRequest, status: number, headers: IncomingHttpHeaders): void;
  onUpgrade(attempt: UpstreamRequest, status: number, headers: IncomingHttpHeaders, socket: Duplex): void;
  onData(attempt: UpstreamRequest, chunk: Buffer): void;
  onEnd(attempt: UpstreamRequest, trailers: IncomingHttpHeaders): void;
  onError(attempt: UpstreamRequest, err: Error): void;
  /** A retry's reservation on the cluster's retry budget ends with the try. */
  releaseRetry(): void;
}

export class UpstreamRequest implements Dispatcher.DispatchHandler {
  controller?: Dispatcher.DispatchController;
  started = false;
  committed = false;
  discarding = false;
  status?: number;
  /**
   * What the connection this try runs on knows of its peer, when the pool tells (sinew's
   * HTTP/1.1 client does, in onRequestStart's context): Envoy's upstream SSL info, the source
   * of the source reporter's principals (%UPSTREAM_PEER_URI_SAN%, %UPSTREAM_LOCAL_URI_SAN%).
   */
  connection?: ConnectionInfo;
  cancelReason?: CancelReason;
  timer?: TimerHandle;
  /** When this try was handed to the pool (monotonic ms). */
  readonly startMono: number;
  private released = false;
  private ended = false;

  constructor(
    private readonly owner: UpstreamRequestOwner,
    readonly lease: UpstreamLease,
    private readonly isRetry: boolean,
    private readonly clock: Clock,
  ) {
    this.startMono = clock.monotonic();
  }

  /** Aborts the try now, or as soon as the pool starts it (a queued request has no controller yet). */
  cancel(reason: CancelReason): void {
    if (this.ended || this.cancelReason) return;
    this.cancelReason = reason;
    this.clearTimer();
    this.controller?.abort(new Error(`request cancelled: ${reason}`));
  }

  clearTimer(): void {
    if (this.timer) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  resume = (): void => {
    this.controller?.resume();
  };

  release(outcome: UpstreamOutcome): void {
    this.ended = true;
    this.clearTimer();
    if (this.released) return;
    this.released = true;
    this.lease.release(outcome);
    if (this.isRetry) this.owner.releaseRetry();
  }

  /** How the try failed, for the retry policy and the local reply. */
  failure(err: Error): UpstreamFailure {
    if (this.cancelReason === 'per-try-timeout' || this.cancelReason === 'global-timeout') return 'timeout';
    const text = `${(err as { code?: string }).code ?? ''} ${err.message}`;
    if (/REFUSED_STREAM/i.test(text)) return 'refused';
    // The pool calls onRequestStart once the request is on a connected socket (for TLS, once
    // the handshake is done); before it, the connection itself failed.
    if (!this.started) return 'connect-failure';
    return 'reset';
  }

  onRequestStart(controller: Dispatcher.DispatchController, context?: { connection?: ConnectionInfo }): void {
    this.controller = controller;
    this.started = true;
    this.connection = context?.connection;
    if (this.cancelReason) controller.abort(new Error(`request cancelled: ${this.cancelReason}`));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.controller = controller;
    this.status = statusCode;
    this.owner.onHeaders(this, statusCode, headers);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.controller = controller;
    this.status = statusCode;
    this.ended = true;
    this.owner.onUpgrade(this, statusCode, headers, socket);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.owner.onData(this, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.ended = true;
    // undici 7's HTTP/2 client hands its trailers over as an object, which the handler
    // adapter's parseHeaders (made for raw arrays) turns into {}; the raw value still holds them.
    const raw = controller?.rawTrailers;
    if (raw && !Array.isArray(raw) && typeof raw === 'object' && Object.keys(trailers).length === 0) {
      trailers = raw as IncomingHttpHeaders;
    }
    this.owner.onEnd(this, trailers);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.ended = true;
    this.owner.onError(this, err);
  }
}
