/**
 * The push protocol end to end, over real sockets on port 0: config on connect, ACK/NACK
 * with the last good config kept, debounce and merging, skipping unchanged and unaffected
 * proxies, reconnect and resync after a control-plane restart, malformed frames, and a
 * fleet of 50 proxies reaching SYNCED.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { PushClient } from '../../src/xds/client.js';
import type { ApplyConfig } from '../../src/xds/client.js';
import { XdsErrorCode } from '../../src/xds/protocol.js';
import { PushServer } from '../../src/xds/server.js';
import type { ConfigSource, ProxyStatus, PushRunInfo, PushServerOptions } from '../../src/xds/server.js';
import { RawPeer, configFor, nodeFor, tagOf, waitFor, waitForCount } from './helpers.js';

const TIMEOUT = { timeout: 20_000 };

/** A test world: one server, any number of clients, all closed by `close()`. */
class World {
  readonly clients: PushClient[] = [];
  constructor(readonly server: PushServer, readonly port: number) {}

  static async start(source: ConfigSource, options: Partial<PushServerOptions> = {}): Promise<World> {
    const server = new PushServer({ source, ...options });
    const { port } = await server.listen(0);
    return new World(server, port);
  }

  client(node: ProxyNode, apply: ApplyConfig = () => {}, seed = 1): PushClient {
    const client = new PushClient({
      host: '127.0.0.1',
      port: this.port,
      node,
      apply,
      random: new SeededRandom(seed),
      // Tiny backoff so reconnects happen promptly on real timers.
      backoff: { initialMs: 5, factor: 2, maxMs: 20 },
    });
    this.clients.push(client);
    return client;
  }

  /** Starts a client and resolves once the server has its ACK of the first push. */
  async synced(node: ProxyNode, apply?: ApplyConfig): Promise<PushClient> {
    const client = this.client(node, apply);
    const acked = waitFor(this.server, 'ack', (s: ProxyStatus) => s.node.id === node.id);
    client.start();
    await acked;
    return client;
  }

  statusOf(node: ProxyNode): ProxyStatus {
    const status = this.server.status().find((s) => s.node.id === node.id);
    assert.ok(status, `no status for ${node.id}`);
    return status;
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
    await this.server.close();
  }
}

/** A config source whose content per workload is whatever `tags` says (default "v1"). */
function taggedSource(tags: Map<string, string>): ConfigSource {
  return (node) => configFor(node, tags.get(node.workload) ?? 'v1');
}

