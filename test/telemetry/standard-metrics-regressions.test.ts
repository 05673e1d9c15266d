/**
 * Regressions in Istio's standard metrics, through real proxies over real sockets. Both
 * sidecars run the config the compiler builds for them from Bookinfo's Services:
 *
 *  - destination_service at the destination reporter was the Host header's short name
 *    ("ratings") instead of the service FQDN: the inbound cluster did not name its service.
 *  - the active health checks a client proxy runs from a Workload's readinessProbe reached the
 *    ratings sidecar's inbound listener and were counted in istio_requests_total (with
 *    source_workload "unknown"); Istio never counts probes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import net, { type AddressInfo } from 'node:net';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { SeededRandom } from '../../src/core/random.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import type { TelemetryRequestEvent } from '../../src/telemetry/events.js';
import { HEALTH_CHECK_USER_AGENT, MeshMetrics } from '../../src/telemetry/metrics.js';
import { decodePeerMetadata, encodePeerMetadata } from '../../src/telemetry/peer-metadata.js';
import { bookinfo, compile, workload } from '../compiler/support/mesh.js';
import { h1Client, type Client } from '../proxy/support/client.js';
import { startEcho } from '../proxy/support/echo.js';
import { requestSeries } from '../support/metrics.js';

const RATINGS_FQDN = 'ratings.default.svc.cluster.local';
const RATINGS_NODE = 'sidecar~ratings-v1.default';
const requestChannel = diagnosticsChannel.channel('sinew:proxy:request');

/** A port nothing listens on right now (the registry must name the sidecar's port before it binds). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Request events as the proxies publish them; `next` waits (bounded) for one that matches. */
function watchRequests() {
  const seen: TelemetryRequestEvent[] = [];
  const waiters: { match: (e: TelemetryRequestEvent) => boolean; resolve: (e: TelemetryRequestEvent) => void }[] = [];
  const onEvent = (msg: unknown) => {
    const e = msg as TelemetryRequestEvent;
    seen.push(e);
    for (const w of [...waiters]) if (w.match(e)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(e));
  };
  requestChannel.subscribe(onEvent);
  return {
    seen,
    next(what: string, match: (e: TelemetryRequestEvent) => boolean, timeoutMs = 10_000): Promise<TelemetryRequestEvent> {
      const found = seen.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no request event: ${what}`)), timeoutMs);
        waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
    close: () => requestChannel.unsubscribe(onEvent),
  };
}

async function scrape(proxy: Proxy): Promise<{ labels: Record<string, string>; value: number }[]> {
  const res = await fetch(`http://127.0.0.1:${proxy.metricsAddress()!.port}/stats/prometheus`);
  assert.equal(res.status, 200);
  return requestSeries(await res.text());
}

function pick(labels: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [k, labels[k]]));
}

/** Bookinfo, with ratings-v1 probed on /health every second (a readinessProbe, as examples/bookinfo has). */
function mesh(ratingsPort: number): { resources: Resource[]; instances: Map<string, { name: string; address: string; ports: Record<number, number> }[]> } {
  const { resources } = bookinfo();
  const ratings = workload('ratings-v1', {
    labels: { app: 'ratings', version: 'v1' },
    serviceAccount: 'bookinfo-ratings',
    readinessProbe: { httpGet: { path: '/health', port: 9080 }, periodSeconds: 1 },
  });
  return {
    resources: [...resources.filter((r) => !(r.kind === 'Workload' && r.metadata.name === 'ratings-v1')), ratings],
    instances: new Map([['default/ratings-v1', [{ name: 'ratings-v1-0', address: '127.0.0.1', ports: { 9080: ratingsPort } }]]]),
  };
}

