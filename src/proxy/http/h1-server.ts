/**
 * The downstream HTTP/1.1 codec for the requests that make up nearly all sidecar traffic:
 * well-formed HTTP/1.1 requests (GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH) with no body
 * or a Content-Length one, their heads in one read or several. Anything else — a
 * chunked body, an upgrade, `Expect`, HTTP/1.0, a repeated field, any character outside the
 * strict grammar, a head past half the header limit — moves the connection to node's http
 * server (llhttp), with the bytes not yet used put back, for the rest of its life.
 *
 * Why two codecs: node's server costs a sidecar ~0.06 cores at 1000 req/s on its own (its
 * IncomingMessage and ServerResponse streams, per request), a quarter of what the whole proxy
 * costs; sinew already speaks HTTP/1.1 upstream with its own client for the same reason. Why
 * not one: llhttp's judgement of hostile input (smuggling, malformed framing, header floods,
 * slow heads) is well tested, and this codec never has to make that judgement — it accepts
 * only what is unambiguous and hands over everything else, so such requests get exactly the
 * answers they got before.
 *
 * What a response looks like matches node's ServerResponse (which the fallback uses): `date`,
 * `connection: keep-alive` with `keep-alive: timeout=N` (or `connection: close`), chunked
 * framing when no content-length is given, no body for 1xx/204/304. The request and response
 * objects carry only what the connection manager uses (stream.ts, router.ts, local-reply.ts).
 */
import { STATUS_CODES } from 'node:http';
import type net from 'node:net';
import { Readable } from 'node:stream';
import { INVALID_FIELD_CHAR, isToken, trimOws } from '../../core/header-lines.js';

export interface H1Limits {
  /** Heads up to half of this are served here; larger ones go to node's parser, which enforces it (431). */
  readonly maxHeaderBytes: number;
  /** Heads with more fields than this (or MAX_FIELDS) go to node's parser; the listener answers 431 past it. */
  readonly maxHeaderCount: number;
  /** A new connection must send a request, and a head must arrive whole, within this (node's headersTimeout). */
  readonly headersTimeoutMs: number;
  /**
   * Inactivity bound while a request is in flight (0: none): the response's idle-timeout
   * owner decides what happens (Envoy's stream idle timeout), else the connection closes.
   */
  readonly idleTimeoutMs: number;
  /** How long a keep-alive connection waits for its next request. */
  readonly keepAliveTimeoutMs: number;
}

export interface H1ServerHooks {
  limits(): H1Limits;
  /** True while the listener drains: responses say `connection: close`, idle connections close. */
  draining(): boolean;
  onRequest(req: H1Request, res: H1Response): void;
  /** The connection goes to node's http server; what it had not used is back on the socket. */
  handOver(socket: net.Socket): void;
  /** A head did not arrive whole within the headers timeout: answer 408 and close, as node's server does. */
  headersTimedOut(socket: net.Socket): void;
  /** Monotonic milliseconds. */
  now(): number;
}

/** Methods served here: llhttp knows them all, and none tunnels (CONNECT). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
/** A Content-Length served here: digits only, short enough to be exact as a JS number. */
const CONTENT_LENGTH = /^\d{1,15}$/;
/** Header lines past this count go to node's parser (the listener bounds it: maxRequestHeadersCount). */
const MAX_FIELDS = 100;
/** A body this small is sent in the same write as the head, copied into one buffer. */
const COALESCE_BYTES = 16 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Request-target characters served here (RFC 3986 unreserved, sub-delims, `:@/?%#[]`); any
 * other goes to llhttp, which decides what it makes of it.
 */
const TARGET_CHARS = (() => {
  const table = new Uint8Array(128);
  for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%#[]") table[c.charCodeAt(0)] = 1;
  return table;
})();

