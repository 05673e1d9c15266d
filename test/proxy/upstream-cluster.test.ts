/**
 * Cluster-level behaviour over real sockets: acceptance cases LB-01..LB-07 (balancing over
 * three echo servers), RS-10/RS-11 (circuit breaker), and update() keeping or closing pools.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import { poolSpec } from '../../src/proxy/upstream/endpoint-pool.js';
import { MESH_CONNECTION_IDLE_TIMEOUT_MS } from '../../src/proxy/transport/transport-socket.js';
import type { Secret } from '../../src/api/proxy-config.js';
import { makeCa, makeClientCertificate } from '../support/tls.js';
import { hashRequest } from '../../src/proxy/http/hash-policy.js';
import type { UpstreamLease } from '../../src/proxy/upstream/types.js';
import { countBy, echoCluster, send, sendVia, startEcho, type EchoServer } from './upstream-fixtures.js';
import { requestVia } from './support/dispatch.js';

/** These policies never generate a cookie. */
const noCookies = { addSetCookie: (): string => assert.fail('no cookie policy here') };

describe('load balancing over real upstreams (LB-01..LB-07)', () => {
  let echoes: EchoServer[] = [];
  before(async () => {
    echoes = await Promise.all(['echo-v1', 'echo-v2', 'echo-v3'].map((n) => startEcho(n)));
  });
  after(async () => {
    await Promise.all(echoes.map((e) => e.close()));
  });

  const manager = (policy: Parameters<typeof echoCluster>[1]) => {
    const m = createClusterManager({ clock: new ManualClock(0), random: new SeededRandom(9) });
    m.update([echoCluster('outbound|80||echo', policy)], [{ clusterName: 'outbound|80||echo', endpoints: echoes.map((e) => e.endpoint()) }]);
    return m;
  };

  test('LB-01: ROUND_ROBIN gives each of 3 endpoints 100 of 300 (+-10)', async () => {
    const m = manager({ lb: { policy: 'ROUND_ROBIN' } });
    const cluster = m.get('outbound|80||echo')!;
    const bodies: string[] = [];
    for (let i = 0; i < 300; i++) bodies.push((await send(cluster)).body);
    const counts = countBy(bodies);
    for (const e of echoes) assert.ok(Math.abs((counts.get(e.name) ?? 0) - 100) <= 10, `${e.name}: ${counts.get(e.name)}`);
    const s = m.stats()[0];
    assert.equal(s.activeRequests, 0);
    assert.equal(s.endpoints.reduce((n, e) => n + e.totalRequests, 0), 300);
    await m.close();
  });

  test('LB-02: RANDOM spreads 600 as 200 +- 40 each, not a strict rotation', async () => {
    const m = manager({ lb: { policy: 'RANDOM' } });
    const cluster = m.get('outbound|80||echo')!;
    const seq: string[] = [];
    for (let i = 0; i < 600; i++) seq.push((await send(cluster)).body);
    const counts = countBy(seq);
    for (const e of echoes) assert.ok(Math.abs((counts.get(e.name) ?? 0) - 200) <= 40, `${e.name}: ${counts.get(e.name)}`);
    assert.ok(seq.some((s, i) => i > 0 && seq[i - 1] === s));
    await m.close();
  });

  test('LB-03: LEAST_REQUEST avoids an endpoint holding 4 long requests', async () => {
    const m = manager({ lb: { policy: 'LEAST_REQUEST' } });
    const cluster = m.get('outbound|80||echo')!;
    const v1 = echoes[0];
    v1.holding = 'hold-path';
    // Keep 4 long requests open on echo-v1 (the balancer would not choose a busy endpoint
    // itself, so the others are excluded as a retry would exclude them).
    const others = new Set(echoes.slice(1).map((e) => `127.0.0.1:${e.port}`));
    const slow: Promise<unknown>[] = [];
    for (let parked = 0; parked < 4; parked++) {
      const got = cluster.acquire({ exclude: others });
      assert.ok(got.ok);
      assert.ok(got.lease.key.endsWith(`:${v1.port}`));
      const held = once(v1.events, 'held');
      slow.push(sendVia(got.lease, '/hold'));
      await held;
    }
    const fast: string[] = [];
    for (let i = 0; i < 100; i++) fast.push((await send(cluster)).body);
    const counts = countBy(fast);
    assert.ok((counts.get('echo-v1') ?? 0) < 15, `echo-v1 got ${counts.get('echo-v1')}`);
    assert.equal(m.stats()[0].endpoints.find((e) => e.key.endsWith(`:${v1.port}`))!.activeRequests, 4);
    v1.releaseHeld();
    v1.holding = false;
    await Promise.all(slow);
    await m.close();
  });

  for (const [name, policy, req] of [
    ['LB-05: consistentHash useSourceIp', { sourceIp: true }, { headers: {}, peer: '10.1.2.3', query: '' }],
    ['header x-user', { header: 'x-user' }, { headers: { 'x-user': 'jason' }, peer: '10.1.2.3', query: '' }],
    ['LB-06: consistentHash httpQueryParameterName', { queryParameter: 'some-query-param' }, { headers: {}, peer: '10.1.2.3', query: 'some-query-param=bar' }],
  ] as const) {
    for (const lbPolicy of ['RING_HASH', 'MAGLEV'] as const) {
      test(`${name} (${lbPolicy}): 10/10 requests hit the same endpoint`, async () => {
        const m = manager({ lb: { policy: lbPolicy } });
        const cluster = m.get('outbound|80||echo')!;
        const seen = new Set<string>();
        for (let i = 0; i < 10; i++) {
          const hash = hashRequest(policy, req, noCookies);
          seen.add((await send(cluster, { hash }, '/?some-query-param=bar')).body);
        }
        assert.equal(seen.size, 1);
        // Different keys spread over several endpoints.
        const spread = new Set<string>();
        for (let i = 0; i < 30; i++) spread.add((await send(cluster, { hash: hashRequest({ header: 'x-user' }, { headers: { 'x-user': `u${i}` }, peer: '', query: '' }, noCookies) })).body);
        assert.ok(spread.size >= 2);
        await m.close();
      });
    }
  }

  test('LB-07: without consistent hashing 10 requests reach at least 2 endpoints', async () => {
    const m = manager({});
    const cluster = m.get('outbound|80||echo')!;
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await send(cluster)).body);
    assert.ok(seen.size >= 2);
    await m.close();
  });

  test('unhealthy and draining endpoints are skipped; none left -> UH', async () => {
    const m = createClusterManager({ random: new SeededRandom(1) });
    const name = 'outbound|80||echo';
    m.update([echoCluster(name)], [{ clusterName: name, endpoints: [echoes[0].endpoint({ health: 'UNHEALTHY' }), echoes[1].endpoint({ health: 'DRAINING' }), echoes[2].endpoint({ health: 'UNKNOWN' })] }]);
    const cluster = m.get(name)!;
    for (let i = 0; i < 5; i++) assert.equal((await send(cluster)).body, 'echo-v3');
    m.update([echoCluster(name)], [{ clusterName: name, endpoints: [echoes[0].endpoint({ health: 'UNHEALTHY' })] }]);
    assert.deepEqual(cluster.acquire({}), { ok: false, flag: 'UH', detail: 'no_healthy_upstream' });
    m.update([echoCluster(name)], []);
    assert.equal(cluster.acquire({}).ok, false);
    await m.close();
  });

  test('retry avoiding previous hosts reaches another endpoint', async () => {
    const m = manager({});
    const cluster = m.get('outbound|80||echo')!;
    const first = cluster.acquire({});
    assert.ok(first.ok);
    first.lease.release({ status: 503 });
    const tried = new Set([first.lease.key]);
    for (let i = 0; i < 10; i++) {
      const retry = cluster.acquire({ exclude: tried });
      assert.ok(retry.ok);
      assert.notEqual(retry.lease.key, first.lease.key);
      retry.lease.release({ status: 200 });
    }
    await m.close();
  });

  test('locality failover: the local zone first, the next priority when it has none healthy', async () => {
    const m = createClusterManager({ random: new SeededRandom(3) });
    const name = 'outbound|80||echo';
    const cfg = echoCluster(name, { lb: { policy: 'ROUND_ROBIN', locality: { enabled: true, self: 'us-east/a/1' } } });
    const eps = (v1: 'HEALTHY' | 'UNHEALTHY') => [
      echoes[0].endpoint({ locality: 'us-east/a/1', health: v1 }),
      echoes[1].endpoint({ locality: 'us-east/b/1' }),
      echoes[2].endpoint({ locality: 'eu-west/a/1' }),
    ];
    m.update([cfg], [{ clusterName: name, endpoints: eps('HEALTHY') }]);
    const cluster = m.get(name)!;
    for (let i = 0; i < 6; i++) assert.equal((await send(cluster)).body, 'echo-v1');
    m.update([cfg], [{ clusterName: name, endpoints: eps('UNHEALTHY') }]);
    for (let i = 0; i < 6; i++) assert.equal((await send(cluster)).body, 'echo-v2');
    // distribute: 80/20 between the two us-east zones from us-east/a.
    const dist = echoCluster(name, { lb: { policy: 'ROUND_ROBIN', locality: { enabled: true, self: 'us-east/a/1', distribute: [{ from: 'us-east/a/*', to: { 'us-east/a/*': 80, 'us-east/b/*': 20 } }] } } });
    m.update([dist], [{ clusterName: name, endpoints: eps('HEALTHY') }]);
    const picks: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const got = cluster.acquire({});
      assert.ok(got.ok);
      picks.push(got.lease.key);
      got.lease.release({ status: 200 });
    }
    const counts = countBy(picks);
    assert.ok(Math.abs((counts.get(`127.0.0.1:${echoes[0].port}`) ?? 0) - 800) < 60);
    assert.equal(counts.get(`127.0.0.1:${echoes[2].port}`), undefined);
    await m.close();
  });
});