describe('push protocol', () => {
  test('a proxy gets its config on connect and ACKs it', TIMEOUT, async () => {
    const world = await World.start(taggedSource(new Map()));
    try {
      const node = nodeFor('reviews', { version: 'v1' });
      const configs: ProxyConfig[] = [];
      const client = await world.synced(node, (c) => void configs.push(c));

      assert.equal(configs.length, 1);
      assert.equal(tagOf(client.config), 'v1');
      assert.deepEqual(client.config?.node, node);
      // The config carries the push version, not the compiler's, so a dump names what was acked.
      assert.equal(client.config?.version, client.version);
      const status = world.statusOf(node);
      assert.equal(status.state, 'SYNCED');
      assert.equal(status.sentVersion, client.version);
      assert.equal(status.ackedVersion, client.version);
      assert.equal(world.server.metrics.pushes, 1);
      assert.equal(world.server.metrics.acks, 1);
      assert.equal(world.server.metrics.connectedProxies, 1);
    } finally {
      await world.close();
    }
  });

  test('a rejected config is NACKed with the reason and the last good config is kept', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    const world = await World.start(taggedSource(tags), { clock });
    try {
      const node = nodeFor('ratings');
      const applied: string[] = [];
      const client = await world.synced(node, (config) => {
        if (tagOf(config) === 'broken') throw new Error('route table "broken" names an unknown cluster');
        applied.push(tagOf(config)!);
      });
      const goodVersion = client.version;

      tags.set('ratings', 'broken');
      const nacked = waitFor(world.server, 'nack');
      const clientNack = waitFor(client, 'nack');
      world.server.requestPush('bad change');
      clock.advance(100);
      const [status] = (await nacked) as [ProxyStatus];
      const [rejectedVersion, reason, serving] = await clientNack;

      assert.equal(status.state, 'NACKED');
      assert.match(status.lastNack!.reason, /unknown cluster/);
      assert.equal(status.lastNack!.version, rejectedVersion);
      assert.equal(status.ackedVersion, goodVersion);
      assert.match(reason, /unknown cluster/);
      assert.equal(serving, goodVersion);
      assert.equal(world.statusOf(node).state, 'NACKED');
      // Still serving the previous good config.
      assert.equal(tagOf(client.config), 'v1');
      assert.equal(client.version, goodVersion);
      assert.deepEqual(applied, ['v1']);
      assert.equal(world.server.metrics.nacks, 1);

      // The same rejected content is not sent again (pilot does not resend a NACKed version).
      const run = waitFor(world.server, 'pushRun');
      world.server.requestPush('unrelated');
      clock.advance(100);
      const [info] = (await run) as [PushRunInfo];
      assert.equal(info.pushed, 0);
      assert.equal(info.unchanged, 1);

      // A fixed config goes through and the proxy is SYNCED again.
      tags.set('ratings', 'v2');
      const acked = waitFor(world.server, 'ack');
      world.server.requestPush('fix');
      clock.advance(100);
      await acked;
      assert.equal(tagOf(client.config), 'v2');
      assert.equal(world.statusOf(node).state, 'SYNCED');
      assert.deepEqual(applied, ['v1', 'v2']);
    } finally {
      await world.close();
    }
  });

  test('10 rapid push requests are debounced into one push per proxy', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    const world = await World.start(taggedSource(tags), { clock, debounceMs: 100 });
    try {
      const nodes = [nodeFor('a'), nodeFor('b'), nodeFor('c')];
      const applied = new Map<string, string[]>();
      for (const node of nodes) {
        applied.set(node.workload, []);
        await world.synced(node, (c) => void applied.get(node.workload)!.push(tagOf(c)!));
      }
      const pushesBefore = world.server.metrics.pushes;

      const acks = waitForCount(world.server, 'ack', nodes.length);
      for (let i = 1; i <= 10; i++) {
        for (const n of nodes) tags.set(n.workload, `gen${i}`);
        world.server.requestPush(`change ${i}`);
        clock.advance(10); // each request arrives inside the quiet period of the last
      }
      assert.equal(world.server.metrics.pushes, pushesBefore, 'nothing is pushed while requests keep coming');
      // The last request came at t=90 (the clock is now at 100): the push is due at t=190.
      clock.advance(89);
      assert.equal(world.server.metrics.pushes, pushesBefore, 'nothing is pushed before 100 ms of quiet');
      clock.advance(1);
      await acks;

      assert.equal(world.server.metrics.pushes, pushesBefore + nodes.length);
      assert.equal(world.server.metrics.pushRuns, 1);
      assert.equal(world.server.metrics.pushRequests, 10);
      for (const node of nodes) {
        // One push, with the content of the last request.
        assert.deepEqual(applied.get(node.workload), ['v1', 'gen10']);
        assert.equal(world.statusOf(node).state, 'SYNCED');
      }
    } finally {
      await world.close();
    }
  });

  test('a steady stream of requests is still pushed after debounceMaxMs', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    const world = await World.start(taggedSource(tags), { clock, debounceMs: 100, debounceMaxMs: 1000 });
    try {
      const node = nodeFor('busy');
      const client = await world.synced(node);
      const acked = waitFor(world.server, 'ack');
      let i = 0;
      // A request every 50 ms never leaves 100 ms of quiet; the max delay must cut in.
      while (world.server.metrics.pushRuns === 0 && i < 100) {
        tags.set('busy', `gen${++i}`);
        world.server.requestPush('churn');
        clock.advance(50);
      }
      assert.equal(world.server.metrics.pushRuns, 1);
      assert.ok(clock.now() >= 1000 && clock.now() <= 1100, `pushed at ${clock.now()} ms`);
      await acked;
      assert.equal(tagOf(client.config), `gen${i}`);
    } finally {
      await world.close();
    }
  });

  test('an unchanged config is not pushed again', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    let built = 0;
    const world = await World.start((node) => {
      built++;
      // A fresh object each time with a new compiler version: equal content must still
      // count as unchanged.
      return { ...configFor(node, tags.get(node.workload) ?? 'v1'), version: `compiled-${built}` };
    }, { clock });
    try {
      const node = nodeFor('details');
      const configs: string[] = [];
      const client = await world.synced(node, (c) => void configs.push(c.version));
      const version = client.version;

      const run = waitFor(world.server, 'pushRun');
      world.server.requestPush('no-op change');
      clock.advance(100);
      const [info] = (await run) as [PushRunInfo];
      assert.equal(info.affected, 1);
      assert.equal(info.pushed, 0);
      assert.equal(info.unchanged, 1);
      assert.equal(world.server.metrics.skippedUnchanged, 1);

      // The next real change is the only other push the proxy sees.
      tags.set('details', 'v2');
      const applied = waitFor(client, 'config');
      world.server.requestPush('real change');
      clock.advance(100);
      await applied;
      assert.equal(configs.length, 2);
      assert.equal(configs[0], version);
      assert.equal(tagOf(client.config), 'v2');
      assert.equal(world.server.metrics.pushes, 2);
    } finally {
      await world.close();
    }
  });

  test('a config that cannot be built or is too large is a push error; the proxy keeps its config', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    const world = await World.start((node) => {
      const tag = tags.get(node.workload) ?? 'v1';
      if (tag === 'throws') throw new Error('compiler exploded');
      return configFor(node, tag === 'huge' ? 'x'.repeat(10_000) : tag);
    }, { clock, maxFrameBytes: 4096 });
    try {
      const node = nodeFor('ratings');
      const client = await world.synced(node);
      for (const [tag, pattern] of [['throws', /SNW_ERR_XDS_CONFIG_SOURCE|compiler exploded/], ['huge', /exceeds the 4096-byte limit/]] as const) {
        tags.set('ratings', tag);
        const failed = waitFor(world.server, 'pushError');
        world.server.requestPush(tag);
        clock.advance(100);
        const [failedNode, err] = await failed;
        assert.equal(failedNode.id, node.id);
        assert.match((err as Error).message, pattern);
      }
      assert.equal(world.server.metrics.pushErrors, 2);
      assert.equal(tagOf(client.config), 'v1');
      // Nothing new was sent, so the proxy is still in sync with what it was sent last.
      assert.equal(world.statusOf(node).state, 'SYNCED');
      assert.equal(client.state, 'connected');
    } finally {
      await world.close();
    }
  });

  test('only affected proxies get a push', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    const world = await World.start(taggedSource(tags), { clock });
    try {
      const a = nodeFor('productpage');
      const b = nodeFor('reviews');
      const ca = await world.synced(a);
      const cb = await world.synced(b);

      // Both configs changed, but the change is scoped to productpage: reviews is not touched.
      tags.set('productpage', 'v2');
      tags.set('reviews', 'v2');
      let run = waitFor(world.server, 'pushRun');
      const ackA = waitFor(world.server, 'ack', (s: ProxyStatus) => s.node.id === a.id);
      world.server.requestPush('productpage route', (n) => n.workload === 'productpage');
      clock.advance(100);
      let [info] = (await run) as [PushRunInfo];
      await ackA;
      assert.deepEqual({ affected: info.affected, pushed: info.pushed }, { affected: 1, pushed: 1 });
      assert.equal(tagOf(ca.config), 'v2');
      assert.equal(tagOf(cb.config), 'v1');

      // Two scoped requests in one debounce window merge into one run covering both proxies.
      run = waitFor(world.server, 'pushRun');
      const ackB = waitFor(world.server, 'ack', (s: ProxyStatus) => s.node.id === b.id);
      world.server.requestPush('one', (n) => n.workload === 'productpage');
      world.server.requestPush('two', (n) => n.workload === 'reviews');
      clock.advance(100);
      [info] = (await run) as [PushRunInfo];
      await ackB;
      assert.deepEqual(info.reasons, ['one', 'two']);
      assert.deepEqual({ affected: info.affected, pushed: info.pushed, unchanged: info.unchanged }, { affected: 2, pushed: 1, unchanged: 1 });
      assert.equal(tagOf(cb.config), 'v2');

      // A scoped and an unscoped request merge into a push to everyone.
      tags.set('productpage', 'v3');
      tags.set('reviews', 'v3');
      const acks = waitForCount(world.server, 'ack', 2);
      world.server.requestPush('scoped', (n) => n.workload === 'productpage');
      world.server.requestPush('mesh-wide');
      clock.advance(100);
      await acks;
      assert.equal(tagOf(ca.config), 'v3');
      assert.equal(tagOf(cb.config), 'v3');
    } finally {
      await world.close();
    }
  });

  test('proxies keep their config while the control plane is away, then reconnect and resync', TIMEOUT, async () => {
    const tags = new Map<string, string>();
    const first = await World.start(taggedSource(tags));
    const port = first.port;
    const node = nodeFor('reviews');
    const client = await first.synced(node);
    const heldVersion = client.version;
    let second: PushServer | undefined;
    let third: PushServer | undefined;
    try {
      const lost = waitFor(client, 'disconnected');
      await first.server.close();
      const [info] = await lost;
      assert.equal(info.code, XdsErrorCode.ServerShutdown);
      // Still serving while nobody listens, and retrying with backoff.
      await waitForCount(client, 'backoff', 3);
      assert.equal(tagOf(client.config), 'v1');
      assert.equal(client.version, heldVersion);

      // A new control plane with the same content: the proxy reports its version and the
      // server skips the identical push; it is SYNCED at once.
      second = new PushServer({ source: taggedSource(tags) });
      const connected = waitFor(second, 'connect');
      await second.listen(port);
      const [status] = (await connected) as [ProxyStatus];
      assert.equal(status.state, 'SYNCED');
      assert.equal(status.ackedVersion, heldVersion);
      assert.equal(second.metrics.pushes, 0);
      assert.equal(second.metrics.skippedUnchanged, 1);

      // Another restart, this time with new content: the proxy gets it on reconnect.
      const lostAgain = waitFor(client, 'disconnected');
      await second.close();
      await lostAgain;
      tags.set('reviews', 'v2');
      third = new PushServer({ source: taggedSource(tags) });
      const acked = waitFor(third, 'ack');
      await third.listen(port);
      await acked;
      assert.equal(tagOf(client.config), 'v2');
      assert.equal(third.status()[0].state, 'SYNCED');
      // Versions keep increasing across restarts: the new server starts past what the proxy held.
      assert.ok(Number(client.version!.split('-')[0]) > Number(heldVersion!.split('-')[0]));
    } finally {
      await client.close();
      await second?.close();
      await third?.close();
    }
  });

  test('a malformed frame closes only the connection that sent it', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    const world = await World.start(taggedSource(tags), { clock, maxHelloFrameBytes: 4096 });
    try {
      const good = nodeFor('good');
      const client = await world.synced(good);

      const cases: [string, string, string][] = [
        ['not json', 'this is not json\n', XdsErrorCode.MalformedFrame],
        ['unknown type', '{"type":"gimme"}\n', XdsErrorCode.MalformedFrame],
        ['bad hello', '{"type":"hello","protocol":1,"node":{"id":"x","mode":"pilot"}}\n', XdsErrorCode.MalformedFrame],
        ['ack before hello', '{"type":"ack","version":"1-a","nonce":"n1"}\n', XdsErrorCode.UnexpectedMessage],
        ['wrong protocol', JSON.stringify({ type: 'hello', protocol: 99, node: nodeFor('x') }) + '\n', XdsErrorCode.ProtocolVersion],
        ['too large', '{"type":"ping","pad":"' + 'x'.repeat(8192), XdsErrorCode.FrameTooLarge],
      ];
      for (const [name, bytes, code] of cases) {
        const peer = await RawPeer.connect(world.port);
        peer.send(bytes);
        const close = await peer.frame('close');
        await peer.closed;
        assert.equal(close.code, code, name);
        assert.equal(typeof close.reason, 'string', name);
      }
      assert.equal(world.server.metrics.protocolErrors, cases.length);

      // The good proxy was not disturbed and still gets pushes.
      assert.equal(world.statusOf(good).state, 'SYNCED');
      tags.set('good', 'v2');
      const applied = waitFor(client, 'config');
      world.server.requestPush('after the bad peers');
      clock.advance(100);
      await applied;
      assert.equal(tagOf(client.config), 'v2');
      assert.equal(client.state, 'connected');
    } finally {
      await world.close();
    }
  });

  test('a connection that never says hello is closed after the hello timeout', TIMEOUT, async () => {
    const clock = new ManualClock();
    const world = await World.start(taggedSource(new Map()), { clock, helloTimeoutMs: 5000 });
    try {
      const peer = await RawPeer.connect(world.port);
      // A ping is answered before hello; the pong proves the server has the connection.
      peer.send('{"type":"ping","id":7}\n');
      assert.equal((await peer.frame('pong')).id, 7);
      clock.advance(4999);
      assert.equal(peer.frames.length, 1);
      clock.advance(1);
      const close = await peer.frame('close');
      await peer.closed;
      assert.equal(close.code, XdsErrorCode.HelloTimeout);
    } finally {
      await world.close();
    }
  });

  test('a large push runs in slices; a request made during it gets its own run after it', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    const world = await World.start(taggedSource(tags), { clock, pushSlice: 4 });
    try {
      const nodes = Array.from({ length: 10 }, (_, i) => nodeFor(`s${i}`));
      const synced = waitForCount(world.server, 'ack', nodes.length);
      nodes.forEach((node, i) => world.client(node, () => {}, i + 1).start());
      await synced;

      for (const n of nodes) tags.set(n.workload, 'v2');
      const runs: PushRunInfo[] = [];
      world.server.on('pushRun', (info) => runs.push(info));
      world.server.requestPush('first');
      clock.advance(100);
      // Only the first slice went out synchronously; the rest follow on later turns.
      assert.equal(world.server.metrics.pushes, 10 + 4);
      assert.equal(runs.length, 0);

      for (const n of nodes) tags.set(n.workload, 'v3');
      world.server.requestPush('second');
      clock.advance(100); // falls due while the first run is still going
      await waitForCount(world.server, 'pushRun', 2 - runs.length);
      // Every proxy reaches v3 (the first run's later slices already build v3), and the
      // server hears each ACK.
      for (const c of world.clients) {
        if (tagOf(c.config) !== 'v3') await waitFor(c, 'config', (config: ProxyConfig) => tagOf(config) === 'v3');
        const version = c.version;
        if (!world.server.status().some((st) => st.ackedVersion === version)) {
          await waitFor(world.server, 'ack', (st: ProxyStatus) => st.ackedVersion === version);
        }
      }
      assert.deepEqual(runs.map((r) => [r.reasons, r.affected]), [[['first'], 10], [['second'], 10]]);
      assert.ok(world.clients.every((c) => tagOf(c.config) === 'v3'));
      assert.ok(world.server.status().every((st) => st.state === 'SYNCED'));
    } finally {
      await world.close();
    }
  });

  test('a proxy that falls silent is dropped after the idle timeout', TIMEOUT, async () => {
    const clock = new ManualClock();
    const world = await World.start(taggedSource(new Map()), { clock, idleTimeoutMs: 3000 });
    try {
      const peer = await RawPeer.connect(world.port);
      const disconnected = waitFor(world.server, 'disconnect');
      peer.send(JSON.stringify({ type: 'hello', protocol: 1, node: nodeFor('quiet') }) + '\n');
      await peer.frame('push');
      clock.advance(2000);
      peer.send('{"type":"ping","id":1}\n'); // heard from at t=2000: the deadline moves to 5000
      await peer.frame('pong');
      clock.advance(2999);
      assert.equal(world.server.status().length, 1);
      clock.advance(1);
      const close = await peer.frame('close');
      assert.equal(close.code, XdsErrorCode.PeerTimeout);
      const [status] = (await disconnected) as [ProxyStatus];
      assert.equal(status.node.workload, 'quiet');
      assert.equal(world.server.status().length, 0);
      assert.equal(world.server.metrics.connectedProxies, 0);
      await peer.closed;
    } finally {
      await world.close();
    }
  });

  test('50 proxies connect and all reach SYNCED, then all follow a mesh-wide change', TIMEOUT, async () => {
    const clock = new ManualClock();
    const tags = new Map<string, string>();
    const world = await World.start(taggedSource(tags), { clock });
    try {
      const nodes = Array.from({ length: 50 }, (_, i) => nodeFor(`w${i}`));
      const allAcked = waitForCount(world.server, 'ack', nodes.length);
      nodes.forEach((node, i) => world.client(node, () => {}, i + 1).start());
      await allAcked;
      let status = world.server.status();
      assert.equal(status.length, 50);
      assert.ok(status.every((s) => s.state === 'SYNCED'));
      assert.equal(world.server.metrics.connectedProxies, 50);

      for (const node of nodes) tags.set(node.workload, 'v2');
      const again = waitForCount(world.server, 'ack', nodes.length);
      world.server.requestPush('mesh-wide');
      clock.advance(100);
      await again;
      status = world.server.status();
      assert.ok(status.every((s) => s.state === 'SYNCED'));
      assert.ok(world.clients.every((c) => tagOf(c.config) === 'v2'));
      assert.equal(world.server.metrics.pushes, 100);
    } finally {
      await world.close();
    }
  });
});
