/**
 * An incremental HTTP/1.1 response parser (RFC 9112), one per connection and reused for every
 * response on it. It takes the socket's chunks as they come, split anywhere (down to one byte
 * at a time), and tells its sink about the head, each body slice (zero-copy subarrays of the
 * socket's buffers) and the end. It is strict where leniency has let responses be smuggled
 * (llhttp's defaults, which undici uses): CRLF line ends, no obs-fold, no whitespace before a
 * colon, no Transfer-Encoding beside Content-Length, no differing Content-Lengths.
 */
import { trimOws } from '../../../core/header-lines.js';

/** Response header fields: lowercased names, a repeated field as an array of its values (as undici). */
export type Fields = Record<string, string | string[]>;

/** Whoever reads the response. `false` from onHead/onBody stops parsing now (paused or aborted). */
export interface ResponseSink {
  /** A final (non-1xx) response head. `keepAlive`: the framing and version allow another request after it. */
  onHead(status: number, reason: string, headers: Fields, keepAlive: boolean): boolean;
  onBody(chunk: Buffer): boolean;
  /** The response is complete. The parser returns right after this call. */
  onComplete(trailers: Fields): void;
  /**
   * The server switched protocols (101) for a request that asked to upgrade (`begin`): the
   * bytes after the head belong to the new protocol. The parser returns right after this call,
   * at the first of them.
   */
  onUpgrade?(status: number, headers: Fields): void;
}

/** Largest response head (and trailer section, and chunk-size line) accepted. */
export const MAX_HEAD_BYTES = 60 * 1024;

/**
 * undici's keepAliveTimeoutThreshold: a server's `Keep-Alive: timeout=N` is taken as N s less
 * this margin, so that we stop reusing a connection before the server closes it under us.
 */
export const KEEP_ALIVE_THRESHOLD_MS = 1000;

// States. Plain numbers (not a const enum) so that tsx's per-file transpiling keeps them inline.
const S_STATUS = 0;
const S_HEADER = 1;
const S_BODY = 2; // Content-Length body: `remaining` bytes
const S_CHUNK_SIZE = 3;
const S_CHUNK_DATA = 4;
const S_CHUNK_CR = 5; // the CRLF after chunk data
const S_CHUNK_LF = 6;
const S_TRAILER = 7;
const S_BODY_EOF = 8; // close-delimited body
const S_BODY_DONE = 9; // everything read; completes without needing another byte
const S_DONE = 10;
const S_ERROR = 11;
const S_UPGRADED = 12; // a 101 to an upgrade request: no longer HTTP

// RFC 9110 §5.6.2 token; §5.5 field-value characters (VCHAR, obs-text, SP, HTAB): anything else
// (NUL, a bare CR, LF, other controls) makes the line invalid.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_FIELD_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
const DIGITS = /^\d{1,15}$/;

interface Latin1Buffer {
  latin1Slice(start: number, end: number): string;
}

/** Buffer's own latin1 decoder, without toString()'s encoding lookup (the bytes of a head are latin1 by RFC 9110 §5.5). */
function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Buffer).latin1Slice(start, end);
}

export class ResponseParser {
  /** Why the last execute() returned -1. */
  error = '';
  private state = S_DONE;
  private isHead = false;
  /** The request asked to switch protocols (RFC 9110 §7.8): a 101 then ends HTTP on the connection. */
  private upgrade = false;
  // A line split over chunks: its pieces so far.
  private partial: Buffer[] = [];
  private partialLength = 0;
  /** Bytes of the current head, trailer section or chunk-size line, against MAX_HEAD_BYTES. */
  private lineBytes = 0;
  private next = 0;
  private http11 = false;
  private status = 0;
  private reason = '';
  private fields: Fields | null = null;
  private remaining = 0;
  /** The response allows another request on the connection (version, Connection, framing). */
  private keepAlive = true;

  /**
   * Expects the response to a new request; `isHead`: a HEAD request, whose response has no body
   * (RFC 9112 §6.3 rule 1); `upgrade`: the request carries `Upgrade`, so a 101 may answer it.
   */
  begin(isHead: boolean, upgrade = false): void {
    this.state = S_STATUS;
    this.isHead = isHead;
    this.upgrade = upgrade;
    this.lineBytes = 0;
    this.partial.length = 0;
    this.partialLength = 0;
    this.fields = null;
  }