describe('circuit breaker (RS-10, RS-11)', () => {
  test('RS-11: maxConnections 1, http1MaxPendingRequests 1: one runs, one waits, the third gets UO at once', async () => {
    const upstream = await startEcho('httpbin');
    const m = createClusterManager();
    const name = 'outbound|8000||httpbin.default.svc.cluster.local';
    m.update(
      [echoCluster(name, { connectionPool: { maxConnections: 1, http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } })],
      [{ clusterName: name, endpoints: [upstream.endpoint()] }],
    );
    const cluster = m.get(name)!;
    // RS-10: a single call succeeds.
    assert.equal((await send(cluster)).status, 200);

    upstream.holding = true;
    const a = cluster.acquire({});
    assert.ok(a.ok);
    const held = once(upstream.events, 'held');
    const first = sendVia(a.lease, '/get');
    await held;
    const b = cluster.acquire({});
    assert.ok(b.ok, 'the second request waits for the connection');
    const second = sendVia(b.lease, '/get');
    const c = cluster.acquire({});
    assert.deepEqual(c, { ok: false, flag: 'UO', detail: 'upstream_rq_pending_overflow' });

    let s = m.stats()[0];
    assert.equal(s.activeRequests, 1);
    assert.equal(s.pendingRequests, 1);
    assert.equal(s.overflows, 1);
    assert.equal(upstream.hits, 2, 'only the first request reached the upstream; the second is queued');

    // Release: the queued request then runs on the one connection.
    const secondHeld = once(upstream.events, 'held');
    upstream.releaseHeld();
    assert.equal((await first).status, 200);
    await secondHeld;
    upstream.releaseHeld();
    assert.equal((await second).status, 200);
    assert.equal(upstream.maxConcurrent, 1);
    s = m.stats()[0];
    assert.equal(s.activeRequests + s.pendingRequests, 0);
    assert.equal(cluster.acquire({}).ok, true, 'capacity is back');
    await m.close();
    await upstream.close();
  });

  test('maxConnections is cluster-wide: with 2 endpoints the waiting request reaches its endpoint only when a slot frees', async () => {
    const [a, b] = await Promise.all([startEcho('a'), startEcho('b')]);
    a.holding = true;
    b.holding = true;
    const m = createClusterManager({ random: new SeededRandom(2) });
    m.update([echoCluster('c', { connectionPool: { maxConnections: 1, http1MaxPendingRequests: 1 } })], [{ clusterName: 'c', endpoints: [a.endpoint(), b.endpoint()] }]);
    const cluster = m.get('c')!;
    const first = cluster.acquire({});
    assert.ok(first.ok);
    const server = first.lease.key.endsWith(`:${a.port}`) ? a : b;
    const other = server === a ? b : a;
    const firstHeld = once(server.events, 'held');
    const firstDone = sendVia(first.lease);
    await firstHeld;
    const second = cluster.acquire({ exclude: new Set([first.lease.key]) });
    assert.ok(second.ok);
    assert.equal(second.lease.key.endsWith(`:${other.port}`), true);
    const secondHeld = once(other.events, 'held');
    const secondDone = sendVia(second.lease);
    assert.equal(cluster.acquire({}).ok, false);
    assert.equal(other.hits, 0, 'the waiting request has not reached its endpoint');
    assert.equal(m.stats()[0].pendingRequests, 1);
    server.releaseHeld();
    await firstDone;
    await secondHeld;
    assert.equal(other.hits, 1);
    assert.equal(m.stats()[0].activeRequests, 1);
    other.releaseHeld();
    await secondDone;
    await m.close();
    await Promise.all([a.close(), b.close()]);
  });

  test('a waiting lease released before it runs fails its request and frees its place', async () => {
    const m = createClusterManager();
    m.update([echoCluster('c', { connectionPool: { maxConnections: 1, http1MaxPendingRequests: 1 } })], [{ clusterName: 'c', endpoints: [{ address: { host: '127.0.0.1', port: 1 }, labels: {}, health: 'HEALTHY' }] }]);
    const cluster = m.get('c')!;
    const running = cluster.acquire({});
    const waiting = cluster.acquire({});
    assert.ok(running.ok && waiting.ok);
    const req = requestVia(waiting.lease.dispatcher);
    waiting.lease.release({ failure: 'cancelled' });
    await assert.rejects(req, { code: 'SNW_ERR_UPSTREAM_PENDING_CANCELLED' });
    assert.equal(m.stats()[0].pendingRequests, 0);
    const again = cluster.acquire({});
    assert.ok(again.ok, 'the waiting place is free again');
    again.lease.release({ failure: 'cancelled' });
    running.lease.release({ status: 200 });
    await m.close();
  });

  // maxConnections 1 keeps undici from opening a second connection while the first finishes
  // a response, so the connection count is exact.
  test('maxRequestsPerConnection: a connection serves at most that many requests', async () => {
    const upstream = await startEcho('limited');
    const m = createClusterManager();
    m.update([echoCluster('c', { connectionPool: { maxConnections: 1, maxRequestsPerConnection: 2 } })], [{ clusterName: 'c', endpoints: [upstream.endpoint()] }]);
    for (let i = 0; i < 6; i++) await send(m.get('c')!);
    assert.equal(upstream.connections, 3);
    m.update([echoCluster('one', { connectionPool: { maxConnections: 1, maxRequestsPerConnection: 1 } })], [{ clusterName: 'one', endpoints: [upstream.endpoint()] }]);
    for (let i = 0; i < 3; i++) await send(m.get('one')!);
    assert.equal(upstream.connections, 6, 'a limit of 1 disables reuse');
    m.update([echoCluster('d', { connectionPool: { maxConnections: 1 } })], [{ clusterName: 'd', endpoints: [upstream.endpoint()] }]);
    for (let i = 0; i < 6; i++) await send(m.get('d')!);
    assert.equal(upstream.connections, 7, 'without the limit one keep-alive connection serves all');
    await m.close();
    await upstream.close();
  });

  test('http2MaxRequests caps active requests; maxRetries caps concurrent retries', async () => {
    const m = createClusterManager();
    const name = 'c';
    m.update([echoCluster(name, { connectionPool: { http2MaxRequests: 2, maxRetries: 1 } })], [{ clusterName: name, endpoints: [{ address: { host: '127.0.0.1', port: 1 }, labels: {}, health: 'HEALTHY' }] }]);
    const cluster = m.get(name)!;
    const leases: UpstreamLease[] = [];
    for (let i = 0; i < 2; i++) {
      const got = cluster.acquire({});
      assert.ok(got.ok);
      leases.push(got.lease);
    }
    assert.deepEqual(cluster.acquire({}), { ok: false, flag: 'UO', detail: 'upstream_rq_overflow' });
    leases[0].release({ status: 200 });
    leases[0].release({ status: 200 }); // a second release is ignored
    assert.equal(m.stats()[0].activeRequests, 1);
    assert.ok(cluster.acquire({}).ok);

    assert.equal(cluster.tryReserveRetry(), true);
    assert.equal(cluster.tryReserveRetry(), false);
    cluster.releaseRetry();
    assert.equal(cluster.tryReserveRetry(), true);
    assert.equal(m.stats()[0].retryOverflows, 1);
    assert.equal(m.stats()[0].overflows, 1);
    await m.close();
  });
});