test('regression: destination_service is the service FQDN at both reporters, and health checks are not counted', async () => {
  // The control plane gives every proxy the mesh key they prove their metadata to each other with.
  const meshKey = Buffer.alloc(32, 1).toString('base64');
  const ratingsPort = await freePort();
  const { resources, instances } = mesh(ratingsPort);
  const app = await startEcho('ratings-v1');
  const events = watchRequests();
  let ratings: Proxy | undefined;
  let productpage: Proxy | undefined;
  let h1: Client | undefined;
  // Everything started above and below is stopped in `finally`, whichever assertion fails: a
  // server left open would keep this file's process alive after its tests.
  try {
    const ratingsConfig: ProxyConfig = compile(resources, instances, {
      workload: 'ratings-v1',
      labels: { app: 'ratings', version: 'v1' },
      ports: { inbound: [{ containerPort: 9080, listen: { host: '127.0.0.1', port: ratingsPort }, app: { host: '127.0.0.1', port: app.port } }] },
      mesh: { meshKey },
    });
    const productpageConfig: ProxyConfig = compile(resources, instances, { workload: 'productpage-v1', ports: { outbound: { host: '127.0.0.1', port: 0 } }, mesh: { meshKey } });
    // The client proxy health-checks the ratings endpoint through ratings' inbound listener.
    const endpoint = productpageConfig.endpoints.find((e) => e.clusterName === `outbound|9080||${RATINGS_FQDN}`)!.endpoints[0];
    assert.deepEqual(endpoint.address, { host: '127.0.0.1', port: ratingsPort });
    assert.equal(endpoint.healthCheck?.httpPath, '/health');

    const tracer = { scheduledDelayMillis: 60_000, exportTimeoutMillis: 2_000 };
    ratings = createProxy({ config: ratingsConfig, metricsPort: 0, random: new SeededRandom(1), telemetry: { tracer } });
    await ratings.start();
    productpage = createProxy({ config: productpageConfig, metricsPort: 0, random: new SeededRandom(2), telemetry: { tracer } });
    await productpage.start();

    // A health check has gone through ratings' sidecar to the app and been published...
    const probe = await events.next('a health check at the ratings sidecar', (e) => e.node === RATINGS_NODE && e.userAgent === HEALTH_CHECK_USER_AGENT);
    assert.equal(probe.direction, 'inbound');
    assert.equal(probe.path, '/health');
    assert.equal(probe.status, 200);
    assert.ok(app.seen.some((r) => r.path === '/health'), 'the probe reached the app');

    // ...and one request of productpage's app to ratings.
    h1 = h1Client(productpage.listenerAddresses()['virtualOutbound'].port);
    const res = await h1.request({ host: 'ratings:9080', path: '/ratings/0' });
    assert.equal(res.status, 200);
    await events.next('the request at the ratings sidecar', (e) => e.node === RATINGS_NODE && e.path === '/ratings/0');
    await events.next('the request at the productpage sidecar', (e) => e.node === 'sidecar~productpage-v1.default' && e.path === '/ratings/0');

    const service = ['destination_service', 'destination_service_name', 'destination_service_namespace'];
    const dest = await scrape(ratings);
    assert.deepEqual(
      dest.map((s) => ({ ...pick(s.labels, ['reporter', 'source_workload', 'destination_workload', ...service]), value: s.value })),
      [{ reporter: 'destination', source_workload: 'productpage-v1', destination_workload: 'ratings-v1', destination_service: RATINGS_FQDN, destination_service_name: 'ratings', destination_service_namespace: 'default', value: 1 }],
      'one request at the destination reporter, named by its FQDN; no health checks',
    );
    const src = await scrape(productpage);
    assert.deepEqual(
      src.map((s) => ({ ...pick(s.labels, ['reporter', 'source_workload', 'destination_workload', ...service]), value: s.value })),
      [{ reporter: 'source', source_workload: 'productpage-v1', destination_workload: 'ratings-v1', destination_service: RATINGS_FQDN, destination_service_name: 'ratings', destination_service_namespace: 'default', value: 1 }],
    );
  } finally {
    events.close();
    await h1?.close();
    await productpage?.close({ drainMs: 100 });
    await ratings?.close({ drainMs: 100 });
    await app.close();
  }
});

