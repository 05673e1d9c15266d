import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapStatistics } from 'node:v8';
import { GarbageBound } from '../../src/core/garbage-bound.js';

const MB = 1024 * 1024;
const usedHeap = () => getHeapStatistics().used_heap_size;

/**
 * About `megabytes` MB of small objects, held until `drop()`: kept alive while they are made,
 * so V8 cannot collect them on its own before the test lets them go.
 */
function heldObjects(megabytes: number): { drop(): void } {
  let held: { index: number; text: string }[] | undefined = [];
  for (let i = 0; i < megabytes * 8_000; i++) held.push({ index: i, text: `entry ${i} `.repeat(8) });
  return { drop: () => (held = undefined) };
}

test('garbage past the slack is collected between two pieces of a job, and the heap falls back', () => {
  const bound = new GarbageBound(8 * MB);
  heldObjects(40).drop();
  const before = usedHeap();
  bound.check();
  assert.equal(bound.collections, 1);
  const after = usedHeap();
  assert.ok(before - after > 20 * MB, `a full collection frees the dropped objects (heap ${Math.round(before / MB)} -> ${Math.round(after / MB)} MB)`);
  // What survived is the new floor: no collection again until the job has left more garbage.
  bound.check();
  assert.equal(bound.collections, 1);
  heldObjects(40).drop();
  bound.check();
  assert.equal(bound.collections, 2);
});

test('no collection while the heap stays within the slack', () => {
  const bound = new GarbageBound(512 * MB);
  heldObjects(20).drop();
  bound.check();
  assert.equal(bound.collections, 0);
});
