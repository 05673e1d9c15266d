/**
 * Pure pieces of the push protocol: framing, message parsing, versions, content hashing
 * and reconnect backoff.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/core/random.js';
import { backoffDelay, DEFAULT_BACKOFF } from '../../src/xds/client.js';
import {
  FrameDecoder,
  XdsError,
  XdsErrorCode,
  encodeFrame,
  formatVersion,
  parseClientMessage,
  parseServerMessage,
  parseVersion,
} from '../../src/xds/protocol.js';
import { configHash } from '../../src/xds/server.js';
import { configFor, nodeFor } from './helpers.js';

describe('FrameDecoder', () => {
  test('reassembles frames split across chunks, including inside a multi-byte character', () => {
    const decoder = new FrameDecoder(1024);
    const bytes = Buffer.from(encodeFrame({ type: 'close', code: 'X', reason: 'café ☕' }) + encodeFrame({ type: 'ping', id: 1 }));
    const frames: string[] = [];
    // One byte at a time is the worst case for a reader.
    for (let i = 0; i < bytes.length; i++) frames.push(...decoder.push(bytes.subarray(i, i + 1)));
    assert.deepEqual(frames.map((f) => JSON.parse(f)), [
      { type: 'close', code: 'X', reason: 'café ☕' },
      { type: 'ping', id: 1 },
    ]);
    assert.equal(decoder.bufferedBytes, 0);
  });

  test('returns several frames from one chunk', () => {
    const decoder = new FrameDecoder(1024);
    const frames = decoder.push(Buffer.from('{"a":1}\n{"b":2}\n{"c"'));
    assert.deepEqual(frames, ['{"a":1}', '{"b":2}']);
    assert.deepEqual(decoder.push(Buffer.from(':3}\n')), ['{"c":3}']);
  });

  test('a newline inside a string value is escaped, so it never splits a frame', () => {
    const frame = encodeFrame({ type: 'close', code: 'X', reason: 'line one\nline two' });
    assert.equal(frame.indexOf('\n'), frame.length - 1);
  });

  test('rejects a frame past the limit before its newline arrives', () => {
    const decoder = new FrameDecoder(16);
    decoder.push(Buffer.from('0123456789'));
    assert.throws(
      () => decoder.push(Buffer.from('0123456789')),
      (err: unknown) => err instanceof XdsError && err.code === XdsErrorCode.FrameTooLarge,
    );
    const exact = new FrameDecoder(4);
    assert.deepEqual(exact.push(Buffer.from('1234\n')), ['1234']);
    assert.throws(() => exact.push(Buffer.from('12345\n')), /exceeds the 4-byte limit/);
  });
});

describe('message parsing', () => {
  const malformed = (err: unknown) => err instanceof XdsError && err.code === XdsErrorCode.MalformedFrame;

  test('accepts a full hello and keeps only known node fields', () => {
    const node = { ...nodeFor('reviews', { version: 'v2' }), serviceAccount: 'bookinfo-reviews', extra: 'ignored' };
    const hello = parseClientMessage(JSON.stringify({ type: 'hello', protocol: 1, node, version: '3-abc' }));
    assert.equal(hello.type, 'hello');
    if (hello.type !== 'hello') return;
    assert.equal(hello.version, '3-abc');
    assert.equal(hello.node.serviceAccount, 'bookinfo-reviews');
    assert.deepEqual(hello.node.labels, { app: 'reviews', version: 'v2' });
    assert.equal('extra' in hello.node, false);
  });

  test('names what is wrong with a bad frame', () => {
    assert.throws(() => parseClientMessage('{'), (e) => malformed(e) && /not JSON/.test((e as Error).message));
    assert.throws(() => parseClientMessage('[1]'), (e) => malformed(e) && /JSON object/.test((e as Error).message));
    assert.throws(() => parseClientMessage('{"type":"push"}'), (e) => malformed(e) && /unknown message type "push"/.test((e as Error).message));
    assert.throws(() => parseClientMessage('{"type":"ack","version":"1-a"}'), /ack\.nonce must be a string/);
    assert.throws(() => parseClientMessage('{"type":"hello","protocol":1,"node":{"id":"","mode":"sidecar"}}'), /node\.id must not be empty/);
    assert.throws(
      () => parseClientMessage(JSON.stringify({ type: 'hello', protocol: 1, node: { ...nodeFor('a'), labels: { app: 1 } } })),
      /labels\.app must be a string/,
    );
    assert.throws(() => parseServerMessage('{"type":"push","version":"1-a","nonce":"n1","config":[]}'), /config must be an object/);
    assert.throws(() => parseServerMessage('{"type":"hello"}'), /unknown message type "hello" from the server/);
  });

  test('parses server pushes and keepalives', () => {
    const config = configFor(nodeFor('a'), 'v1');
    const push = parseServerMessage(encodeFrame({ type: 'push', version: '1-a', nonce: 'n1', config }).trim());
    assert.deepEqual(push, { type: 'push', version: '1-a', nonce: 'n1', config });
    assert.deepEqual(parseServerMessage('{"type":"pong","id":4}'), { type: 'pong', id: 4 });
  });
});

describe('versions and hashing', () => {
  test('a version round-trips and junk is not mistaken for one', () => {
    assert.deepEqual(parseVersion(formatVersion(42, 'deadbeef')), { counter: 42, hash: 'deadbeef' });
    for (const junk of ['', 'abc', '-x', 'x-y', '1-', '-1-a']) assert.equal(parseVersion(junk), undefined, junk);
  });

  test('the content hash ignores the version field and sees any change of content', () => {
    const a = configFor(nodeFor('a'), 'v1');
    assert.equal(configHash(a), configHash({ ...configFor(nodeFor('a'), 'v1'), version: 'recompiled' }));
    assert.notEqual(configHash(a), configHash(configFor(nodeFor('a'), 'v2')));
    assert.notEqual(configHash(a), configHash(configFor(nodeFor('b'), 'v1')));
    assert.notEqual(configHash(a), configHash({ ...a, clusters: [{ name: 'c', kind: 'blackhole', protocol: 'http1', connectTimeoutMs: 1, lb: { policy: 'RANDOM' } }] }));
  });
});

describe('backoff', () => {
  test('grows by the factor, is capped, and is jittered within [d/2, d)', () => {
    const random = new SeededRandom(7);
    const delays: number[] = [];
    for (let attempt = 0; attempt < 10; attempt++) {
      const d = Math.min(5000, 100 * 2 ** attempt);
      const delay = backoffDelay(attempt, DEFAULT_BACKOFF, random);
      assert.ok(delay >= d / 2 && delay < d, `attempt ${attempt}: ${delay} not in [${d / 2}, ${d})`);
      delays.push(delay);
    }
    // Capped at 5 s however long the outage lasts.
    assert.ok(backoffDelay(1000, DEFAULT_BACKOFF, random) < 5000);
    // Two proxies with different random streams do not retry in lockstep.
    const other = new SeededRandom(8);
    assert.notDeepEqual(delays, Array.from({ length: 10 }, (_, n) => backoffDelay(n, DEFAULT_BACKOFF, other)));
  });
});
