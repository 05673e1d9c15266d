import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RandomHex } from '../../src/core/random-hex.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('uuids are version 4 with the RFC variant, and do not repeat', () => {
  const ids = new RandomHex();
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const id = ids.uuid();
    assert.match(id, UUID_V4);
    seen.add(id);
  }
  assert.equal(seen.size, 20_000);
});

test('hex is cut in order from the injected source and refilled when used up', () => {
  // Refill number c yields bytes c0, c1, c2, ... so each refill is recognisable.
  const refills: number[] = [];
  const fill = (n: number) => {
    refills.push(n);
    return Buffer.from(Array.from({ length: n }, (_, k) => ((refills.length - 1) << 4) | k));
  };
  const ids = new RandomHex(fill, 4);
  assert.equal(ids.take(4), '0001');
  assert.equal(ids.take(4), '0203');
  assert.equal(ids.take(8), '10111213', 'the 4-byte pool is used up: refilled');
  // A request larger than the refill size gets a pool of its own size.
  assert.equal(ids.take(10), '2021222324');
  assert.deepEqual(refills, [4, 4, 5]);
});

test('a uuid keeps the source bits but the version and variant', () => {
  assert.equal(new RandomHex((n) => Buffer.alloc(n, 0xff), 16).uuid(), 'ffffffff-ffff-4fff-bfff-ffffffffffff');
  assert.equal(new RandomHex((n) => Buffer.alloc(n, 0), 16).uuid(), '00000000-0000-4000-8000-000000000000');
});
