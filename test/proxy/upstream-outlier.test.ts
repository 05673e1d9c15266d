/**
 * Outlier detection (Envoy consecutive-errors semantics, Istio outlierDetection), driven by
 * ManualClock: ejection after consecutive 5xx, return after baseEjectionTime, a longer second
 * ejection, maxEjectionPercent, minHealthPercent (panic) and local-origin failures.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint, OutlierDetection } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { createClusterManager, type UpstreamEvent } from '../../src/proxy/upstream/cluster-manager.js';
import type { UpstreamCluster } from '../../src/proxy/upstream/types.js';
import { countBy, echoCluster, send, startEcho } from './upstream-fixtures.js';

const od = (extra: Partial<OutlierDetection> = {}): OutlierDetection => ({
  consecutive5xxErrors: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 100,
  ...extra,
});

function fakeEndpoints(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({ address: { host: `10.0.0.${i + 1}`, port: 80 }, labels: {}, health: 'HEALTHY' as const }));
}

/** Acquires and releases with an outcome chosen per endpoint, without sending (pure logic). */
function drive(cluster: UpstreamCluster, n: number, outcome: (key: string) => { status?: number; failure?: 'connect-failure' | 'timeout' | 'reset' }): string[] {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const got = cluster.acquire({});
    if (!got.ok) throw new Error(got.flag);
    keys.push(got.lease.key);
    got.lease.release(outcome(got.lease.key));
  }
  return keys;
}