function validTarget(target: string): boolean {
  if (target.length === 0) return false;
  const first = target.charCodeAt(0);
  // origin-form, or absolute-form (HTTP_PROXY clients; the connection manager decides whether to accept it)
  if (first !== 47 && !/^https?:\/\//i.test(target)) return false;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c >= 128 || TARGET_CHARS[c] === 0) return false;
  }
  return true;
}

/** The request, as the connection manager reads it (the fields of node's IncomingMessage it uses). */
export class H1Request {
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  /** The Content-Length body as it arrives (absent when there is none). */
  body?: Readable;
  /**
   * The protocol the client asks to switch to (`websocket`), on an upgrade request node's
   * parser handed over (H1Connection.adopt); the router switches only once the upstream
   * answers 101 (H1Response.switchProtocols).
   */
  upgrade: string | undefined = undefined;
  /** The whole request is in: it had no body, or the body's last byte arrived (node's IncomingMessage.complete). */
  complete = false;
  constructor(
    readonly method: string,
    readonly url: string,
    /** Lower-case names, one value each (a repeated field sends the connection to node's parser). */
    readonly headers: Record<string, string>,
    readonly socket: net.Socket,
  ) {}
}

export interface ParsedHead {
  req: H1Request;
  keepAlive: boolean;
  bodyLength: number;
}

/**
 * A request head (the bytes before the blank line, as latin1), or undefined when this codec
 * does not serve it. Whatever it accepts, llhttp must accept and read the same way: a test
 * checks that against node's server with generated heads (test/proxy/h1-differential.test.ts).
 */
export function parseHead(head: string, socket: net.Socket, maxFields = MAX_FIELDS): ParsedHead | undefined {
  const lineEnd = head.indexOf('\r\n');
  const requestLine = lineEnd < 0 ? head : head.slice(0, lineEnd);
  const sp1 = requestLine.indexOf(' ');
  const sp2 = requestLine.indexOf(' ', sp1 + 1);
  if (sp1 < 0 || sp2 < 0) return undefined;
  const method = requestLine.slice(0, sp1);
  if (!METHODS.has(method) || requestLine.slice(sp2 + 1) !== 'HTTP/1.1') return undefined;
  const target = requestLine.slice(sp1 + 1, sp2);
  if (!validTarget(target)) return undefined;

  const headers: Record<string, string> = {};
  let keepAlive = true;
  let bodyLength = 0;
  let fields = 0;
  let start = lineEnd + 2;
  while (lineEnd >= 0 && start < head.length) {
    let end = head.indexOf('\r\n', start);
    if (end < 0) end = head.length;
    const colon = head.indexOf(':', start);
    if (colon <= start || colon > end || ++fields > maxFields) return undefined;
    const name = head.slice(start, colon);
    const value = trimOws(head, colon + 1, end);
    if (!isToken(name) || INVALID_FIELD_CHAR.test(value)) return undefined;
    const key = name.toLowerCase();
    if (headers[key] !== undefined || key === '__proto__') return undefined;
    switch (key) {
      case 'content-length':
        if (!CONTENT_LENGTH.test(value)) return undefined; // llhttp judges anything unusual
        bodyLength = Number(value);
        break;
      case 'transfer-encoding':
      case 'upgrade':
      case 'expect':
        return undefined;
      case 'connection': {
        const v = value.toLowerCase();
        if (v === 'close') keepAlive = false;
        else if (v !== 'keep-alive') return undefined; // hop-by-hop lists, upgrades
        break;
      }
    }
    headers[key] = value;
    start = end + 2;
  }
  // Node answers a HTTP/1.1 request without Host with 400 (requireHostHeader); let it.
  if (headers['host'] === undefined) return undefined;
  return { req: new H1Request(method, target, headers, socket), keepAlive, bodyLength };
}

let dateSecond = -1;
let dateValue = '';
/** The `date` value, formatted once a second as node does. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

function invalidHeader(name: string, message: string): TypeError {
  const err = new TypeError(`header "${name}" ${message}`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_CHAR';
  return err;
}

type HeaderValue = string | string[] | number | undefined;

/**
 * The response (the part of node's ServerResponse the connection manager uses). Listeners:
 * 'close' (the connection closed before the response ended; unlike node's, it does not fire
 * after a complete response) and 'drain' (the connection can take more after write() said
 * false); each fires a listener once.
 */