test('regression: only what the health checker sends is left out of istio_requests_total', async () => {
  const ratings = { id: RATINGS_NODE, mode: 'sidecar' as const, workload: 'ratings-v1', namespace: 'default', labels: { app: 'ratings', version: 'v1' } };
  const productpage = { id: 'sidecar~productpage-v1.default', mode: 'sidecar' as const, workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };
  const base: TelemetryRequestEvent = {
    listener: 'inbound|9080', direction: 'inbound', requestId: 'r', method: 'GET', authority: 'ratings:9080', path: '/health', protocol: 'HTTP/1.1',
    cluster: 'inbound|9080||', destinationService: RATINGS_FQDN, status: 200, flags: '-', downstreamPeer: '127.0.0.1:1', attempts: 1,
    requestBytes: 0, responseBytes: 2, startTime: 0, durationMs: 1, userAgent: HEALTH_CHECK_USER_AGENT,
  };
  const m = new MeshMetrics();
  const total = async () => (await m.registry.getSingleMetric('istio_requests_total')!.get()).values.reduce((n, v) => n + v.value, 0);
  m.recordRequest(base, { local: ratings });
  assert.equal(await total(), 0, 'a health check at the inbound sidecar');
  // A meshed client's request carries its sidecar's metadata: never hidden by its user-agent.
  m.recordRequest({ ...base, peer: decodePeerMetadata(encodePeerMetadata(productpage)) }, { local: ratings });
  assert.equal(await total(), 1);
  m.recordRequest({ ...base, method: 'POST' }, { local: ratings });
  assert.equal(await total(), 2, 'the health checker only sends GET');
  m.recordRequest({ ...base, direction: 'outbound', cluster: `outbound|9080||${RATINGS_FQDN}` }, { local: productpage });
  assert.equal(await total(), 3, 'an app\'s request through its outbound sidecar is counted whatever its user-agent');
  m.recordRequest({ ...base, userAgent: 'curl/8.5.0' }, { local: ratings });
  assert.equal(await total(), 4);
});

test('destination_service labels when no service is known, at both reporters (istio/proxy istio_stats)', async () => {
  const ratings = { id: RATINGS_NODE, mode: 'sidecar' as const, workload: 'ratings-v1', namespace: 'default', labels: { app: 'ratings', version: 'v1' } };
  const productpage = { id: 'sidecar~productpage-v1.default', mode: 'sidecar' as const, workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };
  const base: TelemetryRequestEvent = {
    listener: 'virtualOutbound', direction: 'outbound', requestId: 'r', method: 'GET', authority: '', path: '/', protocol: 'HTTP/1.1',
    status: 200, flags: '-', downstreamPeer: '127.0.0.1:1', attempts: 1, requestBytes: 0, responseBytes: 0, startTime: 0, durationMs: 1,
  };
  const labels = async (m: MeshMetrics) =>
    (await m.registry.getSingleMetric('istio_requests_total')!.get()).values.map((v) => pick(v.labels as Record<string, string>, ['destination_service', 'destination_service_name', 'destination_service_namespace']));

  // Source reporter, nothing known: `unknown` throughout.
  let m = new MeshMetrics();
  m.recordRequest(base, { local: productpage });
  assert.deepEqual(await labels(m), [{ destination_service: 'unknown', destination_service_name: 'unknown', destination_service_namespace: 'unknown' }]);

  // Destination reporter, no service and no Host: its own canonical service, in its namespace.
  m = new MeshMetrics();
  m.recordRequest({ ...base, direction: 'inbound', cluster: 'inbound|9080||' }, { local: ratings });
  assert.deepEqual(await labels(m), [{ destination_service: 'ratings', destination_service_name: 'ratings', destination_service_namespace: 'default' }]);

  // Passthrough and BlackHole traffic: the host asked for, named after the cluster; the same
  // host through a ServiceEntry's cluster keeps its own name (separate series).
  m = new MeshMetrics();
  m.recordRequest({ ...base, cluster: 'PassthroughCluster', authority: 'httpbin.org' }, { local: productpage });
  m.recordRequest({ ...base, cluster: 'outbound|80||httpbin.org', authority: 'httpbin.org' }, { local: productpage });
  m.recordRequest({ ...base, cluster: 'BlackHoleCluster', authority: 'example.com:80' }, { local: productpage });
  assert.deepEqual(await labels(m), [
    { destination_service: 'httpbin.org', destination_service_name: 'PassthroughCluster', destination_service_namespace: 'unknown' },
    { destination_service: 'httpbin.org', destination_service_name: 'httpbin.org', destination_service_namespace: 'unknown' },
    { destination_service: 'example.com', destination_service_name: 'BlackHoleCluster', destination_service_namespace: 'unknown' },
  ]);
});
