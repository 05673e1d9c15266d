/**
 * Incremental pushes over real sockets on port 0: after the first whole push a proxy gets
 * only what changed (a virtual host, a removed cluster), rebuilds exactly the config the
 * server holds, and falls back to a whole push when it is at another version, after a
 * NACK, and when it asks for a resync.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Cluster, ClusterLoadAssignment, ProxyConfig, ProxyNode, RouteConfiguration, VirtualHost } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { deepFreeze } from '../../src/core/freeze.js';
import { SeededRandom } from '../../src/core/random.js';
import { PushClient } from '../../src/xds/client.js';
import type { ApplyConfig } from '../../src/xds/client.js';
import { PROTOCOL_VERSION, encodeFrame } from '../../src/xds/protocol.js';
import { PushServer, configHash } from '../../src/xds/server.js';
import type { ComposedConfig, ConfigSource, ProxyStatus } from '../../src/xds/server.js';
import { RawPeer, nodeFor, waitFor } from './helpers.js';

const TIMEOUT = { timeout: 20_000 };

// === a mesh of `services` services, as a class of proxies shares it ===

interface Mesh {
  services: number;
  /** Per-service route timeout; a change to one is a one-VirtualService change. */
  timeouts: Map<number, number>;
  /** Services whose cluster and endpoints are gone. */
  removed: Set<number>;
}

function virtualHost(i: number, timeoutMs: number): VirtualHost {
  return {
    name: `svc-${i}.default.svc.cluster.local:9080`,
    domains: [`svc-${i}`, `svc-${i}.default`, `svc-${i}.default.svc.cluster.local`, `svc-${i}:9080`],
    routes: [{ name: 'default', match: { path: { prefix: '/' } }, action: { kind: 'route', destinations: [{ cluster: `outbound|9080||svc-${i}.default.svc.cluster.local`, weight: 100 }], timeoutMs } }],
  };
}

/** The part every proxy of the class shares, deep-frozen, as the control plane hands it out. */
function sharedPart(mesh: Mesh): ComposedConfig['shared'] {
  const live = Array.from({ length: mesh.services }, (_, i) => i).filter((i) => !mesh.removed.has(i));
  const routeConfigs: RouteConfiguration[] = [{ name: '9080', virtualHosts: live.map((i) => virtualHost(i, mesh.timeouts.get(i) ?? 5000)) }];
  const clusters: Cluster[] = live.map((i) => ({ name: `outbound|9080||svc-${i}.default.svc.cluster.local`, kind: 'eds', protocol: 'http1', connectTimeoutMs: 10_000, lb: { policy: 'ROUND_ROBIN' } }));
  const endpoints: ClusterLoadAssignment[] = live.map((i) => ({
    clusterName: `outbound|9080||svc-${i}.default.svc.cluster.local`,
    endpoints: [{ address: { host: '10.0.0.1', port: 20_000 + i }, labels: { app: `svc-${i}` }, health: 'HEALTHY' }],
  }));
  return deepFreeze({ routeConfigs, clusters, endpoints });
}

/** The proxy's own part: its inbound listener and cluster. */
function ownPart(node: ProxyNode): ProxyConfig {
  return deepFreeze({
    version: 'compiled',
    node,
    listeners: [{ name: 'inbound|9080', address: { host: '127.0.0.1', port: 15006 }, direction: 'inbound', protocol: 'http', http: { routeConfigName: 'inbound|9080||' } }],
    routeConfigs: [],
    clusters: [{ name: 'inbound|9080||', kind: 'eds', protocol: 'http1', connectTimeoutMs: 10_000, lb: { policy: 'ROUND_ROBIN' } }],
    endpoints: [{ clusterName: 'inbound|9080||', endpoints: [{ address: { host: '127.0.0.1', port: 8080 }, labels: {}, health: 'HEALTHY' }] }],
  } satisfies ProxyConfig);
}

/**
 * A source like the control plane's: one shared part per mesh state, reused by every proxy
 * (rebuilt only after `changed()`), and each proxy's own part kept across builds.
 */
function meshSource(mesh: Mesh): ConfigSource & { changed(): void } {
  let shared: ComposedConfig['shared'] | undefined;
  const own = new Map<string, ProxyConfig>();
  const source = ((node: ProxyNode): ComposedConfig => {
    shared ??= sharedPart(mesh);
    if (!own.has(node.id)) own.set(node.id, ownPart(node));
    return { own: own.get(node.id)!, shared };
  }) as ConfigSource & { changed(): void };
  source.changed = () => (shared = undefined);
  return source;
}