export class H1Response {
  headersSent = false;
  private pendingHead = '';
  private chunked = false;
  private bodyAllowed = true;
  private ended = false;
  /** The connection closes once this response is out. */
  closeAfter: boolean;
  private closeListeners?: (() => void)[];
  private drainListeners?: (() => void)[];
  /**
   * Told when the stream idle timeout passes with this response unfinished (the connection
   * manager's stream): a field, not a listener, so that setting it costs no closure.
   */
  idleTimeoutOwner?: { onStreamIdleTimeout(): void } = undefined;
  /**
   * Field lines the proxy adds to the head itself, already valid (src/core/header-lines.ts):
   * written as they are, without the per-field checks (an inbound sidecar's exchange headers).
   */
  proxyLines = '';

  constructor(
    private readonly conn: H1Connection,
    keepAlive: boolean,
    /** A response to HEAD: headers as for GET, never a body. */
    private readonly headRequest: boolean,
  ) {
    this.closeAfter = !keepAlive;
  }

  on(event: 'close' | 'drain', listener: () => void): this {
    if (event === 'close') (this.closeListeners ??= []).push(listener);
    else (this.drainListeners ??= []).push(listener);
    return this;
  }

  once(event: 'close' | 'drain', listener: () => void): this {
    return this.on(event, listener);
  }