describe('update()', () => {
  test('a staying endpoint keeps its pool object; a removed endpoint pool is closed', async () => {
    const [a, b] = await Promise.all([startEcho('a'), startEcho('b')]);
    const events: string[] = [];
    const m = createClusterManager({ onEvent: (e) => events.push(`${e.type} ${e.key}`) });
    const name = 'outbound|80||ab';
    m.update([echoCluster(name)], [{ clusterName: name, endpoints: [a.endpoint(), b.endpoint()] }]);
    const cluster = m.get(name)!;
    const pools = new Map<string, unknown>();
    for (let i = 0; i < 4; i++) {
      const got = cluster.acquire({});
      assert.ok(got.ok);
      pools.set(got.lease.key, got.lease.dispatcher);
      await sendVia(got.lease);
    }
    const aKey = `127.0.0.1:${a.port}`;
    const bKey = `127.0.0.1:${b.port}`;
    const bPool = pools.get(bKey) as { closed: boolean };

    // An in-flight request on b survives b's removal (graceful close).
    b.holding = true;
    let onB: UpstreamLease | undefined;
    while (!onB) {
      const got = cluster.acquire({});
      assert.ok(got.ok);
      if (got.lease.key === bKey) onB = got.lease;
      else await sendVia(got.lease);
    }
    const held = once(b.events, 'held');
    const inflight = sendVia(onB);
    await held;

    m.update([echoCluster(name)], [{ clusterName: name, endpoints: [a.endpoint()] }]);
    assert.equal(m.get(name), cluster, 'the cluster object stays');
    assert.equal(bPool.closed, true);
    assert.ok(events.includes(`pool-closed ${bKey}`));
    for (let i = 0; i < 3; i++) {
      const got = cluster.acquire({});
      assert.ok(got.ok);
      assert.equal(got.lease.key, aKey);
      assert.equal(got.lease.dispatcher, pools.get(aKey), 'same pool object for the staying endpoint');
      await sendVia(got.lease);
    }
    b.releaseHeld();
    assert.equal((await inflight).body, 'b');
    assert.equal(m.stats()[0].activeRequests, 0);

    // A changed pool setting replaces the pool; removing the cluster closes its pools.
    m.update([echoCluster(name, { connectionPool: { maxConnections: 5 } })], [{ clusterName: name, endpoints: [a.endpoint()] }]);
    const got = cluster.acquire({});
    assert.ok(got.ok);
    assert.notEqual(got.lease.dispatcher, pools.get(aKey));
    await sendVia(got.lease);
    const aPool = got.lease.dispatcher as unknown as { closed: boolean };
    m.update([], []);
    assert.equal(m.get(name), undefined);
    assert.equal(aPool.closed, true);
    assert.equal(cluster.acquire({}).ok, false);
    await m.close();
    await Promise.all([a.close(), b.close()]);
  });

  test('a bad cluster rejects the whole update and keeps the old set', async () => {
    const m = createClusterManager();
    m.update([echoCluster('x')], []);
    assert.throws(() => m.update([echoCluster('y', { lb: { policy: 'MAGLEV', tableSize: 65536 } })], []), { code: 'SNW_ERR_UPSTREAM_MAGLEV_TABLE' });
    assert.throws(() => m.update([echoCluster('x'), echoCluster('x')], []), { code: 'SNW_ERR_UPSTREAM_DUPLICATE_CLUSTER' });
    assert.ok(m.get('x'));
    assert.equal(m.get('y'), undefined);
    await m.close();
  });

  test('PASSTHROUGH connects to the original destination', async () => {
    const e = await startEcho('direct');
    const m = createClusterManager();
    m.update([echoCluster('PassthroughCluster', { kind: 'originalDst', lb: { policy: 'PASSTHROUGH' } })], []);
    const cluster = m.get('PassthroughCluster')!;
    assert.deepEqual(cluster.acquire({}), { ok: false, flag: 'UH', detail: 'no_original_destination' });
    const ctx = { originalDestination: { host: '127.0.0.1', port: e.port } };
    assert.equal((await send(cluster, ctx)).body, 'direct');
    const got = cluster.acquire(ctx);
    assert.ok(got.ok);
    const pool = got.lease.dispatcher;
    got.lease.release({ status: 200 });
    const again = cluster.acquire(ctx);
    assert.ok(again.ok);
    assert.equal(again.lease.dispatcher, pool);
    again.lease.release({ status: 200 });
    assert.equal(m.stats()[0].endpoints[0].key, `127.0.0.1:${e.port}`);
    await m.close();
    await e.close();
  });
});