/** What the proxy must end up with: the whole config as one flat list per kind, through JSON, with the pushed version. */
function expectedConfig(node: ProxyNode, mesh: Mesh, version: string): ProxyConfig {
  const own = ownPart(node);
  const shared = sharedPart(mesh);
  const whole: ProxyConfig = {
    ...own,
    version,
    routeConfigs: [...own.routeConfigs, ...shared.routeConfigs!],
    clusters: [...own.clusters, ...shared.clusters!],
    endpoints: [...own.endpoints, ...shared.endpoints!],
  };
  return JSON.parse(JSON.stringify(whole)) as ProxyConfig;
}

/** A plain copy of what the client serves (frozen objects compare equal to plain ones, but this says what is meant). */
const plain = (config: ProxyConfig | undefined) => JSON.parse(JSON.stringify(config)) as ProxyConfig;

class World {
  readonly clients: PushClient[] = [];
  constructor(readonly server: PushServer, readonly port: number, readonly clock: ManualClock) {}

  static async start(source: ConfigSource): Promise<World> {
    const clock = new ManualClock();
    const server = new PushServer({ source, clock });
    const { port } = await server.listen(0);
    return new World(server, port, clock);
  }

  client(node: ProxyNode, options: { apply?: ApplyConfig; initial?: { config: ProxyConfig; version: string } } = {}): PushClient {
    const client = new PushClient({ host: '127.0.0.1', port: this.port, node, apply: options.apply ?? (() => {}), initial: options.initial, random: new SeededRandom(1), keepaliveMs: 0 });
    this.clients.push(client);
    return client;
  }

  async synced(node: ProxyNode, options: { apply?: ApplyConfig; initial?: { config: ProxyConfig; version: string } } = {}): Promise<PushClient> {
    const client = this.client(node, options);
    const acked = waitFor(this.server, 'ack', (s: ProxyStatus) => s.node.id === node.id);
    client.start();
    await acked;
    return client;
  }

  /** Requests a push, lets the debounce run out, and resolves with the status the server has once `node` answers. */
  async change(node: ProxyNode, answer: 'ack' | 'nack' = 'ack'): Promise<ProxyStatus> {
    const answered = waitFor(this.server, answer, (s: ProxyStatus) => s.node.id === node.id);
    this.server.requestPush('change');
    this.clock.advance(100);
    const [status] = (await answered) as [ProxyStatus];
    return status;
  }

  statusOf(node: ProxyNode): ProxyStatus {
    return this.server.status().find((s) => s.node.id === node.id)!;
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
    await this.server.close();
  }
}