  /** Serializes the head; it goes out with the first body bytes (one write for a small response). */
  writeHead(status: number, headers?: Record<string, HeaderValue>): this {
    if (this.headersSent) throw new Error('response head already written');
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
    let hasLength = false;
    let hasDate = false;
    let connection: string | undefined;
    let transferEncoding: string | undefined;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      if (!isToken(name)) throw invalidHeader(name, 'is not a valid header name');
      if (Array.isArray(value)) {
        for (const v of value) head += fieldText(name, v);
      } else {
        const text = typeof value === 'number' ? String(value) : value;
        head += fieldText(name, text);
        switch (name.length) {
          case 4:
            if (name.toLowerCase() === 'date') hasDate = true;
            break;
          case 10:
            if (name.toLowerCase() === 'connection') connection = text.toLowerCase();
            break;
          case 14:
            if (name.toLowerCase() === 'content-length') hasLength = true;
            break;
          case 17:
            if (name.toLowerCase() === 'transfer-encoding') transferEncoding = text.toLowerCase();
            break;
        }
      }
    }
    if (!hasDate) head += `date: ${httpDate()}\r\n`;
    head += this.proxyLines;
    if (this.conn.hooks.draining()) this.closeAfter = true;
    if (connection !== undefined) {
      if (connection.includes('close')) this.closeAfter = true;
    } else if (this.closeAfter) {
      head += 'connection: close\r\n';
    } else {
      head += `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(this.conn.limits.keepAliveTimeoutMs / 1000)}\r\n`;
    }
    this.bodyAllowed = !this.headRequest && !(status === 204 || status === 304 || (status >= 100 && status < 200));
    if (transferEncoding !== undefined) {
      this.chunked = transferEncoding.endsWith('chunked');
      // Any other transfer coding can only be delimited by closing the connection.
      if (!this.chunked) this.closeAfter = true;
    } else if (!hasLength && this.bodyAllowed) {
      head += 'transfer-encoding: chunked\r\n';
      this.chunked = true;
    }
    this.pendingHead = head + '\r\n';
    this.headersSent = true;
    return this;
  }

  /** Sends body bytes; false means the client is behind (wait for 'drain'). */
  write(chunk: Buffer | string): boolean {
    if (this.ended) return false;
    if (!this.headersSent) this.writeHead(200);
    const body = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.bodyAllowed || body.length === 0) return this.flushHead();
    if (this.chunked) {
      // Chunk framing and a following end() go out in one write: uncorked on the next tick.
      const socket = this.conn.socket;
      if (socket.writableCorked === 0) {
        socket.cork();
        process.nextTick(uncork, socket);
      }
      const head = this.pendingHead;
      this.pendingHead = '';
      socket.write(head + body.length.toString(16) + '\r\n', 'latin1');
      socket.write(body);
      return socket.write('\r\n', 'latin1');
    }
    return this.send(body);
  }

  end(chunk?: Buffer | string): this {
    if (this.ended) return this;
    if (!this.headersSent) this.writeHead(200);
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    if (this.chunked) this.conn.socket.write(this.pendingHead + '0\r\n\r\n', 'latin1');
    else this.flushHead();
    this.pendingHead = '';
    this.ended = true;
    // Ended: 'close' can no longer mean the client went away first.
    this.closeListeners = undefined;
    this.drainListeners = undefined;
    this.idleTimeoutOwner = undefined;
    this.conn.responseEnded(this);
    return this;
  }

  destroy(): void {
    this.conn.socket.destroy();
  }

  /**
   * After writeHead(101): sends the head and hands over the socket, with the bytes the client
   * sent past its request, for the new protocol. This codec no longer reads the connection.
   */
  switchProtocols(): { socket: net.Socket; head: Buffer } {
    if (!this.headersSent || this.ended) throw new Error('switchProtocols() needs a 101 head written and nothing sent yet');
    this.flushHead();
    this.ended = true;
    this.closeListeners = undefined;
    this.drainListeners = undefined;
    return this.conn.detach(this);
  }

  /** @internal the connection closed before the response ended: 'close' listeners run once. */
  emitClose(): void {
    const listeners = this.closeListeners;
    if (listeners === undefined) return;
    this.closeListeners = undefined;
    for (const listener of listeners) listener();
  }

  /** @internal the stream idle timeout passed: false when nobody is told (the connection then closes). */
  emitTimeout(): boolean {
    const owner = this.idleTimeoutOwner;
    if (owner === undefined) return false;
    owner.onStreamIdleTimeout();
    return true;
  }

  /** @internal */
  emitDrain(): void {
    const listeners = this.drainListeners;
    if (listeners === undefined) return;
    this.drainListeners = undefined;
    for (const listener of listeners) listener();
  }

  private flushHead(): boolean {
    if (this.pendingHead.length === 0) return !this.conn.socket.writableNeedDrain;
    const head = this.pendingHead;
    this.pendingHead = '';
    return this.conn.socket.write(head, 'latin1');
  }

  /** Head (if not yet sent) and body in one write. */
  private send(body: Buffer): boolean {
    const socket = this.conn.socket;
    const head = this.pendingHead;
    if (head.length === 0) return socket.write(body);
    this.pendingHead = '';
    if (body.length > COALESCE_BYTES) {
      socket.cork();
      socket.write(head, 'latin1');
      const ok = socket.write(body);
      socket.uncork();
      return ok;
    }
    const out = Buffer.allocUnsafe(head.length + body.length);
    out.write(head, 0, 'latin1');
    body.copy(out, head.length);
    return socket.write(out);
  }
}

/** An LF not preceded by CR. */
function hasBareLf(buf: Buffer): boolean {
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) if (i === 0 || buf[i - 1] !== 0x0d) return true;
  return false;
}

function fieldText(name: string, value: string): string {
  if (INVALID_FIELD_CHAR.test(value)) throw invalidHeader(name, 'has a character HTTP/1.1 does not allow in its value');
  return name + ': ' + value + '\r\n';
}

function uncork(socket: net.Socket): void {
  socket.uncork();
}

