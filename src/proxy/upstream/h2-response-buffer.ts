/**
 * Backpressure for responses from undici's HTTP/2 client without losing their end.
 *
 * undici 7 (client-h2.js; undici 8 the same) completes a response on the HTTP/2 stream's
 * 'trailers' event and removes its 'data' listener there. Node emits 'trailers' as soon as the
 * trailing HEADERS frame is read, while DATA that came before it may still sit in the stream's
 * read buffer because the handler paused the stream (a slow client): those bytes are never
 * delivered, the response ends short — a gRPC stream of 1000 messages ended after 435 — and
 * the paused stream never closes, so its unread bytes hold the session's flow-control window
 * and every later stream on that connection stalls.
 *
 * So undici's stream is not paused for a slow client: while the router asks for a pause,
 * chunks wait here and the end (with its trailers) waits behind them. Only past
 * HIGH_WATERMARK_BYTES is undici really paused, bounding what waits here; if the end then
 * comes while it is paused, bytes may have been lost and the response fails (the client sees
 * a reset) rather than ending short.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

/** What may wait here for a paused client before undici itself is paused (Envoy's default per-connection buffer limit). */
export const HIGH_WATERMARK_BYTES = 1024 * 1024;

export class H2ResponseBuffer implements Dispatcher.DispatchHandler {
  private outer?: Dispatcher.DispatchController;
  private readonly waiting: Buffer[] = [];
  private waitingBytes = 0;
  /** The handler asked for a pause. */
  private paused = false;
  /** undici's stream is paused (past the high watermark). */
  private undiciPaused = false;
  private end?: { trailers: IncomingHttpHeaders; truncated: boolean };
  private finished = false;
  /** The controller the wrapped handler sees: pause and resume stay here, the rest is undici's. */
  private readonly controller: Dispatcher.DispatchController;

  constructor(private readonly inner: Dispatcher.DispatchHandler) {
    const self = this;
    this.controller = {
      get aborted() { return self.outer?.aborted ?? false; },
      get paused() { return self.paused; },
      get reason() { return self.outer?.reason ?? null; },
      get rawHeaders() { return (self.outer as { rawHeaders?: unknown } | undefined)?.rawHeaders; },
      get rawTrailers() { return (self.outer as { rawTrailers?: unknown } | undefined)?.rawTrailers; },
      abort: (reason: Error) => self.outer?.abort(reason),
      pause: () => { self.paused = true; },
      resume: () => self.resume(),
    } as Dispatcher.DispatchController;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.outer = controller;
    this.inner.onRequestStart?.(this.controller, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.outer = controller;
    this.inner.onRequestUpgrade?.(this.controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.outer = controller;
    this.inner.onResponseStart?.(this.controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.paused && this.waiting.length === 0) {
      this.inner.onResponseData?.(this.controller, chunk);
      return;
    }
    this.waiting.push(chunk);
    this.waitingBytes += chunk.length;
    if (this.waitingBytes > HIGH_WATERMARK_BYTES && !this.undiciPaused) {
      this.undiciPaused = true;
      controller.pause();
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.outer = controller;
    // undici ends on 'trailers' even when its stream is paused with bytes still unread.
    this.end = { trailers, truncated: this.undiciPaused };
    this.flush();
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.waiting.length = 0;
    this.waitingBytes = 0;
    if (this.finished) return;
    this.finished = true;
    this.inner.onResponseError?.(this.controller, err);
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.flush();
  }

  /** Delivers what waits while the handler is not paused; then the end, or resumes undici. */
  private flush(): void {
    while (!this.paused && this.waiting.length > 0 && !this.finished) {
      const chunk = this.waiting.shift()!;
      this.waitingBytes -= chunk.length;
      this.inner.onResponseData?.(this.controller, chunk);
    }
    if (this.paused || this.waiting.length > 0 || this.finished) return;
    const end = this.end;
    if (end === undefined) {
      if (this.undiciPaused) {
        this.undiciPaused = false;
        this.outer?.resume();
      }
      return;
    }
    this.finished = true;
    if (end.truncated) this.inner.onResponseError?.(this.controller, new Error('upstream HTTP/2 response ended while paused: bytes may be missing'));
    else this.inner.onResponseEnd?.(this.controller, end.trailers);
  }
}