  /** The response is complete (or none was expected): any further byte is unsolicited. */
  get done(): boolean {
    return this.state === S_DONE;
  }

  /** The body runs until the connection closes (RFC 9112 §6.3 rule 8). */
  get readsUntilClose(): boolean {
    return this.state === S_BODY_EOF;
  }

  /** The connection closed: completes a close-delimited body. Returns false when the response is cut short. */
  finish(sink: ResponseSink): boolean {
    if (this.state !== S_BODY_EOF) return false;
    this.state = S_DONE;
    sink.onComplete({});
    return true;
  }

  /**
   * Parses `buf`. Returns the offset of the first byte not consumed: `buf.length` when all of
   * it was, less when the sink stopped (paused, aborted) or the response completed with bytes
   * left over; -1 on a malformed response (`error` says why). Call again with the rest, or an
   * empty buffer, to go on after a pause.
   */
  execute(buf: Buffer, sink: ResponseSink): number {
    const end = buf.length;
    let pos = 0;
    for (;;) {
      const state = this.state;
      if (state === S_BODY_DONE) {
        this.state = S_DONE;
        sink.onComplete({});
        return pos;
      }
      if (pos >= end || state === S_DONE) return pos;
      switch (state) {
        case S_BODY:
        case S_CHUNK_DATA: {
          const avail = end - pos;
          const n = avail < this.remaining ? avail : this.remaining;
          const chunk = n === end ? buf : buf.subarray(pos, pos + n);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = state === S_BODY ? S_BODY_DONE : S_CHUNK_CR;
          if (!sink.onBody(chunk)) return pos;
          break;
        }
        case S_BODY_EOF: {
          const chunk = pos === 0 ? buf : buf.subarray(pos);
          pos = end;
          if (!sink.onBody(chunk)) return pos;
          break;
        }
        case S_CHUNK_CR:
        case S_CHUNK_LF: {
          // RFC 9112 §7.1: chunk-data is followed by CRLF, nothing else.
          if (buf[pos++] !== (state === S_CHUNK_CR ? 0x0d : 0x0a)) return this.fail('chunk data not followed by CRLF');
          if (state === S_CHUNK_CR) this.state = S_CHUNK_LF;
          else {
            this.state = S_CHUNK_SIZE;
            this.lineBytes = 0;
          }
          break;
        }
        case S_ERROR:
          return -1;
        default: {
          // A line: status line, header or trailer field, chunk-size line.
          const line = this.readLine(buf, pos, end);
          pos = this.next;
          if (line === null) {
            if (this.state === S_ERROR) return -1;
            return pos;
          }
          if (state === S_STATUS) {
            if (!this.statusLine(line)) return -1;
          } else if (state === S_HEADER) {
            if (line.length === 0) {
              if (!this.endOfHead()) return -1;
              if (this.state === S_STATUS) continue; // an interim 1xx, skipped
              if (this.state === S_UPGRADED) {
                const fields = this.fields!;
                this.fields = null;
                this.state = S_DONE;
                sink.onUpgrade?.(this.status, fields);
                return pos;
              }
              if (!sink.onHead(this.status, this.reason, this.fields!, this.keepAlive)) {
                this.fields = null;
                return pos;
              }
              this.fields = null;
            } else if (!this.field(line, this.fields!)) return -1;
          } else if (state === S_CHUNK_SIZE) {
            if (!this.chunkSize(line)) return -1;
          } else if (line.length === 0) {
            // End of the trailer section (RFC 9112 §7.1.2).
            const trailers = this.fields ?? {};
            this.fields = null;
            this.state = S_DONE;
            sink.onComplete(trailers);
            return pos;
          } else if (!this.field(line, (this.fields ??= {}))) return -1;
        }
      }
    }
  }

  // === lines ===

