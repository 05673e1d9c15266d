/**
 * Active health checks against a real server that flips between healthy and unhealthy, driven
 * by ManualClock: each check is started by clock.advance() and awaited through the manager's
 * health-check event, never by sleeping.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../../src/core/clock.js';
import { createClusterManager, type UpstreamEvent } from '../../src/proxy/upstream/cluster-manager.js';
import { echoCluster, send, startEcho } from './upstream-fixtures.js';

function checks() {
  const bus = new EventEmitter();
  return {
    onEvent: (e: UpstreamEvent) => {
      if (e.type === 'health-check') bus.emit('check', e);
    },
    next: async (): Promise<Extract<UpstreamEvent, { type: 'health-check' }>> => (await once(bus, 'check'))[0],
  };
}

describe('active health checks', () => {
  test('HTTP: healthy after the first success, unhealthy after 2 failures, healthy again after 2 successes', async () => {
    const server = await startEcho('ready');
    const clock = new ManualClock(0);
    const hc = checks();
    const m = createClusterManager({ clock, onEvent: hc.onEvent });
    const hcConfig = { httpPath: '/ready', intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 2 };
    // A host the control plane has not vouched for (health UNKNOWN) starts failing.
    m.update([echoCluster('c')], [{ clusterName: 'c', endpoints: [server.endpoint({ healthCheck: hcConfig, health: 'UNKNOWN' })] }]);
    const cluster = m.get('c')!;
    // Not checked yet: no traffic (Envoy starts new hosts as failing active health check).
    assert.equal(cluster.acquire({}).ok, false);
    assert.equal(m.stats()[0].endpoints[0].health, 'UNHEALTHY');

    let next = hc.next();
    clock.advance(0);
    let ev = await next;
    assert.deepEqual({ ok: ev.ok, healthy: ev.healthy, changed: ev.changed }, { ok: true, healthy: true, changed: true });
    assert.equal((await send(cluster)).body, 'ready');

    server.status = 503;
    next = hc.next();
    clock.advance(1000);
    ev = await next;
    assert.deepEqual({ ok: ev.ok, healthy: ev.healthy, detail: ev.detail }, { ok: false, healthy: true, detail: '503' });
    const still = cluster.acquire({});
    assert.ok(still.ok, 'one failure is below unhealthyThreshold');
    still.lease.release({ status: 200 });

    next = hc.next();
    clock.advance(1000);
    ev = await next;
    assert.deepEqual({ healthy: ev.healthy, changed: ev.changed }, { healthy: false, changed: true });
    assert.deepEqual(cluster.acquire({}), { ok: false, flag: 'UH', detail: 'no_healthy_upstream' });

    server.status = 200;
    next = hc.next();
    clock.advance(1000);
    ev = await next;
    assert.equal(ev.healthy, false, 'one success is below healthyThreshold');
    next = hc.next();
    clock.advance(1000);
    ev = await next;
    assert.deepEqual({ healthy: ev.healthy, changed: ev.changed }, { healthy: true, changed: true });
    assert.equal((await send(cluster)).body, 'ready');

    // Removing the endpoint cancels its checks; close() leaves no timer behind.
    m.update([echoCluster('c')], [{ clusterName: 'c', endpoints: [] }]);
    assert.equal(clock.pendingTimers(), 0);
    await m.close();
    await server.close();
  });

  test('TCP (no path): a closed port fails, a listening port passes', async () => {
    const listener = net.createServer((s) => s.destroy());
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const port = (listener.address() as AddressInfo).port;
    // A port that was just closed refuses connections.
    const closedPort = await new Promise<number>((resolve) => {
      const tmp = net.createServer();
      tmp.listen(0, '127.0.0.1', () => {
        const p = (tmp.address() as AddressInfo).port;
        tmp.close(() => resolve(p));
      });
    });
    const clock = new ManualClock(0);
    const hc = checks();
    const m = createClusterManager({ clock, onEvent: hc.onEvent });
    const cfg = { intervalMs: 5000, timeoutMs: 1000, unhealthyThreshold: 1, healthyThreshold: 1 };
    m.update(
      [echoCluster('tcp', { protocol: 'tcp' })],
      [{ clusterName: 'tcp', endpoints: [
        { address: { host: '127.0.0.1', port }, labels: {}, health: 'HEALTHY', healthCheck: cfg },
        { address: { host: '127.0.0.1', port: closedPort }, labels: {}, health: 'HEALTHY', healthCheck: cfg },
      ] }],
    );
    const results: UpstreamEvent[] = [];
    const twoChecks = new Promise<void>((resolve) => {
      const on = (e: UpstreamEvent) => {
        results.push(e);
        if (results.length === 2) resolve();
        else void hc.next().then(on);
      };
      void hc.next().then(on);
    });
    clock.advance(0);
    await twoChecks;
    const byKey = new Map(results.map((e) => [(e as { key: string }).key, e as Extract<UpstreamEvent, { type: 'health-check' }>]));
    assert.equal(byKey.get(`127.0.0.1:${port}`)!.ok, true);
    assert.equal(byKey.get(`127.0.0.1:${closedPort}`)!.ok, false);
    const cluster = m.get('tcp')!;
    for (let i = 0; i < 4; i++) {
      const got = cluster.acquire({});
      assert.ok(got.ok);
      assert.equal(got.lease.key, `127.0.0.1:${port}`);
      got.lease.release({ status: 200 });
    }
    await m.close();
    assert.equal(clock.pendingTimers(), 0);
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  });

  test('HTTP timeout: a server that never answers fails when the clock passes timeoutMs', async () => {
    const server = await startEcho('silent');
    server.holding = true;
    const clock = new ManualClock(0);
    const hc = checks();
    const m = createClusterManager({ clock, onEvent: hc.onEvent });
    const cfg = { httpPath: '/slow', intervalMs: 1000, timeoutMs: 300, unhealthyThreshold: 1, healthyThreshold: 1 };
    m.update([echoCluster('c')], [{ clusterName: 'c', endpoints: [server.endpoint({ healthCheck: cfg })] }]);
    const held = once(server.events, 'held');
    const next = hc.next();
    clock.advance(0);
    await held; // the check reached the server and waits
    clock.advance(300);
    const ev = await next;
    assert.deepEqual({ ok: ev.ok, detail: ev.detail }, { ok: false, detail: 'timeout' });
    await m.close();
    await server.close();
  });

  test('a host the control plane reports HEALTHY serves at once; the check only demotes it (regression: 503 UH right after sinew up)', async () => {
    const server = await startEcho('ready');
    const clock = new ManualClock(0);
    const hc = checks();
    const m = createClusterManager({ clock, onEvent: hc.onEvent });
    const hcConfig = { httpPath: '/ready', intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 1, healthyThreshold: 1 };
    m.update([echoCluster('c')], [{ clusterName: 'c', endpoints: [server.endpoint({ healthCheck: hcConfig, health: 'HEALTHY' })] }]);
    const cluster = m.get('c')!;
    assert.equal((await send(cluster)).body, 'ready', 'served before any check ran');
    server.status = 503;
    const next = hc.next();
    clock.advance(0);
    const ev = await next;
    assert.deepEqual({ healthy: ev.healthy, changed: ev.changed }, { healthy: false, changed: true });
    assert.deepEqual(cluster.acquire({}), { ok: false, flag: 'UH', detail: 'no_healthy_upstream' });
    await m.close();
    await server.close();
  });

  test('a host that failed its first check serves once the control plane reports it HEALTHY (app became ready)', async () => {
    const server = await startEcho('ready');
    server.status = 503;
    const clock = new ManualClock(0);
    const hc = checks();
    const m = createClusterManager({ clock, onEvent: hc.onEvent });
    const hcConfig = { httpPath: '/ready', intervalMs: 10_000, timeoutMs: 500, unhealthyThreshold: 3, healthyThreshold: 1 };
    m.update([echoCluster('c')], [{ clusterName: 'c', endpoints: [server.endpoint({ healthCheck: hcConfig, health: 'UNHEALTHY' })] }]);
    const next = hc.next();
    clock.advance(0);
    assert.equal((await next).ok, false);
    server.status = 200;
    m.update([echoCluster('c')], [{ clusterName: 'c', endpoints: [server.endpoint({ healthCheck: hcConfig, health: 'HEALTHY' })] }]);
    assert.equal((await send(m.get('c')!)).body, 'ready', 'no wait for the next 10 s check');
    await m.close();
    await server.close();
  });
});