/** One client connection, served here until a request needs node's parser. */
export class H1Connection {
  /** Bytes read and not yet used: a head still arriving, or a pipelined request behind the one in flight. */
  private pending: Buffer = EMPTY;
  private active?: H1Response;
  /** The body of the request in flight, while bytes of it are still to come. */
  private body?: Readable;
  private bodyOf?: H1Request;
  private bodyRemaining = 0;
  /** The response ended before the body did: the rest is read and dropped, as node's server does. */
  private bodyAbandoned = false;
  /** Reading is paused because the body's reader is behind. */
  private bodyPaused = false;
  /** When the head now in `pending` began to arrive (monotonic ms), for the headers timeout. */
  private headSince = -1;
  /** This codec no longer reads the connection (handed to node's server, or answered 408). */
  private stopped = false;
  /** The socket's inactivity timeout now in force (set only when it changes: each set allocates a timer). */
  private timeoutMs = -1;
  /**
   * Quiet time counted so far in the ticks of the connection's timer (onTimeout), and the
   * socket's byte count when it was last counted: a change means the quiet began anew.
   */
  private quietMs = 0;
  private quietMark = -1;
  /** The timer in force is the headers timeout (a new connection's first request, a head arriving in pieces). */
  private timingHead = false;
  limits: H1Limits;

  constructor(
    readonly socket: net.Socket,
    readonly hooks: H1ServerHooks,
  ) {
    this.limits = hooks.limits();
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('timeout', this.onTimeout);
    socket.on('drain', this.onDrain);
    // The first request must come within the request-headers timeout, as node's server allows.
    this.setTimeout(this.limits.headersTimeoutMs, true);
    if (socket.isPaused()) socket.resume(); // sniffing paused it
  }

  /** No request in flight: closing loses nothing (a drain closes these at once). */
  get idle(): boolean {
    return this.active === undefined && !this.stopped;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData = (chunk: Buffer): void => {
    if (this.stopped) return;
    if (this.body !== undefined) return this.feedBody(chunk);
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.active !== undefined) {
      // Pipelined: the next request waits for this response. Stop reading past one head's worth.
      if (this.pending.length > this.limits.maxHeaderBytes) this.socket.pause();
      return;
    }
    this.serveNext();
  };

  /** Serves the request at the front of `pending`, or hands the connection to node's parser. */
  private serveNext = (): void => {
    if (this.active !== undefined || this.body !== undefined || this.stopped || this.pending.length === 0 || this.socket.destroyed) return;
    const pending = this.pending;
    const headEnd = pending.indexOf('\r\n\r\n');
    if (headEnd < 0) return this.awaitRestOfHead();
    this.headSince = -1;
    const limits = this.limits;
    const parsed = headEnd * 2 <= limits.maxHeaderBytes ? parseHead(pending.toString('latin1', 0, headEnd), this.socket, limits.maxHeaderCount < MAX_FIELDS ? limits.maxHeaderCount : MAX_FIELDS) : undefined;
    if (parsed === undefined) return this.handOver();
    this.pending = headEnd + 4 === pending.length ? EMPTY : pending.subarray(headEnd + 4);
    this.begin(parsed.req, parsed.keepAlive, parsed.bodyLength);
  };

  /** A request head is in: the request goes to the connection manager; its body (if any) follows. */
  private begin(req: H1Request, keepAlive: boolean, bodyLength: number): void {
    const res = new H1Response(this, keepAlive, req.method === 'HEAD');
    this.active = res;
    // One timer for the connection's life, the same between requests and during them (see
    // onTimeout), so a request sets nothing: after the first it is already in force.
    this.setTimeout(this.tickMs());
    if (bodyLength > 0) this.startBody(req, bodyLength);
    else req.complete = true;
    this.hooks.onRequest(req, res);
  }

  /**
   * Serves a request node's server parsed and then let go of (an upgrade request: node hands
   * its socket over on 'upgrade' and reads it no more), with `unread`, the bytes node read
   * past the request's head. From here on this codec serves the connection: when the upstream
   * declines the upgrade, the answer is an ordinary response and what follows it on the
   * connection is parsed as the next request (RFC 9110 §7.8), never passed on unrouted.
   */
  adopt(req: H1Request, keepAlive: boolean, bodyLength: number, unread: Buffer): void {
    this.pending = unread;
    this.begin(req, keepAlive, bodyLength);
  }

