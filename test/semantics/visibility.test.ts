/** Istio's exportTo, as the compiler and the analyzers both apply it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isExportedTo } from '../../src/semantics/visibility.js';

test('absent, empty or * is everywhere; . is the own namespace; ~ is nowhere; else the namespaces listed', () => {
  assert.ok(isExportedTo(undefined, 'prod', 'dev'));
  assert.ok(isExportedTo([], 'prod', 'dev'));
  assert.ok(isExportedTo(['*'], 'prod', 'dev'));
  assert.ok(isExportedTo(['.'], 'prod', 'prod'));
  assert.ok(!isExportedTo(['.'], 'prod', 'dev'));
  assert.ok(!isExportedTo(['~'], 'prod', 'prod'));
  assert.ok(isExportedTo(['.', 'dev'], 'prod', 'dev'));
  assert.ok(!isExportedTo(['qa'], 'prod', 'dev'));
});
