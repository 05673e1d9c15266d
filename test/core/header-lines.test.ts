/**
 * Field lines the proxy builds once and sends as they are: a line is only made from a value
 * HTTP/1.1 can carry, and clients that take headers as an object get the same fields back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addFieldLines, fieldLine } from '../../src/core/header-lines.js';

test('fieldLine: a valid field becomes one CRLF-terminated line', () => {
  assert.equal(fieldLine('x-envoy-peer-metadata-id', 'sidecar~10.0.0.1~reviews-v1.default'), 'x-envoy-peer-metadata-id: sidecar~10.0.0.1~reviews-v1.default\r\n');
  assert.equal(fieldLine('x-obs', 'caf\u00e9 \ttab'), 'x-obs: caf\u00e9 \ttab\r\n', 'obs-text and tabs are field content');
});

test('fieldLine: a value that could end its line, or a bad name, is refused with the field named', () => {
  for (const value of ['a\r\nx-injected: 1', 'a\nb', 'a\u0000b', 'snow\u2603']) {
    assert.throws(() => fieldLine('x-id', value), /header "x-id"/);
  }
  assert.throws(() => fieldLine('bad name', 'v'), /invalid header name "bad name"/);
  assert.throws(() => fieldLine('', 'v'), /invalid header name/);
});

test('addFieldLines: sets each field on the object, replacing one of the same name', () => {
  const headers: Record<string, string> = { host: 'reviews:9080', 'x-b3-sampled': '1' };
  addFieldLines(headers, 'x-b3-traceid: 0af7651916cd43dd8448eb211c80319c\r\nx-b3-sampled: 0\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\r\n');
  assert.deepEqual(headers, {
    host: 'reviews:9080',
    'x-b3-sampled': '0',
    'x-b3-traceid': '0af7651916cd43dd8448eb211c80319c',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00',
  });
  assert.deepEqual(addFieldLines({}, ''), {});
});
