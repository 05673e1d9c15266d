/**
 * The upstream layer under the real proxy (listener -> router -> cluster manager): RS-11's
 * circuit breaker answered by the client proxy with 503 and flag UO, and an outlier ejection
 * steering traffic away from a failing endpoint. Runs over HTTP/1.1 and HTTP/2 downstream.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { RESPONSE_FLAGS_HEADER } from '../../src/api/response-flags.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { createProxy } from '../../src/proxy/proxy.js';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import { protocols } from './support/client.js';
import { cluster, endpoint, meshConfig, route, routeTo } from './support/config.js';
import { until } from './support/drive.js';
import { startEcho } from './upstream-fixtures.js';

const HTTPBIN = 'outbound|80||httpbin.default.svc.cluster.local';

for (const proto of protocols) {
  describe(`upstream through the proxy over ${proto.name}`, () => {
    test('RS-11: with 3 concurrent clients one gets 503 UO from the proxy; the others complete', async () => {
      const upstream = await startEcho('httpbin');
      upstream.holding = true;
      const config = meshConfig(
        [route('default/httpbin/0', {}, routeTo(HTTPBIN))],
        [cluster(HTTPBIN, { connectionPool: { maxConnections: 1, http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } })],
        [{ clusterName: HTTPBIN, endpoints: [endpoint(upstream.port)] }],
      );
      const clock = new ManualClock(0);
      const cm = createClusterManager({ clock });
      const proxy = createProxy({ config, clock, random: new SeededRandom(1), clusterManager: cm });
      await proxy.start();
      const client = proto.client(Object.values(proxy.listenerAddresses())[0].port);
      try {
        const held = once(upstream.events, 'held');
        const first = client.request({ path: '/get' });
        await held;
        const second = client.request({ path: '/get' });
        // The third request is refused only once the second waits in the proxy.
        await until(() => cm.stats()[0].pendingRequests === 1, 'the second request to wait');
        const third = await client.request({ path: '/get' });
        assert.equal(third.status, 503);
        assert.equal(third.headers[RESPONSE_FLAGS_HEADER], 'UO');
        assert.equal(upstream.hits, 1, 'the refused request never reached httpbin');
        const secondHeld = once(upstream.events, 'held');
        upstream.releaseHeld();
        assert.equal((await first).status, 200);
        await secondHeld;
        upstream.releaseHeld();
        assert.equal((await second).status, 200);
        assert.equal(cm.stats()[0].overflows, 1);
      } finally {
        await client.close();
        await proxy.close({ drainMs: 100 });
        await cm.close();
        await upstream.close();
      }
    });

    test('outlier detection: after 5 consecutive 503s the failing endpoint gets no traffic', async () => {
      const [good, bad] = await Promise.all([startEcho('good'), startEcho('bad')]);
      bad.status = 503;
      const od = { consecutive5xxErrors: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 100 };
      const config = meshConfig(
        [route('default/svc/0', {}, routeTo(HTTPBIN))],
        [cluster(HTTPBIN, { outlierDetection: od })],
        [{ clusterName: HTTPBIN, endpoints: [endpoint(good.port), endpoint(bad.port)] }],
      );
      const proxy = createProxy({ config, clock: new ManualClock(0), random: new SeededRandom(1) });
      await proxy.start();
      const client = proto.client(Object.values(proxy.listenerAddresses())[0].port);
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 10; i++) statuses.push((await client.request({ path: '/' })).status);
        assert.equal(statuses.filter((s) => s === 503).length, 5);
        for (let i = 0; i < 10; i++) assert.equal((await client.request({ path: '/' })).status, 200);
        assert.equal(bad.hits, 5);
      } finally {
        await client.close();
        await proxy.close({ drainMs: 100 });
        await Promise.all([good.close(), bad.close()]);
      }
    });
  });
}
