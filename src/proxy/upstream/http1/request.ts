/**
 * One dispatched request: its head, built and checked once when it is dispatched (so a bad
 * header fails before anything reaches a socket), its body, and the controller the handler
 * gets (undici's DispatchController: abort, pause, resume).
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { SinewError } from '../../../core/errors.js';
import { INVALID_FIELD_CHAR, isToken, TOKEN_CHARS_ONLY } from '../../../core/header-lines.js';
import type { UpstreamDispatchOptions } from '../types.js';

/** What a running request needs of its connection (connection.ts implements it). */
export interface RequestRunner {
  abort(req: Http1Request, reason: Error): void;
  pauseReading(): void;
  resumeReading(): void;
}

export const BODY_NONE = 0;
export const BODY_BUFFER = 1;
export const BODY_STREAM = 2;
export const BODY_ITERABLE = 3;

export const QUEUED = 0;
export const RUNNING = 1;
export const DONE = 2;

// Methods and field names must be RFC 9110 tokens, field values free of CR, LF, NUL and the
// other characters INVALID_FIELD_CHAR names (core/header-lines.ts): any of those would let a
// caller's value end the line and inject a field or a request. Names are checked
// concatenated (TOKEN_CHARS_ONLY), so an empty name is caught apart.

// undici's rule for the request target: no controls and no spaces.
const INVALID_PATH = /[^\x21-\xff]/;
const DIGITS = /^\d{1,15}$/;

type Body = Buffer | Readable | AsyncIterable<Uint8Array | string> | null;

export class Http1Request implements Dispatcher.DispatchController {
  readonly handler: Dispatcher.DispatchHandler;
  /** Request line and fields, each CRLF-terminated, without the blank line (the connection adds `connection: close` when it must). */
  head: string;
  readonly isHead: boolean;
  /**
   * The protocol this request asks to switch to (`Upgrade`, RFC 9110 §7.8), or null: a 101
   * then hands the connection's socket to the handler's onRequestUpgrade.
   */
  readonly upgrade: string | null;
  readonly bodyKind: number;
  readonly body: Body;
  /** For stream and iterable bodies: the caller's Content-Length, or -1 to send chunked. */
  readonly contentLength: number;
  /** The connection running it (connection.ts), told when the handler aborts. */
  conn: RequestRunner | null = null;
  state = QUEUED;
  private _aborted = false;
  private _paused = false;
  private _reason: Error | null = null;
  private hasHost = false;
  /** Every field name and value, concatenated while the head is built, for one check each. */
  private names = '';
  private emptyName = false;
  private values = '';
  private callerLength: unknown = undefined;
  /** Stream bodies only (a closure per request is not paid by the others). */
  private onWaitingBodyError: ((err: Error) => void) | null = null;

  /** Throws a SinewError (SNW_ERR_UPSTREAM_INVALID_REQUEST) for a request that cannot be sent as asked. */
  constructor(options: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler, authority: string) {
    this.handler = handler;
    const { method, path } = options;
    if (typeof method !== 'string' || !isToken(method)) throw invalid(authority, `invalid method "${String(method)}"`);
    if (method === 'CONNECT') throw invalid(authority, 'CONNECT does not go through dispatch');
    if (typeof path !== 'string' || path.length === 0 || INVALID_PATH.test(path)) throw invalid(authority, `invalid request target "${String(path)}"`);
    const upgrade = options.upgrade;
    if (upgrade != null && (typeof upgrade !== 'string' || !isToken(upgrade))) throw invalid(authority, `invalid upgrade protocol "${String(upgrade)}"`);
    this.upgrade = upgrade ?? null;
    this.isHead = method === 'HEAD';
    this.head = method + ' ' + path + ' HTTP/1.1\r\n';
    const headers = options.headers as unknown;
    forEachField(headers, this);
    // Checked all at once: one regex run over every name and one over every value costs far
    // less than two per field (the per-call overhead dominated the client's profile), and a
    // bad character is caught wherever it is. Only a request that fails looks for the culprit.
    if (this.emptyName || !TOKEN_CHARS_ONLY.test(this.names) || INVALID_FIELD_CHAR.test(this.values)) {
      forEachField(headers, { field: (name, value) => checkField(name, value, authority) });
      throw invalid(authority, 'a header name or value has a character HTTP/1.1 does not allow');
    }
    this.names = '';
    this.values = '';
    // The proxy's own fields, valid as they are (UpstreamDispatchOptions).
    const proxyLines = options.proxyHeaderLines;
    if (proxyLines) this.head += proxyLines;
    // RFC 9112 §3.2: every HTTP/1.1 request carries Host.
    if (!this.hasHost) this.head += 'host: ' + authority + '\r\n';
    // The caller's Connection field was dropped: this one is ours (undici's form).
    if (upgrade != null) this.head += 'connection: upgrade\r\nupgrade: ' + upgrade + '\r\n';

    // Framing is ours (RFC 9112 §6): the caller's Content-Length / Transfer-Encoding were dropped.
    const body = options.body as unknown;
    let kind = BODY_NONE;
    let length = -1;
    let value: Body = null;
    if (body != null) {
      if (typeof body === 'string' || body instanceof Uint8Array) {
        const buf = typeof body === 'string' ? Buffer.from(body) : Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        if (buf.length > 0) {
          kind = BODY_BUFFER;
          value = buf;
          this.head += 'content-length: ' + buf.length + '\r\n';
        }
      } else if (typeof (body as Readable).on === 'function' && typeof (body as Readable).resume === 'function') {
        kind = BODY_STREAM;
        value = body as Readable;
      } else if (typeof (body as AsyncIterable<Buffer>)[Symbol.asyncIterator] === 'function') {
        kind = BODY_ITERABLE;
        value = body as AsyncIterable<Buffer>;
      } else {
        throw invalid(authority, 'unsupported body type (use a Buffer, a string, a Readable or an async iterable)');
      }
      if (kind === BODY_STREAM || kind === BODY_ITERABLE) {
        const given = this.callerLength;
        if (given === undefined) {
          this.head += 'transfer-encoding: chunked\r\n';
        } else {
          const text = typeof given === 'number' ? String(given) : given;
          if (typeof text !== 'string' || !DIGITS.test(text)) throw invalid(authority, `invalid content-length "${String(given)}"`);
          length = Number(text);
          this.head += 'content-length: ' + text + '\r\n';
        }
      }
    }
    // undici's rule: methods that carry a payload say so even when it is empty.
    if (kind === BODY_NONE && (method === 'POST' || method === 'PUT' || method === 'PATCH')) this.head += 'content-length: 0\r\n';
    this.bodyKind = kind;
    this.body = value;
    this.contentLength = length;
    // As undici: a body that fails while the request waits for a connection fails the request
    // there, and is never an unhandled 'error'. The connection takes over once it runs.
    if (kind === BODY_STREAM) {
      this.onWaitingBodyError = (err: Error) => this.waitingBodyFailed(err);
      (value as Readable).on('error', this.onWaitingBodyError);
    }
  }

