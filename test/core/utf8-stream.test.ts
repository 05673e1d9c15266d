/**
 * Strict UTF-8 over a body that arrives in pieces (core/utf8.ts StrictUtf8Stream, which the
 * control plane's body reader uses): the same text, and the same refusal at the same byte
 * offset, as decoding the whole input at once, wherever the pieces split a sequence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/core/random.js';
import { StrictUtf8Stream, Utf8Error, decodeUtf8Strict } from '../../src/core/utf8.js';

/** The text, or the offset decodeUtf8Strict / the stream refuses it at. */
function whole(bytes: Buffer): string | number {
  try {
    return decodeUtf8Strict(bytes);
  } catch (err) {
    if (err instanceof Utf8Error) return err.offset;
    throw err;
  }
}

function inPieces(bytes: Buffer, cuts: number[]): string | number {
  const stream = new StrictUtf8Stream();
  try {
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      stream.write(bytes.subarray(from, cut));
      from = cut;
    }
    return stream.end();
  } catch (err) {
    if (err instanceof Utf8Error) return err.offset;
    throw err;
  }
}

// Valid characters of every length, and the bytes RFC 3629 refuses: a lone continuation,
// overlong forms, a surrogate, past U+10FFFF, a lead without its continuation.
const valid = ['a', 'é', '€', '𝄞', 'line\n'].map((s) => Buffer.from(s));
const invalid = [[0x80], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xff]].map((b) => Buffer.from(b));

test('decoded in pieces, any input gives the text or the offset that decoding it whole gives', () => {
  const random = new SeededRandom(22);
  const pick = <T>(list: T[]) => list[Math.floor(random.next() * list.length)]!;
  for (let round = 0; round < 3000; round++) {
    const parts: Buffer[] = [];
    const length = 1 + Math.floor(random.next() * 12);
    for (let i = 0; i < length; i++) parts.push(random.next() < 0.15 ? pick(invalid) : pick(valid));
    const bytes = Buffer.concat(parts);
    const cuts = [...new Set(Array.from({ length: Math.floor(random.next() * 6) }, () => Math.floor(random.next() * bytes.length)))].sort((a, b) => a - b);
    assert.deepEqual(inPieces(bytes, cuts), whole(bytes), `${bytes.toString('hex')} cut at ${cuts.join(',')}`);
  }
});

test('a sequence cut short by the end of the input is refused at its first byte', () => {
  const bytes = Buffer.from([0x61, 0x62, 0xf0, 0x9d, 0x84]);
  assert.equal(inPieces(bytes, [3, 4]), 2);
  assert.equal(inPieces(bytes, [1]), 2);
});
