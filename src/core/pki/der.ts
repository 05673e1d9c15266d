/**
 * Just enough DER (ITU-T X.690) to write a PKCS#10 request: definite lengths, the universal
 * types a CSR uses, context tags. Writing only, for structures this code builds itself; the
 * CA parses what arrives with a full ASN.1 library, and openssl checks the output in tests.
 */

/** A tag-length-value with `contents` concatenated as the value. */
export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const value = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(value.length), value]);
}

/** X.690 8.1.3: short form below 128, else 0x80 | byte count, then the length big-endian. */
function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const sequence = (...contents: Buffer[]) => tlv(0x30, ...contents);
export const set = (...contents: Buffer[]) => tlv(0x31, ...contents);
export const octetString = (value: Buffer) => tlv(0x04, value);
/** A BIT STRING of whole bytes (no unused bits). */
export const bitString = (value: Buffer) => tlv(0x03, Buffer.from([0]), value);
export const NULL = Buffer.from([0x05, 0x00]);
export const INTEGER_ZERO = Buffer.from([0x02, 0x01, 0x00]);
/** `[n]` constructed, context-specific (e.g. the CSR's `attributes [0]`). */
export const context = (n: number, ...contents: Buffer[]) => tlv(0xa0 | n, ...contents);

/** An OBJECT IDENTIFIER from its dotted form (X.690 8.19: base-128 arcs, the first two combined). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [];
  for (const arc of [arcs[0] * 40 + arcs[1], ...arcs.slice(2)]) {
    const chunk = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) chunk.unshift((rest & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** Wraps DER in PEM armour with 64-character lines (RFC 7468). */
export function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
