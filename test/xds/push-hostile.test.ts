/**
 * The push port against peers that are not the proxies they claim to be, over real sockets:
 * a HELLO without a credential, or with another proxy's, gets no config and a closed stream;
 * and reads are bounded, before HELLO and after, so a peer that never sends a newline cannot
 * make the server buffer for it.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyNode } from '../../src/api/proxy-config.js';
import { PushClient } from '../../src/xds/client.js';
import { MAX_HELLO_FRAME_BYTES, MAX_PROXY_FRAME_BYTES, XdsErrorCode } from '../../src/xds/protocol.js';
import { PushServer, type PushAuthenticator } from '../../src/xds/server.js';
import { RawPeer, configFor, nodeFor, waitFor } from './helpers.js';

const TIMEOUT = { timeout: 20_000 };

/** Resolves with `promise`, or rejects naming `what` once `ms` have passed (so no test can hang). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** An authenticator as the control plane's, reduced to a table: credential -> the node id it was given for. */
function tableAuthenticator(table: Record<string, string>): PushAuthenticator {
  return (node, credential) => {
    if (credential === undefined) return 'no credential';
    const owner = table[credential];
    if (owner === undefined) return 'unknown credential';
    return owner === node.id ? undefined : `the credential is for ${owner}, not ${node.id}`;
  };
}

async function start(authenticate?: PushAuthenticator): Promise<{ server: PushServer; port: number }> {
  const server = new PushServer({ source: (node) => configFor(node, `config-of-${node.workload}`), authenticate });
  const { port } = await server.listen(0);
  return { server, port };
}

