/** Label selectors: Istio's workload selectors, and a Kubernetes Service's selector. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectorMatches, serviceSelects } from '../../src/semantics/labels.js';

const labels = { app: 'reviews', version: 'v2' };

test('a selector selects labels that carry every one of its labels, with the same value', () => {
  assert.ok(selectorMatches({ app: 'reviews' }, labels));
  assert.ok(selectorMatches({ app: 'reviews', version: 'v2' }, labels));
  assert.ok(!selectorMatches({ app: 'reviews', version: 'v1' }, labels));
  assert.ok(!selectorMatches({ tier: 'web' }, labels));
  assert.ok(!selectorMatches({ app: 'reviews' }, undefined));
});

test('an absent or empty workload selector selects every workload', () => {
  assert.ok(selectorMatches(undefined, labels));
  assert.ok(selectorMatches({}, labels));
  assert.ok(selectorMatches(null, {}));
});

test('a Service without a selector (or with an empty one) selects no workload', () => {
  assert.ok(serviceSelects({ app: 'reviews' }, labels));
  assert.ok(!serviceSelects({ app: 'ratings' }, labels));
  assert.ok(!serviceSelects(undefined, labels));
  assert.ok(!serviceSelects({}, labels));
});
