/**
 * One HTTP/1.1 connection to an endpoint: connects, then carries one request at a time (no
 * pipelining), writing it with as few socket writes as it can and reading the response with
 * the connection's own parser. It decides after every response whether it can be reused
 * (RFC 9112 §9.3) and hands itself back to its pool, or closes.
 *
 * Everything per request lives in the request object and this connection's reused state; the
 * socket and body listeners are bound once per connection, so a request costs no closure,
 * promise or timer (the idle timer is one per connection, refreshed).
 */
import type net from 'node:net';
import type { Readable } from 'node:stream';
import { connectionInfoOf } from '../../transport/connection-info.js';
import type { UpstreamTransport } from '../../transport/transport-socket.js';
import { SinewError } from '../../../core/errors.js';
import { ResponseParser, keepAliveIdleMs, type Fields, type ResponseSink } from './parser.js';
import { BODY_BUFFER, BODY_NONE, BODY_STREAM, DONE, RUNNING, type Http1Request } from './request.js';

/** The pool's settings, shared by its connections (frozen once in the pool). */
export interface ConnectionSettings {
  readonly host: string;
  readonly port: number;
  /** `host:port` (IPv6 in brackets): the Host default and the name in error messages. */
  readonly key: string;
  /** 0 = none. */
  readonly connectTimeoutMs: number;
  readonly tcpKeepalive: boolean;
  readonly tcpKeepaliveInitialDelayMs: number;
  readonly idleTimeoutMs: number;
  /** 0 = unlimited. */
  readonly maxRequests: number;
  /** 0 = unlimited. */
  readonly maxDurationMs: number;
  /** Monotonic milliseconds. */
  readonly now: () => number;
  /** The connect hook: plaintext TCP, or the cluster's TLS transport socket. */
  readonly transport: UpstreamTransport;
}

/** What a connection tells its pool. */
export interface ConnectionOwner {
  /** Connected: the connection is free. */
  connected(conn: Connection): void;
  /** Free again after a response that allows reuse. */
  release(conn: Connection): void;
  /** Closed for good; `connectError` when it never connected. */
  gone(conn: Connection, wasConnecting: boolean, connectError: Error | null): void;
  /** Its socket emitted 'close' (the fd is released). */
  socketClosed(conn: Connection): void;
}

const CONNECTING = 0;
const IDLE = 1;
const BUSY = 2;
const CLOSED = 3;

/** Buffer bodies up to this size go out in the head's write (one syscall; one segment with Nagle off). */
const COALESCE_BYTES = 16 * 1024;
const EMPTY = Buffer.alloc(0);

type Chunk = Uint8Array | string;

export class Connection implements ResponseSink {
  private readonly socket: net.Socket;
  private state = CONNECTING;
  private req: Http1Request | null = null;
  private readonly parser = new ResponseParser();
  private readonly createdAt: number;
  private served = 0;
  private connectTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleTimerMs = 0;
  /** The idle timeout after the last response (its Keep-Alive may have lowered the pool's). */
  private idleMs: number;
  private keepAliveHeader: string | string[] | undefined = undefined;
  private keepAliveMs = 0;
  /** The current response allows reuse (version, Connection, framing, Keep-Alive). */
  private keepAlive = true;
  /** The current request is the last this connection carries (maxRequestsPerConnection). */
  private last = false;
  /** Bytes of the current request reached the socket. */
  private wrote = false;
  /** Bytes read but not parsed while the handler has us paused; EMPTY when only the end is pending. */
  private pending: Buffer | null = null;
  private eofPending = false;
  private executing = false;
  // The request body being streamed.
  private bodyDone = true;
  private bodyStream: Readable | null = null;
  private bodyIter: AsyncIterator<Chunk> | null = null;
  private bodyLength = -1;
  private bodySent = 0;
  private waitingDrain = false;
  /** The head of a 101 that answered an upgrade request, until feed() hands the socket over. */
  private switched: { status: number; headers: Fields } | null = null;