/** Polls `check` until it holds (5 s at most). */
async function waitForCondition(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const hello = (node: ProxyNode, credential?: string) => JSON.stringify({ type: 'hello', protocol: 2, node, ...(credential !== undefined ? { credential } : {}) }) + '\n';

describe('push port: credentials', () => {
  const reviews = nodeFor('reviews', { version: 'v1' });
  const ratings = nodeFor('ratings');
  const credentials = { 'token-of-reviews': reviews.id, 'token-of-ratings': ratings.id };

  test('a hello without a credential gets no config and a closed stream', TIMEOUT, async () => {
    const { server } = await start(tableAuthenticator(credentials));
    const peer = await RawPeer.connect(server.address().port);
    try {
      peer.send(hello(reviews));
      const close = await within(peer.frame('close'), 5000, 'the close frame');
      await within(peer.closed, 5000, 'the close');
      assert.equal(close.code, XdsErrorCode.Unauthenticated);
      assert.match(String(close.reason), /no credential/);
      assert.deepEqual(peer.frames.map((f) => f.type), ['close'], 'no push before the close');
      assert.equal(server.metrics.unauthenticated, 1);
      assert.equal(server.metrics.pushes, 0);
      assert.deepEqual(server.status(), []);
    } finally {
      await peer.destroy();
      await server.close();
    }
  });

  test('a hello as another proxy, with a valid credential of its own, is refused', TIMEOUT, async () => {
    const { server } = await start(tableAuthenticator(credentials));
    const peer = await RawPeer.connect(server.address().port);
    try {
      // The ratings proxy's credential, presented by a peer that says it is reviews.
      peer.send(hello(reviews, 'token-of-ratings'));
      const close = await within(peer.frame('close'), 5000, 'the close frame');
      assert.equal(close.code, XdsErrorCode.Unauthenticated);
      assert.deepEqual(peer.frames.map((f) => f.type), ['close']);
      assert.equal(server.metrics.pushes, 0);
      assert.equal(server.metrics.protocolErrors, 0, 'a refused credential is counted as such, not as a protocol error');
    } finally {
      await peer.destroy();
      await server.close();
    }
  });

  test('a proxy presenting its own credential gets its own config, and only that', TIMEOUT, async () => {
    const { server, port } = await start(tableAuthenticator(credentials));
    const client = new PushClient({ host: '127.0.0.1', port, node: reviews, credential: 'token-of-reviews', apply: () => {} });
    try {
      const acked = waitFor(server, 'ack');
      client.start();
      await within(acked, 10_000, 'the ACK');
      assert.equal(client.config?.routeConfigs[0]?.name, 'config-of-reviews');
      assert.deepEqual(server.status().map((s) => s.node.id), [reviews.id]);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('a credential checked later (a TokenReview): nothing is built until it is accepted, and a second HELLO meanwhile is refused', TIMEOUT, async () => {
    let answer: ((refused: string | undefined) => void) | undefined;
    const { server } = await start(() => new Promise<string | undefined>((resolve) => (answer = resolve)));
    const peer = await RawPeer.connect(server.address().port);
    try {
      peer.send(hello(reviews, 'token-of-reviews'));
      await waitForCondition(() => answer !== undefined);
      assert.deepEqual(server.status(), [], 'no session while the credential is checked');
      answer!(undefined);
      await within(peer.frame('push'), 5000, 'the config once accepted');
      assert.deepEqual(server.status().map((s) => s.node.id), [reviews.id]);
    } finally {
      await peer.destroy();
      await server.close();
    }
    const { server: second } = await start(() => new Promise<string | undefined>(() => {}));
    const twice = await RawPeer.connect(second.address().port);
    try {
      twice.send(hello(reviews, 'a') + hello(reviews, 'b'));
      const close = await within(twice.frame('close'), 5000, 'the close frame');
      assert.equal(close.code, XdsErrorCode.UnexpectedMessage);
      assert.match(String(close.reason), /second hello/);
    } finally {
      await twice.destroy();
      await second.close();
    }
  });

  test('a client refused for its credential says so and keeps serving its last config', TIMEOUT, async () => {
    const { server, port } = await start(tableAuthenticator(credentials));
    const client = new PushClient({ host: '127.0.0.1', port, node: reviews, credential: 'stolen', apply: () => {}, backoff: { initialMs: 1000, maxMs: 5000 } });
    try {
      const refused = waitFor(client, 'disconnected');
      client.start();
      const [info] = await within(refused, 10_000, 'the refusal');
      assert.equal(info.code, XdsErrorCode.Unauthenticated);
      assert.equal(client.config, undefined);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('push port: bounded reads', () => {
  test('bytes without a newline before hello close the connection once past the hello limit', TIMEOUT, async () => {
    const { server } = await start();
    const peer = await RawPeer.connect(server.address().port);
    try {
      // 1 MiB with no newline: the server must give up long before buffering it all.
      const chunk = 'x'.repeat(64 * 1024);
      const closed = peer.frame('close');
      for (let sent = 0; sent < 1024 * 1024 && !peer.socket.destroyed; sent += chunk.length) peer.send(chunk);
      const close = await within(closed, 5000, 'the close frame');
      assert.equal(close.code, XdsErrorCode.FrameTooLarge);
      assert.match(String(close.reason), new RegExp(`exceeds the ${MAX_HELLO_FRAME_BYTES}-byte limit`));
      await within(peer.closed, 5000, 'the close');
    } finally {
      await peer.destroy();
      await server.close();
    }
  });

  test('a proxy past hello may send larger frames, up to the proxy limit', TIMEOUT, async () => {
    const { server } = await start();
    const peer = await RawPeer.connect(server.address().port);
    try {
      peer.send(hello(nodeFor('big')));
      await within(peer.frame('push'), 5000, 'the first push');
      // A NACK whose reason is over the hello limit is still read...
      peer.send(JSON.stringify({ type: 'nack', version: '', nonce: 'n1', reason: 'r'.repeat(MAX_HELLO_FRAME_BYTES + 10) }) + '\n');
      peer.send('{"type":"ping","id":5}\n');
      assert.equal((await within(peer.frame('pong'), 5000, 'the pong')).id, 5);
      // ...but not a frame past the proxy limit.
      peer.send('{"type":"ping","pad":"' + 'x'.repeat(MAX_PROXY_FRAME_BYTES));
      const close = await within(peer.frame('close'), 5000, 'the close frame');
      assert.equal(close.code, XdsErrorCode.FrameTooLarge);
    } finally {
      await peer.destroy();
      await server.close();
    }
  });
});