describe('delta pushes', () => {
  test('a one-VirtualService change goes out as a patch of one virtual host; the proxy rebuilds the whole config exactly', TIMEOUT, async () => {
    const mesh: Mesh = { services: 500, timeouts: new Map(), removed: new Set() };
    const source = meshSource(mesh);
    const world = await World.start(source);
    try {
      const a = nodeFor('productpage');
      const b = nodeFor('reviews');
      const ca = await world.synced(a);
      const cb = await world.synced(b);
      const full = world.statusOf(a);
      assert.equal(full.sentKind, 'full');
      assert.deepEqual(plain(ca.config), expectedConfig(a, mesh, ca.version!));

      mesh.timeouts.set(42, 7000);
      source.changed();
      const ackB = waitFor(world.server, 'ack', (s: ProxyStatus) => s.node.id === b.id);
      const status = await world.change(a);
      await ackB;

      assert.equal(status.sentKind, 'delta');
      assert.equal(world.statusOf(b).sentKind, 'delta');
      assert.equal(world.server.metrics.deltaPushes, 2);
      // What a user notices: the change costs a proxy a sliver of its config on the wire.
      assert.ok(status.sentBytes! * 100 < full.sentBytes!, `delta of ${status.sentBytes} bytes vs a whole config of ${full.sentBytes}`);
      // Both proxies share the class's part, so the part of their frames that carries it is one and the same.
      assert.ok(Math.abs(world.statusOf(b).sentBytes! - status.sentBytes!) < 64);

      assert.deepEqual(plain(ca.config), expectedConfig(a, mesh, ca.version!));
      assert.deepEqual(plain(cb.config), expectedConfig(b, mesh, cb.version!));
      const vh = ca.config!.routeConfigs[0]!.virtualHosts[42]!;
      assert.equal(vh.routes[0]!.action.kind === 'route' && vh.routes[0]!.action.timeoutMs, 7000);
      // The rebuilt config is frozen, and hashes to the version it carries.
      assert.ok(Object.isFrozen(ca.config) && Object.isFrozen(vh));
      assert.equal(configHash(ca.config!), ca.version!.split('-')[1]);
      assert.equal(world.statusOf(a).state, 'SYNCED');
    } finally {
      await world.close();
    }
  });

  test('a removed service takes its virtual host, cluster and endpoints away; an added one appears in order', TIMEOUT, async () => {
    const mesh: Mesh = { services: 50, timeouts: new Map(), removed: new Set([10]) };
    const source = meshSource(mesh);
    const world = await World.start(source);
    try {
      const node = nodeFor('productpage');
      const client = await world.synced(node);

      mesh.removed = new Set([7]); // 7 goes, 10 comes back in the middle of every list
      source.changed();
      const status = await world.change(node);
      assert.equal(status.sentKind, 'delta');
      const config = client.config!;
      assert.deepEqual(plain(config), expectedConfig(node, mesh, client.version!));
      assert.ok(!config.clusters.some((c) => c.name.includes('svc-7.')));
      assert.ok(!config.endpoints.some((e) => e.clusterName.includes('svc-7.')));
      assert.ok(!config.routeConfigs[0]!.virtualHosts.some((vh) => vh.name.startsWith('svc-7.')));
      assert.ok(config.clusters.some((c) => c.name.includes('svc-10.')));
    } finally {
      await world.close();
    }
  });

  test('a proxy at a version the server cannot build on gets the whole config, then deltas', TIMEOUT, async () => {
    const mesh: Mesh = { services: 20, timeouts: new Map(), removed: new Set() };
    const source = meshSource(mesh);
    const world = await World.start(source);
    try {
      const node = nodeFor('ratings');
      // Restored from disk at a version from another time: its content is not what the server has.
      const stale = { config: expectedConfig(node, { ...mesh, services: 3 }, '7-0123456789abcdef'), version: '7-0123456789abcdef' };
      const client = await world.synced(node, { initial: stale });
      assert.equal(world.statusOf(node).sentKind, 'full');
      assert.deepEqual(plain(client.config), expectedConfig(node, mesh, client.version!));

      mesh.timeouts.set(3, 1234);
      source.changed();
      assert.equal((await world.change(node)).sentKind, 'delta');
      assert.deepEqual(plain(client.config), expectedConfig(node, mesh, client.version!));
    } finally {
      await world.close();
    }
  });

  test('a proxy that cannot use a delta asks for a resync and gets the whole config', TIMEOUT, async () => {
    const mesh: Mesh = { services: 20, timeouts: new Map(), removed: new Set() };
    const source = meshSource(mesh);
    const world = await World.start(source);
    try {
      const node = nodeFor('details');
      const peer = await RawPeer.connect(world.port);
      peer.send(encodeFrame({ type: 'hello', protocol: PROTOCOL_VERSION, node }));
      const first = await peer.frame('push');
      peer.send(encodeFrame({ type: 'ack', version: first.version as string, nonce: first.nonce as string }));

      mesh.timeouts.set(1, 999);
      source.changed();
      world.server.requestPush('change');
      world.clock.advance(100);
      const delta = await peer.frame('delta');
      assert.equal(delta.base, first.version);

      // This proxy lost its config (say, a bug): it asks for the whole one instead of guessing.
      peer.send(encodeFrame({ type: 'resync', nonce: delta.nonce as string, reason: 'SNW_ERR_XDS_DELTA_MISMATCH: holds nothing' }));
      const whole = await peer.frame('push');
      assert.deepEqual(JSON.parse(JSON.stringify((whole.config as ProxyConfig).routeConfigs)), expectedConfig(node, mesh, '').routeConfigs);
      assert.equal(world.server.metrics.resyncs, 1);
      await peer.destroy();
    } finally {
      await world.close();
    }
  });

  test('the client answers a delta on another base with a resync, ignores deltas until the whole config comes, then applies it', TIMEOUT, async () => {
    const node = nodeFor('reviews');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const accepted = new Promise<RawPeer>((resolve) => server.once('connection', (socket) => resolve(RawPeer.wrap(socket))));
    const client = new PushClient({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, node, apply: () => {}, random: new SeededRandom(2), keepaliveMs: 0 });
    try {
      client.start();
      const peer = await accepted;
      await peer.frame('hello');
      const v1 = { ...ownPart(node), version: `1-${configHash(ownPart(node))}` };
      peer.send(encodeFrame({ type: 'push', version: v1.version, nonce: 'n1', config: v1 }));
      await peer.frame('ack');

      const changes = { clusters: { removed: ['inbound|9080||'] } };
      peer.send(encodeFrame({ type: 'delta', version: '3-whatever', nonce: 'n3', base: '2-unknown', changes }));
      const resync = await peer.frame('resync');
      assert.equal(resync.nonce, 'n3');
      assert.match(resync.reason as string, /SNW_ERR_XDS_DELTA_MISMATCH.*based on 2-unknown.*holds 1-/);
      // A delta on the right base, but sent before the server read the resync: ignored.
      peer.send(encodeFrame({ type: 'delta', version: '4-whatever', nonce: 'n4', base: v1.version, changes }));
      const v5 = { ...ownPart(node), clusters: [], version: '5-anything' };
      peer.send(encodeFrame({ type: 'push', version: v5.version, nonce: 'n5', config: v5 }));
      assert.deepEqual(await peer.frame('ack'), { type: 'ack', version: '5-anything', nonce: 'n5' });
      assert.equal(client.version, '5-anything');
      assert.equal(peer.frames.filter((f) => f.type === 'resync').length, 1);
      assert.equal(peer.frames.filter((f) => f.type === 'ack' || f.type === 'nack').length, 2);
    } finally {
      await client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('after a NACKed delta the next change is pushed whole', TIMEOUT, async () => {
    const mesh: Mesh = { services: 30, timeouts: new Map(), removed: new Set() };
    const source = meshSource(mesh);
    const world = await World.start(source);
    try {
      const node = nodeFor('ratings');
      // The proxy refuses route timeouts over 60 s.
      const client = await world.synced(node, {
        apply: (config) => {
          for (const vh of config.routeConfigs.flatMap((rc) => rc.virtualHosts)) {
            for (const r of vh.routes) if (r.action.kind === 'route' && (r.action.timeoutMs ?? 0) > 60_000) throw new Error(`timeout of ${vh.name} too long`);
          }
        },
      });
      const good = client.version;

      mesh.timeouts.set(5, 90_000);
      source.changed();
      const nacked = await world.change(node, 'nack');
      assert.equal(nacked.sentKind, 'delta');
      assert.equal(nacked.state, 'NACKED');
      assert.equal(client.version, good);

      mesh.timeouts.set(5, 30_000);
      source.changed();
      const fixed = await world.change(node);
      assert.equal(fixed.sentKind, 'full');
      assert.equal(fixed.state, 'SYNCED');
      assert.deepEqual(plain(client.config), expectedConfig(node, mesh, client.version!));

      // And deltas again after that.
      mesh.timeouts.set(6, 40_000);
      source.changed();
      assert.equal((await world.change(node)).sentKind, 'delta');
      assert.deepEqual(plain(client.config), expectedConfig(node, mesh, client.version!));
    } finally {
      await world.close();
    }
  });

  test('a protocol 1 proxy gets whole configs only', TIMEOUT, async () => {
    const mesh: Mesh = { services: 10, timeouts: new Map(), removed: new Set() };
    const source = meshSource(mesh);
    const world = await World.start(source);
    try {
      const peer = await RawPeer.connect(world.port);
      peer.send(encodeFrame({ type: 'hello', protocol: 1, node: nodeFor('legacy') }));
      const first = await peer.frame('push');
      peer.send(encodeFrame({ type: 'ack', version: first.version as string, nonce: first.nonce as string }));
      mesh.timeouts.set(2, 100);
      source.changed();
      world.server.requestPush('change');
      world.clock.advance(100);
      const second = await peer.frame('push');
      assert.notEqual(second.version, first.version);
      assert.equal(peer.frames.some((f) => f.type === 'delta'), false);
      await peer.destroy();
    } finally {
      await world.close();
    }
  });
});
