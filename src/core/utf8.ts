/**
 * Strict UTF-8 (RFC 3629): the control plane decodes every request body with it, so invalid
 * bytes are refused with where they are instead of being stored as U+FFFD replacement
 * characters, which the WHATWG decoder node uses by default substitutes silently.
 */
import { isUtf8 } from 'node:buffer';
import { InputError } from './errors.js';

/**
 * The byte offset of the first sequence that is not well-formed UTF-8 (RFC 3629 §4: no
 * overlong forms, no surrogates, nothing past U+10FFFF, no truncated sequence), or -1 when
 * all of `bytes` is. Valid input, the usual case, costs one pass of node's native check.
 */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    const continuation = lead >= 0xc2 && lead <= 0xdf ? 1 : lead >= 0xe0 && lead <= 0xef ? 2 : lead >= 0xf0 && lead <= 0xf4 ? 3 : -1;
    if (continuation < 0 || i + continuation >= n) return i;
    // The second byte's range narrows for the leads that could otherwise encode an overlong
    // form (E0, F0), a surrogate (ED) or a code point past U+10FFFF (F4): RFC 3629 §4's table.
    const second = bytes[i + 1]!;
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    if (second < low || second > high) return i;
    for (let k = 2; k <= continuation; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += continuation + 1;
  }
  return -1;
}

/** Input that is not UTF-8; `offset` is the byte where the first bad sequence starts. */
export class Utf8Error extends InputError {
  constructor(readonly offset: number) {
    super('SNW_ERR_INVALID_UTF8', `not valid UTF-8: the bytes at offset ${offset} are not a UTF-8 character; send UTF-8 text`);
    this.name = 'Utf8Error';
  }
}

/** Decodes UTF-8, throwing `Utf8Error` (with the offset) on the first invalid sequence. */
export function decodeUtf8Strict(bytes: Buffer): string {
  const offset = invalidUtf8Offset(bytes);
  if (offset >= 0) throw new Utf8Error(offset);
  return bytes.toString('utf8');
}

/**
 * Strict UTF-8 decoding of text that arrives in pieces: `write` each piece, then `end` for
 * the text (or `decode` each piece and `finish`, to take the text piece by piece). Throws `Utf8Error` with the offset in the whole input, as decodeUtf8Strict does.
 * Nothing of a piece is kept but its text and a copy of its last 3 bytes: a bad sequence
 * (at most 4 bytes) that began in an earlier piece began in those.
 */
export class StrictUtf8Stream {
  // The WHATWG decoder with `fatal` refuses what RFC 3629 refuses (overlong forms,
  // surrogates, past U+10FFFF, truncated sequences); invalidUtf8Offset then says where.
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly parts: string[] = [];
  /** The input's last (up to) 3 bytes so far. */
  private tail: Uint8Array = new Uint8Array(0);
  private total = 0;

  write(bytes: Uint8Array): void {
    this.parts.push(this.decode(bytes));
  }

  end(): string {
    this.parts.push(this.finish());
    const text = this.parts.join('');
    this.parts.length = 0;
    return text;
  }

  /** The text of `bytes` (a character cut at its end comes with the next piece), for a caller that reads the text piece by piece instead of whole; nothing is kept. */
  decode(bytes: Uint8Array): string {
    let text: string;
    try {
      text = this.decoder.decode(bytes, { stream: true });
    } catch {
      throw new Utf8Error(this.offsetOfError(bytes));
    }
    this.total += bytes.length;
    this.tail = Uint8Array.from((bytes.length >= 3 ? bytes : Buffer.concat([this.tail, bytes])).subarray(-3));
    return text;
  }

  /** The end of the input, after `decode`: the text still held (empty unless the input ends inside a character, which throws). */
  finish(): string {
    try {
      return this.decoder.decode();
    } catch {
      // A sequence cut short by the end of the input, within its last 3 bytes.
      throw new Utf8Error(this.offsetOfError(new Uint8Array(0)));
    }
  }

  /** Where the first bad sequence is, `bytes` being the piece the decoder refused. */
  private offsetOfError(bytes: Uint8Array): number {
    // Continuation bytes at the start of the tail end a sequence that began before it, and
    // was valid (the decoder took it).
    let start = 0;
    while (start < this.tail.length && (this.tail[start]! & 0xc0) === 0x80) start++;
    const joined = Buffer.concat([this.tail.subarray(start), bytes]);
    const offset = invalidUtf8Offset(joined);
    return this.total - this.tail.length + start + (offset >= 0 ? offset : joined.length);
  }
}