  /** @internal H1Response.switchProtocols: the socket leaves this codec, with what it read and did not use. */
  detach(res: H1Response): { socket: net.Socket; head: Buffer } {
    if (res !== this.active) throw new Error('only the response in flight can switch protocols');
    const head = this.pending;
    this.active = undefined;
    this.stop();
    this.socket.pause(); // until its new reader is attached
    return { socket: this.socket, head };
  }

  /**
   * A head that has not arrived whole (a large one over a real network comes in several
   * reads) waits for the rest, within the headers timeout counted from its first byte — a
   * client that sends it a byte at a time still gets cut off in time.
   */
  private awaitRestOfHead(): void {
    if (this.pending.length * 2 > this.limits.maxHeaderBytes) return this.handOver(); // node's parser answers 431
    // A line ended by a bare LF would keep this codec waiting for a CRLF CRLF that never
    // comes, until the headers timeout: node's parser refuses it at once (400), as llhttp
    // does not take the bare LF RFC 9112 §2.2 lets a server accept.
    if (hasBareLf(this.pending)) return this.handOver();
    const now = this.hooks.now();
    if (this.headSince < 0) {
      this.headSince = now;
      this.setTimeout(this.limits.headersTimeoutMs, true);
    } else if (now - this.headSince > this.limits.headersTimeoutMs) {
      this.headersTimedOut();
    }
  }

  private headersTimedOut(): void {
    this.stop();
    this.hooks.headersTimedOut(this.socket);
  }

  private startBody(req: H1Request, length: number): void {
    const body = new Readable({ read: this.onBodyRead });
    req.body = body;
    this.body = body;
    this.bodyOf = req;
    this.bodyRemaining = length;
    const early = this.pending;
    this.pending = EMPTY;
    if (early.length > 0) this.feedBody(early);
  }

  /** Body bytes in; whatever follows the body is the next request. */
  private feedBody(chunk: Buffer): void {
    const body = this.body!;
    if (this.bodyAbandoned && this.hooks.now() - this.headSince > this.limits.headersTimeoutMs) {
      this.socket.destroy();
      return;
    }
    const take = Math.min(chunk.length, this.bodyRemaining);
    this.bodyRemaining -= take;
    const part = take === chunk.length ? chunk : chunk.subarray(0, take);
    const more = this.bodyAbandoned || body.push(part);
    if (take < chunk.length) this.pending = this.pending.length === 0 ? chunk.subarray(take) : Buffer.concat([this.pending, chunk.subarray(take)]);
    if (this.bodyRemaining === 0) {
      if (!this.bodyAbandoned) body.push(null);
      this.bodyOf!.complete = true;
      this.body = undefined;
      this.bodyOf = undefined;
      if (this.bodyAbandoned) this.headSince = -1;
      this.bodyAbandoned = false;
      this.resumeBody();
      this.serveNext(); // the response may be out already; then the next request can start
    } else if (!more) {
      this.bodyPaused = true;
      this.socket.pause();
    }
  }

  private onBodyRead = (): void => this.resumeBody();

  private resumeBody(): void {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    this.socket.resume();
  }

  /** @internal */
  responseEnded(res: H1Response): void {
    if (res !== this.active) return;
    this.active = undefined;
    const socket = this.socket;
    if (res.closeAfter) {
      // As node's server: no more requests on this connection; close once the response is out.
      this.stop();
      socket.end(() => socket.destroy());
      return;
    }
    this.limits = this.hooks.limits();
    this.setTimeout(this.tickMs());
    if (this.body !== undefined) {
      // Answered before the body was read (a local reply to a POST): read past the rest, as
      // node's server does, within the headers timeout (feedBody), so that a client trickling
      // a body nobody wants cannot hold the connection.
      this.bodyAbandoned = true;
      this.headSince = this.hooks.now();
      this.resumeBody();
      return;
    }
    if (this.pending.length > 0) {
      if (socket.isPaused()) socket.resume();
      // Not from inside end(): the stream that ended has not finished its own bookkeeping.
      process.nextTick(this.serveNext);
    }
  }