  /** FieldVisitor, for the constructor only: appends a field to the head; its name and value are checked with all the others. */
  field(name: string, value: unknown): void {
    if (value === undefined || value === null) return;
    // Only these lengths can name a field we handle ourselves: lowercase only those.
    const n = name.length;
    if (n === 4 || n === 10 || n === 14 || n === 17) {
      const lower = name.toLowerCase();
      if (lower === 'host') this.hasHost = true;
      else if (lower === 'content-length') {
        this.callerLength = Array.isArray(value) ? value[0] : value;
        return;
      } else if (lower === 'connection' || lower === 'keep-alive' || lower === 'transfer-encoding') return;
    }
    // No separator between names: any separator could itself appear in a hostile name and pass.
    if (n === 0) this.emptyName = true;
    this.names += name;
    if (Array.isArray(value)) {
      for (const v of value) this.line(name, v);
    } else this.line(name, value);
  }

  private line(name: string, value: unknown): void {
    const v = typeof value === 'string' ? value : String(value);
    this.values += v;
    this.head += name + ': ' + v + '\r\n';
  }

  private waitingBodyFailed(err: Error): void {
    if (this.state !== QUEUED) return;
    this.fail(new SinewError('SNW_ERR_UPSTREAM_REQUEST_BODY', `the request body failed before the request got a connection: ${err.message}`, { cause: err }));
  }

  /** The connection listens to the body from now on. */
  bodyTaken(): void {
    if (this.onWaitingBodyError === null) return;
    (this.body as Readable).removeListener('error', this.onWaitingBodyError);
    this.onWaitingBodyError = null;
  }

  // === the controller ===

  get aborted(): boolean {
    return this._aborted;
  }

  get paused(): boolean {
    return this._paused;
  }

  get reason(): Error | null {
    return this._reason;
  }

  /** Stops now: the socket is destroyed (unless nothing was written on it yet) and onResponseError gets `reason`, once. */
  abort(reason: Error): void {
    if (this.state === DONE) return;
    this._aborted = true;
    this._reason = reason;
    if (this.conn) this.conn.abort(this, reason);
    else this.fail(reason);
  }

  /** Stops reading the response (backpressure) until resume(). */
  pause(): void {
    if (this.state === DONE || this._paused) return;
    this._paused = true;
    this.conn?.pauseReading();
  }

  resume(): void {
    if (!this._paused) return;
    this._paused = false;
    this.conn?.resumeReading();
  }

  /** Ends the request with an error: onResponseError, once; nothing is called after it. */
  fail(err: Error): void {
    if (this.state === DONE) return;
    if (this.bodyKind === BODY_STREAM) this.bodyTaken();
    this.state = DONE;
    this.conn = null;
    try {
      this.handler.onResponseError?.(this, err);
    } catch {
      // The handler's own failure has nowhere else to go; it must not take the pool down.
    }
  }
}

function invalid(authority: string, what: string): SinewError {
  return new SinewError('SNW_ERR_UPSTREAM_INVALID_REQUEST', `request to upstream ${authority} not sent: ${what}`);
}

interface FieldVisitor {
  field(name: string, value: unknown): void;
}

/**
 * Visits each field of undici's header forms: an object, a flat [name, value, ...] array, or
 * [name, value] pairs. A visitor object, not a callback: the request itself visits, so building
 * a head allocates no closure.
 */
function forEachField(headers: unknown, visitor: FieldVisitor): void {
  if (headers == null) return;
  if (Array.isArray(headers)) {
    if (headers.length && Array.isArray(headers[0])) for (const [n, v] of headers as [string, unknown][]) visitor.field(n, v);
    else for (let i = 0; i + 1 < headers.length; i += 2) visitor.field(String(headers[i]), headers[i + 1]);
  } else if (typeof headers === 'object') {
    const h = headers as Record<string, unknown>;
    for (const name in h) visitor.field(name, h[name]);
  }
}

/** The per-field check, run only once the batched one failed: throws naming the field at fault. */
function checkField(name: string, value: unknown, authority: string): void {
  if (value === undefined || value === null) return;
  if (!isToken(name)) throw invalid(authority, `invalid header name "${name}"`);
  for (const v of Array.isArray(value) ? value : [value]) {
    if (INVALID_FIELD_CHAR.test(typeof v === 'string' ? v : String(v))) throw invalid(authority, `header "${name}" has a CR, LF, NUL or other control character in its value`);
  }
}