describe('close()', () => {
  test('waits for in-flight requests up to drainTimeoutMs, then destroys the pool', async () => {
    const upstream = await startEcho('stuck');
    upstream.holding = true;
    const clock = new ManualClock(0);
    const m = createClusterManager({ clock, drainTimeoutMs: 5000 });
    m.update([echoCluster('c')], [{ clusterName: 'c', endpoints: [upstream.endpoint()] }]);
    const got = m.get('c')!.acquire({});
    assert.ok(got.ok);
    const held = once(upstream.events, 'held');
    const inflight = sendVia(got.lease).then(() => 'done', () => 'failed');
    await held;
    let closed = false;
    const closing = m.close().then(() => (closed = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false, 'close waits for the in-flight request');
    clock.advance(5000);
    await closing;
    assert.equal(await inflight, 'failed');
    assert.equal(clock.pendingTimers(), 0);
    await upstream.close();
  });
});

describe('pool settings', () => {
  test('connection-pool fields map onto the HTTP/1.1 client, and the settings key tracks them', () => {
    const spec = poolSpec(
      echoCluster('c', {
        connectTimeoutMs: 1500,
        connectionPool: { maxConnections: 7, idleTimeoutMs: 60_000, maxRequestsPerConnection: 10, maxConnectionDurationMs: 300_000, tcpKeepalive: { timeMs: 7200_000 } },
      }),
      new Map(),
    );
    assert.deepEqual(spec.http1, {
      connectTimeoutMs: 1500,
      connections: 7,
      idleTimeoutMs: 60_000,
      maxRequestsPerConnection: 10,
      maxConnectionDurationMs: 300_000,
      tcpKeepalive: { initialDelayMs: 7200_000 },
    });
    assert.equal(poolSpec(echoCluster('c'), new Map()).settingsKey, poolSpec(echoCluster('other'), new Map()).settingsKey);
    assert.notEqual(poolSpec(echoCluster('c'), new Map()).settingsKey, poolSpec(echoCluster('c', { connectTimeoutMs: 1 }), new Map()).settingsKey);
  });

  test('connections to another sidecar stay idle as long as Envoy keeps them (1 h), others as long as undici does, unless the DestinationRule says (regression: a mutual-TLS handshake per burst)', async () => {
    const ca = await makeCa();
    const leaf = await makeClientCertificate(ca, 'productpage');
    const secrets = new Map<string, Secret>([
      ['default', { name: 'default', certificateChainPem: leaf.cert, privateKeyPem: leaf.key }],
      ['ROOTCA', { name: 'ROOTCA', trustedCaPem: ca.cert }],
    ]);
    const autoMtls = { mode: 'ISTIO_MUTUAL' as const, certificate: 'default', validationContext: 'ROOTCA' };
    const spec = poolSpec(echoCluster('c', { autoMtls }), secrets);
    assert.equal(spec.http1?.idleTimeoutMs, undefined, 'plaintext endpoints: the client\'s default');
    assert.equal(spec.mesh?.http1?.idleTimeoutMs, MESH_CONNECTION_IDLE_TIMEOUT_MS, 'sidecar endpoints: Envoy\'s idle timeout');
    assert.equal(poolSpec(echoCluster('c', { tls: autoMtls }), secrets).http1?.idleTimeoutMs, MESH_CONNECTION_IDLE_TIMEOUT_MS, 'a DestinationRule\'s ISTIO_MUTUAL too');
    assert.equal(poolSpec(echoCluster('c', { autoMtls, connectionPool: { idleTimeoutMs: 30_000 } }), secrets).mesh?.http1?.idleTimeoutMs, 30_000, 'the DestinationRule\'s idleTimeout wins');
  });

  test('HTTP/2 clusters get undici pools, their settings mapped onto its options; TLS HTTP/1.1 clusters keep sinew\'s client', () => {
    const spec = poolSpec(
      echoCluster('c', {
        protocol: 'http2',
        connectTimeoutMs: 1500,
        connectionPool: { maxConnections: 7, idleTimeoutMs: 60_000, maxRequestsPerConnection: 10, maxConnectionDurationMs: 300_000, tcpKeepalive: { timeMs: 7200_000 } },
      }),
      new Map(),
    );
    assert.equal(spec.http1, undefined);
    const o = spec.options as Record<string, unknown> & { connect: Record<string, unknown> };
    assert.equal(o.allowH2, true);
    assert.equal(o.connections, 7);
    assert.equal(o.keepAliveTimeout, 60_000);
    assert.equal(o.keepAliveMaxTimeout, 60_000);
    assert.equal(o.maxRequestsPerClient, 9, 'undici serves maxRequestsPerClient + 1 on a connection');
    assert.equal(o.clientTtl, 300_000);
    assert.deepEqual(o.connect, { timeout: 1500, keepAlive: true, keepAliveInitialDelay: 7200_000, useH2c: true });
    const h2 = poolSpec(echoCluster('c', { protocol: 'http2' }), new Map()).options as Record<string, unknown> & { connect: Record<string, unknown> };
    assert.equal(h2.connections, 1);
    const tls = poolSpec(echoCluster('c', { tls: { mode: 'SIMPLE', insecureSkipVerify: true } }), new Map());
    assert.ok(tls.http1, 'a TLS HTTP/1.1 upstream keeps the fast client');
    assert.equal(tls.http1.transport?.secure, true, 'connecting through the TLS transport socket');
    assert.equal(tls.secure, true);
    assert.notEqual(tls.settingsKey, poolSpec(echoCluster('c'), new Map()).settingsKey);
  });

});