describe('outlier detection', () => {
  test('a 503 endpoint is ejected after 5 errors, returns after 30 s, and the second ejection lasts 60 s', async () => {
    const [good, bad] = await Promise.all([startEcho('good'), startEcho('bad')]);
    bad.status = 503;
    const clock = new ManualClock(1_000_000);
    const events: UpstreamEvent[] = [];
    const m = createClusterManager({ clock, random: new SeededRandom(5), onEvent: (e) => events.push(e) });
    const name = 'outbound|80||svc';
    m.update([echoCluster(name, { outlierDetection: od() })], [{ clusterName: name, endpoints: [good.endpoint(), bad.endpoint()] }]);
    const cluster = m.get(name)!;
    const badKey = `127.0.0.1:${bad.port}`;

    // Round robin alternates: 10 requests give bad its 5 consecutive 503s.
    for (let i = 0; i < 10; i++) await send(cluster);
    assert.equal(bad.hits, 5);
    let s = m.stats()[0];
    assert.equal(s.ejections, 1);
    assert.equal(s.endpoints.find((e) => e.key === badKey)!.ejectedUntil, 1_000_000 + 30_000);
    const ejected = events.find((e) => e.type === 'ejected');
    assert.deepEqual(ejected, { type: 'ejected', cluster: name, key: badKey, reason: 'consecutive_5xx', until: 1_030_000 });

    for (let i = 0; i < 10; i++) assert.equal((await send(cluster)).body, 'good');
    assert.equal(bad.hits, 5);

    clock.advance(20_000); // two interval sweeps: still ejected
    assert.equal((await send(cluster)).body, 'good');
    clock.advance(10_000); // the sweep at 30 s returns it
    assert.ok(events.some((e) => e.type === 'unejected' && e.key === badKey));
    const back = countBy(await Promise.all([send(cluster), send(cluster)]).then((r) => r.map((x) => x.body)));
    assert.equal(back.get('bad'), 1);

    // Still failing, and re-ejected before the next sweep lowers its multiplier: 2 x 30 s.
    for (let i = 0; i < 8; i++) await send(cluster);
    s = m.stats()[0];
    assert.equal(s.ejections, 2);
    assert.equal(s.endpoints.find((e) => e.key === badKey)!.ejectedUntil, clock.now() + 60_000);
    clock.advance(30_000);
    assert.ok(m.stats()[0].endpoints.find((e) => e.key === badKey)!.ejectedUntil, 'still out after 30 s');
    clock.advance(30_000);
    assert.equal(m.stats()[0].endpoints.find((e) => e.key === badKey)!.ejectedUntil, undefined);

    await m.close();
    await Promise.all([good.close(), bad.close()]);
  });

  test('a success in between resets the consecutive count', () => {
    const m = createClusterManager({ clock: new ManualClock(0) });
    m.update([echoCluster('c', { outlierDetection: od() })], [{ clusterName: 'c', endpoints: fakeEndpoints(1) }]);
    const cluster = m.get('c')!;
    drive(cluster, 4, () => ({ status: 500 }));
    drive(cluster, 1, () => ({ status: 200 }));
    drive(cluster, 4, () => ({ status: 500 }));
    assert.equal(m.stats()[0].ejections, 0);
    drive(cluster, 1, () => ({ status: 500 }));
    assert.equal(m.stats()[0].ejections, 1);
    return m.close();
  });

  test('maxEjectionPercent: with 10% of 2 hosts nothing is ejected (Envoy: (ejected+1)/hosts <= max)', () => {
    const m = createClusterManager({ clock: new ManualClock(0), random: new SeededRandom(1) });
    m.update([echoCluster('c', { outlierDetection: od({ maxEjectionPercent: 10 }) })], [{ clusterName: 'c', endpoints: fakeEndpoints(2) }]);
    const cluster = m.get('c')!;
    drive(cluster, 40, () => ({ status: 503 }));
    const s = m.stats()[0] as ReturnType<typeof m.stats>[0] & { ejectionOverflows: number };
    assert.equal(s.ejections, 0);
    assert.ok(s.ejectionOverflows > 0);
    return m.close();
  });

  test('maxEjectionPercent 50 of 4 hosts: at most 2 ejected', () => {
    const m = createClusterManager({ clock: new ManualClock(0), random: new SeededRandom(1) });
    m.update([echoCluster('c', { outlierDetection: od({ maxEjectionPercent: 50 }) })], [{ clusterName: 'c', endpoints: fakeEndpoints(4) }]);
    const cluster = m.get('c')!;
    drive(cluster, 200, () => ({ status: 503 }));
    const s = m.stats()[0];
    assert.equal(s.ejections, 2);
    assert.equal(s.endpoints.filter((e) => e.ejectedUntil !== undefined).length, 2);
    // Traffic goes to the two that remain.
    const keys = new Set(drive(cluster, 20, () => ({ status: 200 })));
    assert.equal(keys.size, 2);
    return m.close();
  });

  test('minHealthPercent: below it the cluster balances over every host (ejection has no effect)', () => {
    const m = createClusterManager({ clock: new ManualClock(0), random: new SeededRandom(1) });
    m.update([echoCluster('c', { outlierDetection: od({ minHealthPercent: 60 }) })], [{ clusterName: 'c', endpoints: fakeEndpoints(2) }]);
    const cluster = m.get('c')!;
    const badKey = '10.0.0.1:80';
    drive(cluster, 10, (k) => ({ status: k === badKey ? 503 : 200 }));
    const s = m.stats()[0] as ReturnType<typeof m.stats>[0] & { panic: boolean };
    assert.equal(s.ejections, 1);
    assert.equal(s.panic, true);
    const keys = countBy(drive(cluster, 20, () => ({ status: 200 })));
    assert.equal(keys.get(badKey), 10, 'the ejected host still gets its share');
    // Without minHealthPercent the same ejection takes it out.
    m.update([echoCluster('c', { outlierDetection: od() })], [{ clusterName: 'c', endpoints: fakeEndpoints(2) }]);
    assert.equal(countBy(drive(cluster, 20, () => ({ status: 200 }))).get(badKey), undefined);
    return m.close();
  });

  test('local-origin failures count as 5xx unless split; split uses consecutiveLocalOriginFailures', () => {
    const m = createClusterManager({ clock: new ManualClock(0) });
    m.update([echoCluster('c', { outlierDetection: od() })], [{ clusterName: 'c', endpoints: fakeEndpoints(1) }]);
    drive(m.get('c')!, 5, () => ({ failure: 'connect-failure' }));
    assert.equal(m.stats()[0].ejections, 1);

    const split = od({ consecutive5xxErrors: 0, consecutiveGatewayErrors: undefined, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3 });
    m.update([echoCluster('d', { outlierDetection: split })], [{ clusterName: 'd', endpoints: fakeEndpoints(1) }]);
    const d = m.get('d')!;
    drive(d, 10, () => ({ status: 503 }));
    drive(d, 2, () => ({ failure: 'timeout' }));
    drive(d, 1, () => ({ status: 200 }));
    drive(d, 2, () => ({ failure: 'reset' }));
    assert.equal(m.stats().find((x) => x.name === 'd')!.ejections, 0);
    drive(d, 1, () => ({ failure: 'reset' }));
    assert.equal(m.stats().find((x) => x.name === 'd')!.ejections, 1);
    return m.close();
  });

  test('consecutiveGatewayErrors counts only 502/503/504', () => {
    const m = createClusterManager({ clock: new ManualClock(0) });
    m.update([echoCluster('c', { outlierDetection: od({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 3 }) })], [{ clusterName: 'c', endpoints: fakeEndpoints(1) }]);
    const c = m.get('c')!;
    drive(c, 2, () => ({ status: 502 }));
    drive(c, 1, () => ({ status: 500 }));
    drive(c, 2, () => ({ status: 504 }));
    assert.equal(m.stats()[0].ejections, 0);
    drive(c, 1, () => ({ status: 503 }));
    assert.equal(m.stats()[0].ejections, 1);
    assert.deepEqual(c.acquire({}), { ok: false, flag: 'UH', detail: 'no_healthy_upstream' });
    return m.close();
  });

  test('close() cancels the interval timer', async () => {
    const clock = new ManualClock(0);
    const m = createClusterManager({ clock });
    m.update([echoCluster('c', { outlierDetection: od() })], [{ clusterName: 'c', endpoints: fakeEndpoints(1) }]);
    assert.equal(clock.pendingTimers(), 1);
    await m.close();
    assert.equal(clock.pendingTimers(), 0);
  });
});
