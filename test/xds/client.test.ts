/**
 * The push client against a scripted control plane (a raw TCP server speaking the protocol
 * by hand), so each step of the exchange is observable: merging pushes during a slow apply,
 * keepalive, a malformed frame from the server, the version in HELLO, and retry on refusal.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { PushClient } from '../../src/xds/client.js';
import type { PushClientOptions } from '../../src/xds/client.js';
import { XdsErrorCode, encodeFrame } from '../../src/xds/protocol.js';
import { RawPeer, configFor, nodeFor, tagOf, waitFor, waitForCount } from './helpers.js';

const TIMEOUT = { timeout: 20_000 };
const node = nodeFor('reviews');

/** A control plane whose every move the test makes by hand. */
class ScriptedServer {
  readonly server: net.Server;
  private readonly peers: RawPeer[] = [];
  private waiters: ((peer: RawPeer) => void)[] = [];

  private constructor() {
    this.server = net.createServer((socket) => {
      const peer = RawPeer.wrap(socket);
      this.peers.push(peer);
      const waiter = this.waiters.shift();
      if (waiter) waiter(peer);
    });
  }

  static async start(): Promise<ScriptedServer> {
    const s = new ScriptedServer();
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', () => resolve()));
    return s;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The nth accepted connection (0-based), when it comes. */
  connection(n: number): Promise<RawPeer> {
    if (this.peers[n]) return Promise.resolve(this.peers[n]);
    return new Promise((resolve) => {
      const want = () => (this.peers[n] ? resolve(this.peers[n]) : this.waiters.push(want));
      this.waiters.push(want);
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all(this.peers.map((p) => p.destroy()));
    await closed;
  }
}

function push(peer: RawPeer, tag: string, n: number): ProxyConfig {
  const config = { ...configFor(node, tag), version: `${n}-${tag}` };
  peer.send(encodeFrame({ type: 'push', version: config.version, nonce: `n${n}`, config }));
  return config;
}

/** Resolves once the client has read everything sent before it (its pong answers our ping). */
async function barrier(peer: RawPeer, id: number): Promise<void> {
  peer.send(encodeFrame({ type: 'ping', id }));
  const pong = await peer.frame('pong');
  assert.equal(pong.id, id);
}

function client(port: number, options: Partial<PushClientOptions> = {}): PushClient {
  return new PushClient({
    host: '127.0.0.1',
    port,
    node,
    apply: () => {},
    random: new SeededRandom(3),
    backoff: { initialMs: 5, maxMs: 20 },
    ...options,
  });
}

describe('push client', () => {
  test('pushes that arrive during a slow apply are merged: only the newest is applied next', TIMEOUT, async () => {
    const server = await ScriptedServer.start();
    const applied: string[] = [];
    let release: (() => void) | undefined;
    const c = client(server.port, {
      apply: async (config) => {
        if (tagOf(config) === 'v2') await new Promise<void>((resolve) => (release = resolve));
        applied.push(tagOf(config)!);
      },
    });
    try {
      c.start();
      const peer = await server.connection(0);
      const hello = await peer.frame('hello');
      assert.deepEqual(hello.node, node);
      assert.equal(hello.version, undefined);

      push(peer, 'v1', 1);
      assert.deepEqual(await peer.frame('ack'), { type: 'ack', version: '1-v1', nonce: 'n1' });

      push(peer, 'v2', 2); // held inside apply until released
      push(peer, 'v3', 3);
      push(peer, 'v4', 4);
      await barrier(peer, 1);
      assert.equal(tagOf(c.config), 'v1', 'still serving v1 while v2 is being applied');
      release!();
      assert.deepEqual(await peer.frame('ack'), { type: 'ack', version: '2-v2', nonce: 'n2' });
      assert.deepEqual(await peer.frame('ack'), { type: 'ack', version: '4-v4', nonce: 'n4' });
      await barrier(peer, 2);
      assert.deepEqual(applied, ['v1', 'v2', 'v4']);
      assert.equal(c.version, '4-v4');
      assert.equal(peer.frames.filter((f) => f.type === 'ack' || f.type === 'nack').length, 3);
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('a NACK reports the version still served and the error code and message', TIMEOUT, async () => {
    const server = await ScriptedServer.start();
    const c = client(server.port, {
      apply: (config) => {
        if (tagOf(config) === 'bad') throw Object.assign(new Error('listener port 70000 out of range'), { code: 'SNW_ERR_BAD_LISTENER' });
      },
    });
    try {
      c.start();
      const peer = await server.connection(0);
      // Rejected with nothing to fall back on: the NACK says so with an empty version.
      push(peer, 'bad', 1);
      assert.deepEqual(await peer.frame('nack'), { type: 'nack', version: '', nonce: 'n1', reason: 'SNW_ERR_BAD_LISTENER: listener port 70000 out of range' });
      assert.equal(c.config, undefined);
      push(peer, 'good', 2);
      await peer.frame('ack');
      push(peer, 'bad', 3);
      const nack = await peer.frame('nack');
      assert.equal(nack.version, '2-good');
      assert.equal(nack.nonce, 'n3');
      assert.equal(tagOf(c.config), 'good');
      // The applied config is frozen: nothing can change what the proxy serves behind its back.
      assert.ok(Object.isFrozen(c.config) && Object.isFrozen(c.config!.routeConfigs[0]));
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('a malformed frame from the server closes that connection; the client reconnects and reports its version', TIMEOUT, async () => {
    const server = await ScriptedServer.start();
    const c = client(server.port);
    try {
      c.start();
      const first = await server.connection(0);
      push(first, 'v1', 1);
      await first.frame('ack');
      const lost = waitFor(c, 'disconnected');
      first.send('{"type":"push","version":1}\n');
      const close = await first.frame('close');
      assert.equal(close.code, XdsErrorCode.MalformedFrame);
      const [info] = await lost;
      assert.equal(info.initiator, 'local');
      assert.equal(tagOf(c.config), 'v1');

      const second = await server.connection(1);
      const hello = await second.frame('hello');
      assert.equal(hello.version, '1-v1');
      assert.equal(tagOf(c.config), 'v1');
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('the initial config option is served and reported in HELLO', TIMEOUT, async () => {
    const server = await ScriptedServer.start();
    const initial = { config: configFor(node, 'from-disk'), version: '9-abc' };
    const c = client(server.port, { initial });
    try {
      assert.equal(tagOf(c.config), 'from-disk');
      c.start();
      const peer = await server.connection(0);
      assert.equal((await peer.frame('hello')).version, '9-abc');
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('keepalive: pings are answered and keep the connection; silence drops it', TIMEOUT, async () => {
    const server = await ScriptedServer.start();
    const clock = new ManualClock();
    const c = client(server.port, { clock, keepaliveMs: 1000, keepaliveTimeoutMs: 500 });
    try {
      const connected = waitFor(c, 'connected');
      c.start();
      await connected;
      const peer = await server.connection(0);
      await peer.frame('hello');

      // An answering server keeps the connection through several keepalive periods.
      for (let i = 1; i <= 3; i++) {
        clock.advance(1000);
        const ping = await peer.frame('ping');
        peer.send(encodeFrame({ type: 'pong', id: ping.id as number }));
        await barrier(peer, 100 + i);
      }
      assert.equal(c.state, 'connected');

      // A server that stops answering is given up on after keepaliveMs + keepaliveTimeoutMs.
      const lost = waitFor(c, 'disconnected');
      clock.advance(1000); // ping, unanswered
      await peer.frame('ping');
      clock.advance(1000); // 2000 ms of silence >= 1500
      const [info] = await lost;
      assert.equal(info.code, XdsErrorCode.PeerTimeout);
      assert.equal(c.state, 'backoff');
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('a refused connection is retried with growing, capped, jittered delays', TIMEOUT, async () => {
    // A port that was just free: nothing listens on it.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const clock = new ManualClock();
    const c = client(port, { clock, backoff: { initialMs: 100, factor: 2, maxMs: 400 } });
    const delays: number[] = [];
    c.on('backoff', (delay) => delays.push(delay));
    try {
      c.start();
      for (let attempt = 1; attempt <= 5; attempt++) {
        await waitForCount(c, 'backoff', attempt - delays.length);
        clock.advance(delays[attempt - 1]!);
      }
      await waitForCount(c, 'backoff', 6 - delays.length);
      const caps = [100, 200, 400, 400, 400, 400];
      delays.forEach((d, i) => assert.ok(d >= caps[i]! / 2 && d < caps[i]!, `retry ${i}: ${d}`));
      assert.equal(c.config, undefined);
    } finally {
      await c.close();
    }
  });
  test('a control plane that accepts and closes at once gets growing delays too; an answer resets them', TIMEOUT, async () => {
    const server = await ScriptedServer.start();
    const clock = new ManualClock();
    const c = client(server.port, { clock, backoff: { initialMs: 100, factor: 2, maxMs: 400 } });
    const delays: number[] = [];
    c.on('backoff', (delay) => delays.push(delay));
    try {
      c.start();
      for (let attempt = 0; attempt < 3; attempt++) {
        const peer = await server.connection(attempt);
        await peer.frame('hello');
        await peer.destroy();
        await waitForCount(c, 'backoff', attempt + 1 - delays.length);
        clock.advance(delays[attempt]!);
      }
      const caps = [100, 200, 400];
      delays.forEach((d, i) => assert.ok(d >= caps[i]! / 2 && d < caps[i]!, `retry ${i}: ${d}`));
      // This time the control plane answers before going away: the next delay starts over.
      const peer = await server.connection(3);
      await peer.frame('hello');
      await barrier(peer, 1);
      await peer.destroy();
      await waitForCount(c, 'backoff', 4 - delays.length);
      assert.ok(delays[3]! < 100, `after an answer the backoff starts over: ${delays[3]}`);
    } finally {
      await c.close();
      await server.close();
    }
  });
});