  constructor(
    private readonly owner: ConnectionOwner,
    private readonly s: ConnectionSettings,
  ) {
    this.createdAt = s.now();
    this.idleMs = s.idleTimeoutMs;
    const socket = s.transport.connect(s.host, s.port, {
      noDelay: true,
      keepAlive: s.tcpKeepalive,
      keepAliveInitialDelay: s.tcpKeepaliveInitialDelayMs,
    });
    this.socket = socket;
    // TLS: usable once the handshake is done ('secureConnect') and the peer passed.
    socket.on(s.transport.readyEvent, this.onConnect);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    if (s.connectTimeoutMs > 0) {
      this.connectTimer = setTimeout(this.onConnectTimeout, s.connectTimeoutMs);
      this.connectTimer.unref();
    }
  }

  get closed(): boolean {
    return this.state === CLOSED;
  }

  get busy(): boolean {
    return this.state === BUSY;
  }

  /** Past maxConnectionDuration: finish what runs, take nothing new (Envoy max_connection_duration). */
  expired(): boolean {
    return this.s.maxDurationMs > 0 && this.s.now() - this.createdAt >= this.s.maxDurationMs;
  }

  // === requests ===

  /**
   * Runs `req` on this connection. False when the request ended inside onRequestStart (aborted
   * or threw) before anything was written: the connection is still clean and free.
   */
  start(req: Http1Request): boolean {
    this.state = BUSY;
    this.req = req;
    req.conn = this;
    req.state = RUNNING;
    this.wrote = false;
    this.keepAlive = true;
    this.bodyDone = true;
    this.parser.begin(req.isHead, req.upgrade !== null);
    try {
      // The context carries the connection's TLS facts (its peer's SPIFFE ID), which undici's
      // own context has no field for: the source reporter's principals come from them.
      req.handler.onRequestStart?.(req, { connection: connectionInfoOf(this.socket) });
    } catch (err) {
      if (this.req === req) {
        this.req = null;
        req.fail(asError(err));
      }
    }
    if (this.req !== req) {
      if (this.socket.isPaused()) this.socket.resume(); // a pause() from that handler is not the next request's
      return false;
    }
    this.served++;
    this.write(req);
    return true;
  }