  /**
   * One CRLF-terminated line starting at `pos`, without its CRLF; null when the chunk ends first
   * (the piece is kept for the next call) or the line is invalid (state S_ERROR). RFC 9112 §2.2
   * lets a recipient accept a bare LF; we do not, as llhttp does not.
   */
  private readLine(buf: Buffer, pos: number, end: number): string | null {
    const lf = buf.indexOf(0x0a, pos);
    const taken = (lf === -1 ? end : lf + 1) - pos;
    this.lineBytes += taken;
    if (this.lineBytes > MAX_HEAD_BYTES) {
      this.fail(`head or chunk line over ${MAX_HEAD_BYTES} bytes`);
      return null;
    }
    if (lf === -1) {
      this.partial.push(buf.subarray(pos, end));
      this.partialLength += taken;
      this.next = end;
      return null;
    }
    this.next = lf + 1;
    if (this.partialLength === 0) {
      if (lf === pos || buf[lf - 1] !== 0x0d) {
        this.fail('line ends in a bare LF');
        return null;
      }
      return latin1(buf, pos, lf - 1);
    }
    this.partial.push(buf.subarray(pos, lf + 1));
    const whole = Buffer.concat(this.partial, this.partialLength + taken);
    this.partial.length = 0;
    this.partialLength = 0;
    if (whole.length < 2 || whole[whole.length - 2] !== 0x0d) {
      this.fail('line ends in a bare LF');
      return null;
    }
    return latin1(whole, 0, whole.length - 2);
  }

  /** RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]. */
  private statusLine(line: string): boolean {
    if (line.length < 12 || !line.startsWith('HTTP/1.') || line.charCodeAt(8) !== 0x20) return this.bad('invalid status line');
    const minor = line.charCodeAt(7);
    if (minor !== 0x30 && minor !== 0x31) return this.bad('not an HTTP/1.0 or HTTP/1.1 response');
    let status = 0;
    for (let i = 9; i < 12; i++) {
      const d = line.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) return this.bad('invalid status code');
      status = status * 10 + d;
    }
    if (status < 100) return this.bad('invalid status code');
    // Some servers end the line right after the code; the SP and reason are then absent.
    if (line.length > 12 && line.charCodeAt(12) !== 0x20) return this.bad('invalid status line');
    const reason = line.length > 13 ? line.slice(13) : '';
    if (INVALID_FIELD_CHAR.test(reason)) return this.bad('invalid character in the reason phrase');
    this.http11 = minor === 0x31;
    this.status = status;
    this.reason = reason;
    this.fields = {};
    this.state = S_HEADER;
    return true;
  }

  /** RFC 9112 §5: field-line = field-name ":" OWS field-value OWS. */
  private field(line: string, into: Fields): boolean {
    const first = line.charCodeAt(0);
    // §5.2: obs-fold is obsolete; a recipient may reject it (a folded line can hide a field).
    if (first === 0x20 || first === 0x09) return this.bad('obsolete line folding');
    if (INVALID_FIELD_CHAR.test(line)) return this.bad('NUL, CR or control character in a header line');
    const colon = line.indexOf(':');
    if (colon <= 0) return this.bad('header line without a name and colon');
    const name = line.slice(0, colon);
    // §5.1: no whitespace between name and colon (a classic smuggling vector); TOKEN rejects it.
    if (!TOKEN.test(name)) return this.bad(`invalid header name "${name}"`);
    const value = trimOws(line, colon + 1, line.length);
    const key = name.toLowerCase();
    if (key === '__proto__') return true; // cannot be an own property of a plain object; no real field has this name
    const prev = into[key];
    if (typeof prev === 'string') into[key] = [prev, value];
    else if (Array.isArray(prev)) prev.push(value);
    else into[key] = value; // undefined, or an Object.prototype member such as `constructor`: shadow it
    return true;
  }

  // === framing ===

  /** The head is complete: decide the body's framing by RFC 9112 §6.3. */
  private endOfHead(): boolean {
    const status = this.status;
    const fields = this.fields!;
    if (status < 200) {
      // RFC 9110 §15.2: interim responses come before the final one and carry no body. 101
      // means the connection is no longer HTTP: only an answer to a request that asked for it.
      if (status === 101) {
        if (!this.upgrade) return this.bad('101 Switching Protocols to a request that asked for no upgrade');
        this.state = S_UPGRADED;
        return true;
      }
      this.state = S_STATUS;
      this.lineBytes = 0;
      this.fields = null;
      return true;
    }
    const te = fields['transfer-encoding'];
    const cl = fields['content-length'];
    // §6.1: a message with both is a smuggling attempt or a broken intermediary; close either way.
    if (te !== undefined && cl !== undefined) return this.bad('both Transfer-Encoding and Content-Length');
    // HTTP/1.0 responses are not reused (keep-alive there is an opt-in we never make).
    let keepAlive = this.http11 && !hasCloseToken(fields['connection']);
    if (this.isHead || status === 204 || status === 304) {
      this.state = S_BODY_DONE; // §6.3 rules 1 and 2
    } else if (te !== undefined) {
      if (lastCodingIsChunked(te)) {
        this.state = S_CHUNK_SIZE; // rule 4
        this.lineBytes = 0;
      } else {
        this.state = S_BODY_EOF; // rule 4: a response whose final coding is not chunked runs to the close
        keepAlive = false;
      }
    } else if (cl !== undefined) {
      const length = parseContentLength(cl); // rule 5
      if (length < 0) return this.bad(`invalid or differing Content-Length "${String(cl)}"`);
      this.remaining = length;
      this.state = length === 0 ? S_BODY_DONE : S_BODY;
    } else {
      this.state = S_BODY_EOF; // rule 8
      keepAlive = false;
    }
    this.keepAlive = keepAlive;
    return true;
  }

  /** RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF; extensions are ignored (§7.1.1). */
  private chunkSize(line: string): boolean {
    let size = 0;
    let i = 0;
    const n = line.length;
    for (; i < n; i++) {
      const c = line.charCodeAt(i);
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) break;
      // Stay within Number's exact integers (2^53): no size wraps around.
      if (size > 0x1ffffffffffff) return this.bad('chunk size too large');
      size = size * 16 + d;
    }
    if (i === 0) return this.bad('missing chunk size');
    if (i < n) {
      let j = i;
      while (j < n && (line.charCodeAt(j) === 0x20 || line.charCodeAt(j) === 0x09)) j++;
      if (j === n || line.charCodeAt(j) !== 0x3b) return this.bad('invalid chunk size');
      if (INVALID_FIELD_CHAR.test(line)) return this.bad('control character in a chunk extension');
    }
    this.lineBytes = 0;
    if (size === 0) {
      this.state = S_TRAILER; // last-chunk, then the trailer section
    } else {
      this.remaining = size;
      this.state = S_CHUNK_DATA;
    }
    return true;
  }

  private fail(reason: string): -1 {
    this.error = reason;
    this.state = S_ERROR;
    this.partial.length = 0;
    this.partialLength = 0;
    this.fields = null;
    return -1;
  }

  private bad(reason: string): false {
    this.fail(reason);
    return false;
  }
}