  /** From here on this codec leaves the connection alone. */
  private stop(): void {
    this.stopped = true;
    this.pending = EMPTY;
    const socket = this.socket;
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('close', this.onClose);
    socket.removeListener('timeout', this.onTimeout);
    socket.removeListener('drain', this.onDrain);
    socket.setTimeout(0);
  }

  private handOver(): void {
    const socket = this.socket;
    const unread = this.pending;
    this.stop();
    if (socket.readableEnded) {
      socket.destroy();
      return;
    }
    socket.pause();
    if (unread.length > 0) socket.unshift(unread);
    this.hooks.handOver(socket);
    socket.resume();
  }

  /**
   * The client sent FIN. Like node's server (and Envoy's HTTP/1 codec), that ends the
   * connection: a request in flight is reset (the response's 'close' fires: DC).
   */
  private onEnd = (): void => {
    if (this.socket.writable) this.socket.end();
    else this.socket.destroy();
  };

  private onClose = (): void => {
    this.pending = EMPTY;
    const res = this.active;
    this.active = undefined;
    res?.emitClose();
    const body = this.body;
    if (body !== undefined) {
      this.body = undefined;
      this.bodyOf = undefined;
      // As node's IncomingMessage: the error goes only to a reader that listens for one.
      body.destroy(body.listenerCount('error') > 0 ? Object.assign(new Error('aborted'), { code: 'ECONNRESET' }) : undefined);
    }
  };

  /** `head`: the timer bounds a head's arrival (the headers timeout), not the connection's quiet. */
  private setTimeout(ms: number, head = false): void {
    this.timingHead = head;
    if (ms === this.timeoutMs) return;
    this.timeoutMs = ms;
    this.socket.setTimeout(ms);
  }

  /**
   * The connection's timer between and during requests: the keep-alive timeout, or the
   * stream idle timeout when that is shorter. Setting a socket's timeout costs a timer, so it
   * is not switched per request; onTimeout counts quiet time in its ticks instead.
   */
  private tickMs(): number {
    const { keepAliveTimeoutMs, idleTimeoutMs } = this.limits;
    return idleTimeoutMs > 0 && idleTimeoutMs < keepAliveTimeoutMs ? idleTimeoutMs : keepAliveTimeoutMs;
  }

  /**
   * No bytes for the timeout now in force: before a head was whole (408), or a tick of the
   * connection's timer, whose quiet time adds up to the stream idle timeout while a request
   * is in flight and to the keep-alive timeout between requests.
   */
  private onTimeout = (): void => {
    const active = this.active;
    if (active === undefined && this.pending.length > 0) return this.headersTimedOut();
    const socket = this.socket;
    const bytes = socket.bytesRead + socket.bytesWritten;
    this.quietMs = bytes === this.quietMark ? this.quietMs + this.timeoutMs : this.timeoutMs;
    this.quietMark = bytes;
    const { idleTimeoutMs, keepAliveTimeoutMs } = this.limits;
    if (active !== undefined) {
      if (idleTimeoutMs === 0) return; // nothing to time: any read or write re-arms the timer
      if (this.quietMs < idleTimeoutMs) return this.rearm();
      if (active.emitTimeout()) return;
    } else if (!this.timingHead && this.quietMs < keepAliveTimeoutMs) {
      return this.rearm();
    }
    socket.destroy();
  };

  /** A fired timer stays quiet until the next read or write: quiet time still to count needs it again. */
  private rearm(): void {
    this.socket.setTimeout(this.timeoutMs);
  }

  private onDrain = (): void => {
    this.active?.emitDrain();
  };
}