  private write(req: Http1Request): void {
    const max = this.s.maxRequests;
    // Envoy's max_requests_per_connection: exactly N; the Nth says so (RFC 9112 §9.6).
    this.last = max > 0 && this.served >= max;
    // An upgrade request says `connection: upgrade` already, and its connection is never reused (onHead).
    const head = this.last && req.upgrade === null ? req.head + 'connection: close\r\n\r\n' : req.head + '\r\n';
    const socket = this.socket;
    this.wrote = true;
    if (req.bodyKind === BODY_NONE) {
      socket.write(head, 'latin1');
    } else if (req.bodyKind === BODY_BUFFER) {
      const body = req.body as Buffer;
      if (body.length <= COALESCE_BYTES) {
        // Every head character is latin1 (request.ts checks), so its length is its byte length.
        const out = Buffer.allocUnsafe(head.length + body.length);
        out.write(head, 0, 'latin1');
        body.copy(out, head.length);
        socket.write(out);
      } else {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body);
        socket.uncork();
      }
    } else {
      socket.write(head, 'latin1');
      this.startBody(req);
    }
  }

  /** controller.abort(): stop now. */
  abort(req: Http1Request, reason: Error): void {
    if (this.req !== req) return;
    if (!this.wrote) {
      // Inside onRequestStart: nothing reached the socket, so the connection stays usable (start() hands it back).
      this.req = null;
      req.fail(reason);
      return;
    }
    this.destroy(reason);
  }

  pauseReading(): void {
    if (this.state !== CLOSED) this.socket.pause();
  }

  resumeReading(): void {
    if (this.state === CLOSED) return;
    const pending = this.pending;
    if (pending !== null && !this.executing) {
      this.pending = null;
      this.feed(pending);
      if (this.state === CLOSED || (this.req !== null && this.req.paused)) return;
      if (this.eofPending) {
        this.eofPending = false;
        this.onEnd();
        return;
      }
    }
    this.socket.resume();
  }

  // === request body ===

  private startBody(req: Http1Request): void {
    this.bodyDone = false;
    this.bodySent = 0;
    this.bodyLength = req.contentLength;
    if (req.bodyKind === BODY_STREAM) {
      const body = req.body as Readable;
      req.bodyTaken();
      this.bodyStream = body;
      if (body.readableEnded) return this.onBodyEnd();
      if (body.destroyed) return this.onBodyClose();
      body.on('data', this.onBodyData);
      body.on('end', this.onBodyEnd);
      body.on('error', this.onBodyError);
      body.on('close', this.onBodyClose);
      body.resume();
    } else {
      this.bodyIter = (req.body as AsyncIterable<Chunk>)[Symbol.asyncIterator]();
      this.pull();
    }
  }

  /** Writes one body chunk. 0: go on, 1: wait for 'drain', 2: the request failed. */
  private writeChunk(data: Chunk): number {
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    const n = chunk.length;
    if (n === 0) return 0; // an empty chunk would read as the last-chunk
    const socket = this.socket;
    let ok: boolean;
    if (this.bodyLength >= 0) {
      this.bodySent += n;
      if (this.bodySent > this.bodyLength) {
        this.bodyFailed(`the request body to ${this.s.key} is longer than its content-length ${this.bodyLength}`);
        return 2;
      }
      ok = socket.write(chunk);
    } else {
      // RFC 9112 §7.1: chunk-size CRLF chunk-data CRLF, corked into one write.
      socket.cork();
      socket.write(n.toString(16) + '\r\n', 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    }
    if (ok) return 0;
    this.waitingDrain = true;
    return 1;
  }

  private onBodyData = (chunk: Chunk): void => {
    if (this.bodyStream !== null && this.writeChunk(chunk) === 1) this.bodyStream.pause();
  };

  private onBodyEnd = (): void => {
    if (this.bodyStream === null && this.bodyIter === null) return;
    if (this.bodyLength >= 0 && this.bodySent !== this.bodyLength) {
      return this.bodyFailed(`the request body to ${this.s.key} ended after ${this.bodySent} of its content-length ${this.bodyLength} bytes`);
    }
    if (this.bodyLength < 0) this.socket.write('0\r\n\r\n', 'latin1'); // last-chunk, no trailers
    this.stopBody();
    this.bodyDone = true;
  };

  private onBodyError = (err: Error): void => {
    if (this.bodyStream !== null) this.bodyFailed(`the request body to ${this.s.key} failed: ${err.message}`, err);
  };

  private onBodyClose = (): void => {
    const body = this.bodyStream;
    if (body !== null && !body.readableEnded) this.bodyFailed(`the request body to ${this.s.key} was destroyed before its end (the client went away?)`);
  };

  private pull(): void {
    this.bodyIter!.next().then(this.onPulled, this.onPullError);
  }

  private onPulled = (r: IteratorResult<Chunk>): void => {
    // A connection whose body stopped early is never reused, so a late result is this body's.
    if (this.bodyIter === null) return;
    if (r.done) return this.onBodyEnd();
    if (this.writeChunk(r.value) === 0) this.pull();
  };

  private onPullError = (err: unknown): void => {
    if (this.bodyIter !== null) this.bodyFailed(`the request body to ${this.s.key} failed: ${asError(err).message}`, err);
  };

  private onDrain = (): void => {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    if (this.bodyStream !== null) this.bodyStream.resume();
    else if (this.bodyIter !== null) this.pull();
  };

  /** A body with the wrong length or a failed source: the request is cut off, so the connection cannot be reused. */
  private bodyFailed(message: string, cause?: unknown): void {
    this.stopBody();
    this.destroy(new SinewError('SNW_ERR_UPSTREAM_REQUEST_BODY', message, cause === undefined ? undefined : { cause }));
  }

  private stopBody(): void {
    const body = this.bodyStream;
    if (body !== null) {
      body.removeListener('data', this.onBodyData);
      body.removeListener('end', this.onBodyEnd);
      body.removeListener('error', this.onBodyError);
      body.removeListener('close', this.onBodyClose);
      this.bodyStream = null;
      // Not left paused by us: the rest drains (as Node dumps an unread request), so the
      // client's connection is not stalled by a body nobody reads any more.
      if (this.waitingDrain) body.resume();
    }
    // An iterator is left as it is: return() would destroy the client's request under it.
    this.bodyIter = null;
    this.waitingDrain = false;
  }

  // === response (the parser's sink) ===

  onHead(status: number, reason: string, headers: Fields, keepAlive: boolean): boolean {
    const req = this.req!;
    // A server that declined an upgrade (RFC 9110 §7.8) answers as usual, but one that
    // half-understood it could still switch protocols: its connection is not reused.
    if (req.upgrade !== null) keepAlive = false;
    if (keepAlive) {
      const header = headers['keep-alive'];
      let ms = this.s.idleTimeoutMs;
      if (header !== undefined) {
        // A server sends the same value every time: parse it once per connection.
        if (header !== this.keepAliveHeader) {
          this.keepAliveHeader = header;
          this.keepAliveMs = keepAliveIdleMs(header, ms);
        }
        ms = this.keepAliveMs;
      }
      if (ms > 0) this.idleMs = ms;
      else keepAlive = false;
    }
    this.keepAlive = keepAlive;
    try {
      req.handler.onResponseStart?.(req, status, headers, reason);
    } catch (err) {
      this.destroy(asError(err));
      return false;
    }
    return this.req === req && !req.paused;
  }

  onBody(chunk: Buffer): boolean {
    const req = this.req!;
    try {
      req.handler.onResponseData?.(req, chunk);
    } catch (err) {
      this.destroy(asError(err));
      return false;
    }
    return this.req === req && !req.paused;
  }

  onComplete(trailers: Fields): void {
    const req = this.req!;
    this.req = null;
    req.conn = null;
    req.state = DONE;
    // The response may end before the body was sent (an early 413, say): it stands, but the
    // connection is not reused (bodyDone stays false), since the server may still be reading.
    if (!this.bodyDone) this.stopBody();
    try {
      req.handler.onResponseEnd?.(req, trailers);
    } catch {
      // After the end nothing may be called; the connection itself is in a clean state.
    }
  }

  /** The parser read a 101 for the upgrade request in flight: feed() hands the socket over. */
  onUpgrade(status: number, headers: Fields): void {
    this.switched = { status, headers };
  }

  private feed(buf: Buffer): void {
    this.executing = true;
    const offset = this.parser.execute(buf, this);
    this.executing = false;
    if (this.state === CLOSED) return; // aborted, or a handler threw
    if (this.switched !== null) return this.switchProtocols(offset < buf.length ? buf.subarray(offset) : EMPTY);
    if (offset < 0) {
      this.destroy(new SinewError('SNW_ERR_UPSTREAM_PROTOCOL', `upstream ${this.s.key} sent an invalid HTTP/1.1 response: ${this.parser.error}`));
      return;
    }
    if (this.req === null) {
      this.afterResponse(offset < buf.length);
      return;
    }
    // Paused by the handler: keep the rest (even none: the end may still be due) for resume().
    if (this.req.paused) {
      this.pending = offset < buf.length ? buf.subarray(offset) : EMPTY;
      this.socket.pause();
    }
  }

  /**
   * The upstream switched protocols: the socket leaves the pool for the request's handler
   * (onRequestUpgrade), with what was read past the 101 head put back on it, paused until the
   * handler reads it. The pool forgets the connection as if it had closed.
   */
  private switchProtocols(rest: Buffer): void {
    const { status, headers } = this.switched!;
    this.switched = null;
    const req = this.req!;
    this.req = null;
    req.conn = null;
    req.state = DONE;
    this.state = CLOSED;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.stopBody();
    const socket = this.socket;
    socket.pause();
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
    socket.removeListener('drain', this.onDrain);
    if (rest.length > 0) socket.unshift(rest);
    this.owner.gone(this, false, null);
    this.owner.socketClosed(this);
    const handler = req.handler;
    if (handler.onRequestUpgrade === undefined) {
      socket.destroy();
      return;
    }
    try {
      handler.onRequestUpgrade(req, status, headers, socket);
    } catch {
      socket.destroy();
    }
  }

  private afterResponse(leftover: boolean): void {
    // Bytes after a complete response with no request outstanding are not a response to
    // anything: the connection's framing can no longer be trusted (RFC 9112 §9.3.2 spirit).
    if (this.keepAlive && this.bodyDone && !leftover && !this.last && !this.expired()) {
      if (this.socket.isPaused()) this.socket.resume();
      this.owner.release(this);
    } else this.destroy(null);
  }

  /** The pool parks this connection: arm (or re-arm) its idle timer. */
  goIdle(): void {
    this.state = IDLE;
    const ms = this.idleMs;
    if (this.idleTimer === undefined || this.idleTimerMs !== ms) {
      if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(this.onIdleTimeout, ms);
      this.idleTimer.unref();
      this.idleTimerMs = ms;
    } else {
      this.idleTimer.refresh();
    }
  }

  // === socket events ===

  private onConnect = (): void => {
    if (this.connectTimer !== undefined) {
      clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
    }
    if (this.state !== CONNECTING) return;
    if (this.s.transport.secure) {
      const refused = this.s.transport.verifyPeer(this.socket);
      if (refused !== undefined) return this.destroy(refused);
    }
    this.state = IDLE;
    this.owner.connected(this);
  };

  private onConnectTimeout = (): void => {
    this.connectTimer = undefined;
    if (this.state === CONNECTING) {
      this.destroy(new SinewError('SNW_ERR_UPSTREAM_CONNECT_TIMEOUT', `could not connect to upstream ${this.s.key} within ${this.s.connectTimeoutMs} ms (connectTimeout)`));
    }
  };

  private onIdleTimeout = (): void => {
    if (this.state === IDLE) this.destroy(null);
  };

  private onData = (chunk: Buffer): void => {
    if (this.req === null) {
      // An idle connection has nothing outstanding: unsolicited bytes make it unusable.
      this.destroy(null);
      return;
    }
    if (this.pending !== null) {
      this.pending = Buffer.concat([this.pending, chunk]);
      return;
    }
    this.feed(chunk);
  };

  private onEnd = (): void => {
    if (this.state === CLOSED) return;
    if (this.pending !== null) {
      this.eofPending = true; // parse what was held back first (resumeReading)
      return;
    }
    // RFC 9112 §6.3 rule 8: a close-delimited body ends here.
    if (this.req !== null && this.parser.readsUntilClose) this.parser.finish(this);
    this.destroy(this.req === null ? null : this.closedEarly());
  };

  private onError = (err: Error): void => {
    // The transport's own refusal of the upstream's certificate (a SAN mismatch) keeps its code.
    if (this.state === CONNECTING) this.destroy(err instanceof SinewError ? err : this.connectFailed(err));
    else this.destroy(this.reset(`the connection to upstream ${this.s.key} failed mid-request (${(err as NodeJS.ErrnoException).code ?? err.message})`, err));
  };

  private onClose = (): void => {
    if (this.state !== CLOSED) {
      this.destroy(this.state === CONNECTING ? this.connectFailed(null) : this.req === null ? null : this.closedEarly());
    }
    this.owner.socketClosed(this);
  };

  /**
   * Closes the connection for good. A request still on it gets `err` (or a reset) through
   * onResponseError, after the pool has forgotten the connection, so a handler that dispatches
   * again from there never meets it.
   */
  destroy(err: Error | null): void {
    if (this.state === CLOSED) return;
    const wasConnecting = this.state === CONNECTING;
    this.state = CLOSED;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.connectTimer = this.idleTimer = undefined;
    this.stopBody();
    this.pending = null;
    const req = this.req;
    this.req = null;
    this.socket.destroy();
    this.owner.gone(this, wasConnecting, wasConnecting ? (err ?? this.connectFailed(null)) : null);
    if (req !== null) req.fail(err ?? this.closedEarly());
  }

  private connectFailed(err: Error | null): SinewError {
    const code = err === null ? 'closed' : (err as NodeJS.ErrnoException).code === undefined ? err.message : `${(err as NodeJS.ErrnoException).code}${this.s.transport.secure ? ` (${err.message})` : ''}`;
    return new SinewError('SNW_ERR_UPSTREAM_CONNECT_FAILED', `could not connect to upstream ${this.s.key}: ${code}`, err === null ? undefined : { cause: err });
  }

  private closedEarly(): SinewError {
    return this.reset(`upstream ${this.s.key} closed the connection before the response was complete`);
  }

  private reset(message: string, cause?: Error): SinewError {
    return new SinewError('SNW_ERR_UPSTREAM_RESET', message, cause === undefined ? undefined : { cause });
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