/**
 * RFC 9110 §8.6: a recipient may take a list of identical values ("42, 42", or the field
 * repeated) as one; differing values are unrecoverable. -1 when invalid.
 */
export function parseContentLength(value: string | string[]): number {
  if (typeof value === 'string' && DIGITS.test(value)) return Number(value);
  const parts = (typeof value === 'string' ? value : value.join(',')).split(',');
  let length = -1;
  for (const part of parts) {
    const t = part.trim();
    if (!DIGITS.test(t)) return -1;
    const n = Number(t);
    if (length !== -1 && n !== length) return -1;
    length = n;
  }
  return length;
}

function lastCodingIsChunked(te: string | string[]): boolean {
  const s = typeof te === 'string' ? te : te.join(',');
  if (s === 'chunked') return true;
  return s.slice(s.lastIndexOf(',') + 1).trim().toLowerCase() === 'chunked';
}

/** RFC 9112 §9.6: `Connection: close` (among other tokens, any case). */
function hasCloseToken(value: string | string[] | undefined): boolean {
  if (value === undefined || value === 'keep-alive') return false;
  if (value === 'close') return true;
  const s = typeof value === 'string' ? value : value.join(',');
  for (const token of s.split(',')) if (token.trim().toLowerCase() === 'close') return true;
  return false;
}

/**
 * How long a connection may idle after a response: `idleMs`, lowered (never raised) by the
 * response's `Keep-Alive: timeout=N` to N s minus KEEP_ALIVE_THRESHOLD_MS, as undici does.
 * A result <= 0 means: do not reuse the connection.
 */
export function keepAliveIdleMs(header: string | string[] | undefined, idleMs: number): number {
  if (header === undefined) return idleMs;
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(typeof header === 'string' ? header : header.join(','));
  if (!m) return idleMs;
  const ms = Number(m[1]) * 1000 - KEEP_ALIVE_THRESHOLD_MS;
  return ms < idleMs ? ms : idleMs;
}
