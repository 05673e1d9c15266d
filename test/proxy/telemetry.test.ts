/**
 * Telemetry through real proxies: productpage's sidecar (outbound listener) -> reviews'
 * sidecar (inbound listener) -> an echo app, over real sockets. Both proxies report Istio's
 * standard metrics with each other's identity (metadata exchange), one request makes one
 * trace of a client and a server span in a collector, an incoming trace context is kept, and
 * a collector that is down costs no request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { ProxyConfig, ProxyNode, TelemetrySettings } from '../../src/api/proxy-config.js';
import { SeededRandom } from '../../src/core/random.js';
import { HEALTH_CHECK_USER_AGENT } from '../../src/proxy/events.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import type { AccessLogSink } from '../../src/telemetry/access-log.js';
import { peerMetadataHeaders } from '../../src/telemetry/peer-metadata.js';
import { NO_PEER_IDENTITY, peerIdentityFor } from '../../src/proxy/peer-identity.js';
import { TraceStore } from '../../src/telemetry/trace-store.js';
import { h1Client } from './support/client.js';
import { cluster, endpoint, httpListener, route, routeTo, table, vhost, withMeshKey } from './support/config.js';
import { deadPort, startEcho, type EchoServer } from './support/echo.js';
import { requestSeries } from '../support/metrics.js';

const productpage: ProxyNode = { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };
const reviews: ProxyNode = { id: 'sidecar~reviews-v2-0.default', mode: 'sidecar', workload: 'reviews-v2', namespace: 'default', labels: { app: 'reviews', version: 'v2' } };
const REVIEWS_FQDN = 'reviews.default.svc.cluster.local';
const OUT_CLUSTER = `outbound|9080||${REVIEWS_FQDN}`;

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}
async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

function inboundConfig(appPort: number, telemetry: TelemetrySettings): ProxyConfig {
  return {
    version: 'in-1',
    node: reviews,
    listeners: [httpListener('virtualInbound', { routeConfigName: 'inbound|9080' }, { direction: 'inbound' })],
    routeConfigs: [table('inbound|9080', [vhost('inbound|http|9080', ['*'], [route('default', {}, routeTo('inbound|9080||'))])])],
    clusters: [cluster('inbound|9080||', { service: { host: REVIEWS_FQDN, port: 9080 } })],
    endpoints: [{ clusterName: 'inbound|9080||', endpoints: [endpoint(appPort)] }],
    telemetry,
  };
}

function outboundConfig(inboundPort: number, telemetry: TelemetrySettings): ProxyConfig {
  return {
    version: 'out-1',
    node: productpage,
    listeners: [httpListener('virtualOutbound', { routeConfigName: '9080', acceptAbsoluteUri: true })],
    routeConfigs: [table('9080', [vhost(`${REVIEWS_FQDN}:9080`, ['reviews', 'reviews:9080', REVIEWS_FQDN, `${REVIEWS_FQDN}:9080`], [route('default', {}, routeTo(OUT_CLUSTER))])])],
    clusters: [cluster(OUT_CLUSTER, { service: { host: REVIEWS_FQDN, namespace: 'default', name: 'reviews', port: 9080 } })],
    endpoints: [{ clusterName: OUT_CLUSTER, endpoints: [endpoint(inboundPort, { app: 'reviews', version: 'v2' })] }],
    telemetry,
  };
}

interface Mesh {
  app: EchoServer;
  inbound: Proxy;
  outbound: Proxy;
  outboundPort: number;
  close(): Promise<void>;
}

/** Two sidecars in front of an echo app, each with its own metrics port. */
async function startMesh(telemetry: TelemetrySettings, opts: { accessLog?: string[] } = {}): Promise<Mesh> {
  const app = await startEcho('reviews-v2');
  const sink: AccessLogSink | undefined = opts.accessLog && { write: (l) => void opts.accessLog!.push(l), close: async () => undefined, stats: { written: 0, dropped: 0 } };
  // Exports happen when the test flushes, never on a timer during the test.
  const tracer = { scheduledDelayMillis: 60_000, exportTimeoutMillis: 2_000 };
  // Both carry the mesh key, with which each proves its metadata to the other.
  const inbound = createProxy({ config: withMeshKey(inboundConfig(app.port, telemetry)), metricsPort: 0, random: new SeededRandom(1), telemetry: { tracer } });
  await inbound.start();
  const inboundPort = inbound.listenerAddresses()['virtualInbound'].port;
  const outbound = createProxy({
    config: withMeshKey(outboundConfig(inboundPort, telemetry)),
    metricsPort: 0,
    adminPort: 0,
    random: new SeededRandom(2),
    telemetry: { tracer, accessLogSink: sink },
  });
  await outbound.start();
  return {
    app,
    inbound,
    outbound,
    outboundPort: outbound.listenerAddresses()['virtualOutbound'].port,
    async close() {
      await outbound.close({ drainMs: 100 });
      await inbound.close({ drainMs: 100 });
      await app.close();
    },
  };
}

async function scrape(port: number, path = '/stats/prometheus'): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

async function flushSpans(...proxies: Proxy[]): Promise<void> {
  await Promise.all(proxies.map((p) => p.telemetry!.tracer!.flush()));
}

test('N requests through two sidecars: both proxies count exactly N with each other\'s identity', async () => {
  const N = 25;
  const logs: string[] = [];
  const mesh = await startMesh({ tracingSamplingPercentage: 0, accessLog: { enabled: true, format: 'json' } }, { accessLog: logs });
  const client = h1Client(mesh.outboundPort);
  try {
    for (let i = 0; i < N; i++) {
      const res = await client.request({ host: 'reviews:9080', path: `/reviews/${i}`, headers: i === 0 ? { 'x-request-id': '3f1c2b9e-7d4a-4c1e-9b2f-0a1b2c3d4e5f' } : {} });
      assert.equal(res.status, 200);
      // The exchange headers are consumed by the sidecars: neither the app nor its caller sees them.
      assert.equal(res.headers['x-envoy-peer-metadata'], undefined);
      assert.equal(res.headers['x-envoy-peer-metadata-id'], undefined);
    }
    assert.equal(mesh.app.seen.length, N);
    for (const seen of mesh.app.seen) {
      assert.equal(seen.headers['x-envoy-peer-metadata'], undefined);
      assert.match(String(seen.headers['traceparent']), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'trace context propagates even unsampled');
    }

    const source = requestSeries(await scrape(mesh.outbound.metricsAddress()!.port));
    assert.equal(source.length, 1, 'one series on the client side');
    assert.equal(source[0].value, N);
    assert.deepEqual(
      pick(source[0].labels, ['reporter', 'source_workload', 'source_app', 'destination_workload', 'destination_version', 'destination_service', 'destination_service_name', 'response_code', 'response_flags', 'request_protocol']),
      { reporter: 'source', source_workload: 'productpage-v1', source_app: 'productpage', destination_workload: 'reviews-v2', destination_version: 'v2', destination_service: REVIEWS_FQDN, destination_service_name: 'reviews', response_code: '200', response_flags: '-', request_protocol: 'http' },
    );

    const dest = requestSeries(await scrape(mesh.inbound.metricsAddress()!.port));
    assert.equal(dest.length, 1, 'one series on the server side');
    assert.equal(dest[0].value, N);
    assert.deepEqual(
      pick(dest[0].labels, ['reporter', 'source_workload', 'source_version', 'destination_workload', 'destination_app', 'destination_service', 'connection_security_policy']),
      { reporter: 'destination', source_workload: 'productpage-v1', source_version: 'v1', destination_workload: 'reviews-v2', destination_app: 'reviews', destination_service: REVIEWS_FQDN, connection_security_policy: 'none' },
    );

    // The admin port serves the same text.
    assert.equal(requestSeries(await scrape(mesh.outbound.adminAddress()!.port))[0].value, N);

    // HD-01: a client-supplied x-request-id reaches the app and the client proxy's access log.
    assert.equal(mesh.app.seen[0].headers['x-request-id'], '3f1c2b9e-7d4a-4c1e-9b2f-0a1b2c3d4e5f');
    assert.equal(logs.length, N, 'only the outbound proxy logs, one line per request');
    const first = JSON.parse(logs[0]) as Record<string, unknown>;
    assert.equal(first.request_id, '3f1c2b9e-7d4a-4c1e-9b2f-0a1b2c3d4e5f');
    // The listener's address, on every request of the kept-alive connection (read once per connection).
    for (const line of logs) assert.equal((JSON.parse(line) as Record<string, unknown>).downstream_local_address, `127.0.0.1:${mesh.outboundPort}`);
  } finally {
    await client.close();
    await mesh.close();
  }
});

test('one request makes one trace: a client span and its child server span reach the collector', async () => {
  const store = new TraceStore();
  const collector = http.createServer((req, res) => (req.url === '/v1/traces' ? store.handleOtlp(req, res) : res.writeHead(404).end()));
  const collectorPort = await listen(collector);
  const mesh = await startMesh({ tracingSamplingPercentage: 100, tracingCollectors: [{ kind: 'otlp-http', url: `http://127.0.0.1:${collectorPort}/v1/traces` }] });
  const client = h1Client(mesh.outboundPort);
  try {
    const res = await client.request({ host: 'reviews:9080', path: '/reviews/1' });
    assert.equal(res.status, 200);
    await flushSpans(mesh.outbound, mesh.inbound);

    const tp = String(mesh.app.seen[0].headers['traceparent']);
    const [, traceId, parentOfApp, flags] = tp.split('-');
    assert.equal(flags, '01');
    const trace = store.get(traceId);
    assert.ok(trace, 'the trace reached the collector');
    assert.equal(trace.spans.length, 2);
    const clientSpan = trace.spans.find((s) => s.kind === 'client')!;
    const serverSpan = trace.spans.find((s) => s.kind === 'server')!;
    assert.equal(clientSpan.parentSpanId, undefined, 'the client span is the root');
    assert.equal(serverSpan.parentSpanId, clientSpan.spanId);
    assert.equal(parentOfApp, serverSpan.spanId, 'the app is told the server span is its parent');
    assert.equal(mesh.app.seen[0].headers['x-b3-spanid'], serverSpan.spanId);
    assert.equal(clientSpan.service, 'productpage.default');
    assert.equal(serverSpan.service, 'reviews.default');
    assert.equal(clientSpan.tags['upstream_cluster'], OUT_CLUSTER);
    assert.equal(serverSpan.tags['http.status_code'], '200');
    assert.equal(clientSpan.tags['guid:x-request-id'], serverSpan.tags['guid:x-request-id']);
  } finally {
    await client.close();
    await mesh.close();
    await closeServer(collector);
  }
});

test('an incoming traceparent keeps its trace id and becomes the client span\'s parent', async () => {
  const store = new TraceStore();
  const collector = http.createServer((req, res) => store.handleOtlp(req, res));
  const collectorPort = await listen(collector);
  // 1 % sampling: the incoming sampled flag decides, not the proxy's own draw.
  const mesh = await startMesh({ tracingSamplingPercentage: 1, tracingCollectors: [{ kind: 'otlp-http', url: `http://127.0.0.1:${collectorPort}/v1/traces` }] });
  const client = h1Client(mesh.outboundPort);
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  try {
    const res = await client.request({ host: 'reviews:9080', path: '/', headers: { traceparent: `00-${traceId}-${callerSpan}-01`, 'x-b3-traceid': 'ffffffffffffffff', 'x-b3-spanid': 'eeeeeeeeeeeeeeee' } });
    assert.equal(res.status, 200);
    await flushSpans(mesh.outbound, mesh.inbound);
    const seen = mesh.app.seen[0].headers;
    assert.equal(String(seen['traceparent']).split('-')[1], traceId);
    assert.equal(seen['x-b3-traceid'], traceId, 'stale B3 headers from the caller are replaced');
    const trace = store.get(traceId)!;
    assert.ok(trace);
    const clientSpan = trace.spans.find((s) => s.kind === 'client')!;
    const serverSpan = trace.spans.find((s) => s.kind === 'server')!;
    assert.equal(clientSpan.parentSpanId, callerSpan);
    assert.equal(serverSpan.parentSpanId, clientSpan.spanId);
    assert.equal(seen['x-b3-parentspanid'], clientSpan.spanId);

    // An unsampled caller stays unsampled all the way: nothing is exported.
    const before = mesh.outbound.telemetry!.tracer!.stats.sampled;
    await client.request({ host: 'reviews:9080', path: '/', headers: { traceparent: `00-${'a'.repeat(32)}-${callerSpan}-00` } });
    assert.equal(mesh.outbound.telemetry!.tracer!.stats.sampled, before);
    assert.match(String(mesh.app.seen[1].headers['traceparent']), new RegExp(`^00-${'a'.repeat(32)}-[0-9a-f]{16}-00$`));
  } finally {
    await client.close();
    await mesh.close();
    await closeServer(collector);
  }
});

test('a peer\'s active health check at an inbound sidecar is neither traced nor counted', async () => {
  const mesh = await startMesh({ tracingSamplingPercentage: 100 });
  const inboundPort = mesh.inbound.listenerAddresses()['virtualInbound'].port;
  const client = h1Client(inboundPort);
  try {
    const tracer = mesh.inbound.telemetry!.tracer!;
    const check = await client.request({ host: 'reviews:9080', path: '/health', headers: { 'user-agent': HEALTH_CHECK_USER_AGENT } });
    assert.equal(check.status, 200);
    assert.equal(tracer.stats.started, 0, 'no server span for a health check');
    // The same request from anything else is traffic: traced.
    await client.request({ host: 'reviews:9080', path: '/health', headers: { 'user-agent': 'curl/8' } });
    assert.equal(tracer.stats.started, 1);
    const series = requestSeries(await scrape(mesh.inbound.metricsAddress()!.port));
    assert.equal(series.reduce((n, s) => n + s.value, 0), 1, 'only the request that is not a health check is counted');
  } finally {
    await client.close();
    await mesh.close();
  }
});

test('an inbound sidecar answers the metadata exchange only to a caller that proved its own', async () => {
  const mesh = await startMesh({ tracingSamplingPercentage: 0 });
  const client = h1Client(mesh.inbound.listenerAddresses()['virtualInbound'].port);
  const own = mesh.inbound.telemetry!.localPeerHeaders;
  try {
    // A caller outside the mesh sends none and learns nothing (Istio's peer_metadata filter).
    const plain = await client.request({ host: 'reviews:9080', path: '/' });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['x-envoy-peer-metadata'], undefined);
    assert.equal(plain.headers['x-envoy-peer-metadata-id'], undefined);
    // A sidecar sends both with their proof and gets the inbound's back, proven.
    const caller = peerMetadataHeaders(productpage);
    const proof = peerIdentityFor(withMeshKey(outboundConfig(0, {})), caller, NO_PEER_IDENTITY).proofHeaders;
    const meshed = await client.request({ host: 'reviews:9080', path: '/', headers: { ...caller, ...proof } });
    assert.equal(meshed.headers['x-envoy-peer-metadata'], own['x-envoy-peer-metadata']);
    assert.equal(meshed.headers['x-envoy-peer-metadata-id'], own['x-envoy-peer-metadata-id']);
    assert.match(String(meshed.headers['x-sinew-peer-signature']), /^[A-Za-z0-9_-]{43}$/);
    // The same headers without the proof, or with another proxy's, are a stranger's.
    for (const headers of [caller, { ...caller, 'x-sinew-peer-signature': String(meshed.headers['x-sinew-peer-signature']) }]) {
      const unproven = await client.request({ host: 'reviews:9080', path: '/', headers });
      assert.equal(unproven.headers['x-envoy-peer-metadata'], undefined);
      assert.equal(unproven.headers['x-envoy-peer-metadata-id'], undefined);
    }
  } finally {
    await client.close();
    await mesh.close();
  }
});

test('a collector that is down loses no request: spans are dropped and counted', async () => {
  const N = 20;
  const down = await deadPort();
  const mesh = await startMesh({ tracingSamplingPercentage: 100, tracingCollectors: [{ kind: 'otlp-http', url: `http://127.0.0.1:${down}/v1/traces` }] });
  const client = h1Client(mesh.outboundPort);
  try {
    const results = await Promise.all(Array.from({ length: N }, (_, i) => client.request({ host: 'reviews:9080', path: `/${i}` })));
    assert.deepEqual(results.map((r) => r.status), Array(N).fill(200));
    await flushSpans(mesh.outbound, mesh.inbound);
    for (const p of [mesh.outbound, mesh.inbound]) {
      const stats = p.telemetry!.tracer!.stats;
      assert.equal(stats.sampled, N);
      assert.equal(stats.exported, 0);
      assert.equal(stats.dropped, N);
    }
  } finally {
    await client.close();
    await mesh.close();
  }
});

test('the merged endpoint serves the proxy\'s metrics and the app\'s, and survives an app that is down', async () => {
  const appMetrics = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('# HELP reviews_cache_hits Cache hits.\n# TYPE reviews_cache_hits counter\nreviews_cache_hits 7\n');
  });
  const appMetricsPort = await listen(appMetrics);
  const app = await startEcho('reviews-v2');
  const down = await deadPort();
  const up = createProxy({ config: inboundConfig(app.port, {}), mergedMetricsPort: 0, appMetricsUrl: `http://127.0.0.1:${appMetricsPort}/metrics` });
  const broken = createProxy({ config: { ...inboundConfig(app.port, {}), node: { ...reviews, id: 'sidecar~reviews-v2-1.default' } }, mergedMetricsPort: 0, appMetricsUrl: `http://127.0.0.1:${down}/metrics` });
  await up.start();
  await broken.start();
  try {
    const merged = await scrape(up.mergedMetricsAddress()!.port);
    assert.match(merged, /^reviews_cache_hits 7$/m);
    assert.match(merged, /^# TYPE istio_requests_total counter$/m);
    const alone = await scrape(broken.mergedMetricsAddress()!.port);
    assert.match(alone, /^# TYPE istio_requests_total counter$/m);
    assert.doesNotMatch(alone, /reviews_cache_hits/);
  } finally {
    await up.close({ drainMs: 0 });
    await broken.close({ drainMs: 0 });
    await app.close();
    await closeServer(appMetrics);
  }
});

test('telemetry off: no trace or peer headers, no metrics', async () => {
  const app = await startEcho('reviews-v2');
  const proxy = createProxy({ config: outboundConfig(app.port, { tracingSamplingPercentage: 100 }), telemetry: false, adminPort: 0 });
  await proxy.start();
  const client = h1Client(proxy.listenerAddresses()['virtualOutbound'].port);
  try {
    assert.equal((await client.request({ host: 'reviews:9080', path: '/' })).status, 200);
    const seen = app.seen[0].headers;
    assert.equal(seen['traceparent'], undefined);
    assert.equal(seen['x-envoy-peer-metadata'], undefined);
    assert.equal(proxy.telemetry, undefined);
    const res = await fetch(`http://127.0.0.1:${proxy.adminAddress()!.port}/stats/prometheus`);
    assert.equal(res.status, 404);
    await res.text();
  } finally {
    await client.close();
    await proxy.close({ drainMs: 0 });
    await app.close();
  }
});

test('a gateway makes a server span and a client span as its child; outside peer metadata is not trusted', async () => {
  const store = new TraceStore();
  const collector = http.createServer((req, res) => store.handleOtlp(req, res));
  const collectorPort = await listen(collector);
  const app = await startEcho('productpage-v1');
  const gatewayNode: ProxyNode = { id: 'router~istio-ingressgateway.istio-system', mode: 'router', workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' } };
  const c = 'outbound|9080||productpage.default.svc.cluster.local';
  const gateway = createProxy({
    config: {
      version: 'gw-1',
      node: gatewayNode,
      listeners: [httpListener('0.0.0.0_8080', { routeConfigName: 'http.8080' }, { direction: 'gateway' })],
      routeConfigs: [table('http.8080', [vhost('*:8080', ['*'], [route('bookinfo', {}, routeTo(c))])])],
      clusters: [cluster(c, { service: { host: 'productpage.default.svc.cluster.local', port: 9080 } })],
      endpoints: [{ clusterName: c, endpoints: [endpoint(app.port)] }],
      telemetry: { tracingSamplingPercentage: 100, tracingCollectors: [{ kind: 'otlp-http', url: `http://127.0.0.1:${collectorPort}/v1/traces` }] },
    },
    metricsPort: 0,
    random: new SeededRandom(5),
    telemetry: { tracer: { scheduledDelayMillis: 60_000 } },
  });
  await gateway.start();
  const client = h1Client(gateway.listenerAddresses()['0.0.0.0_8080'].port);
  try {
    const forged = Buffer.from(JSON.stringify({ workload: 'forged', namespace: 'default' })).toString('base64');
    const res = await client.request({ host: 'bookinfo.example.com', path: '/productpage', headers: { 'x-envoy-peer-metadata': forged } });
    assert.equal(res.status, 200);
    await gateway.telemetry!.tracer!.flush();
    const seen = app.seen[0].headers;
    const traceId = String(seen['traceparent']).split('-')[1];
    const trace = store.get(traceId)!;
    assert.equal(trace.spans.length, 2);
    const server = trace.spans.find((s) => s.kind === 'server')!;
    const clientSpan = trace.spans.find((s) => s.kind === 'client')!;
    assert.equal(server.parentSpanId, undefined);
    assert.equal(clientSpan.parentSpanId, server.spanId);
    assert.equal(String(seen['traceparent']).split('-')[2], clientSpan.spanId, 'the upstream is the client span\'s child');
    assert.equal(server.service, 'istio-ingressgateway.istio-system');
    // The gateway sends its own identity upstream, never the client's forged one.
    const md = JSON.parse(Buffer.from(String(seen['x-envoy-peer-metadata']), 'base64').toString()) as { workload: string };
    assert.equal(md.workload, 'istio-ingressgateway');
    const series = requestSeries(await scrape(gateway.metricsAddress()!.port));
    assert.equal(series.length, 1);
    assert.equal(series[0].labels.reporter, 'source');
    assert.equal(series[0].labels.source_workload, 'istio-ingressgateway');
    assert.equal(series[0].labels.destination_service, 'productpage.default.svc.cluster.local');
  } finally {
    await client.close();
    await gateway.close({ drainMs: 0 });
    await app.close();
    await closeServer(collector);
  }
});

for (const protocol of ['http1', 'http2'] as const) {
  test(`an outbound sidecar sends its own identity and trace context over ${protocol}, in place of the app's`, async () => {
    const app = await startEcho('reviews-v2', { h2: protocol === 'http2' });
    const config = outboundConfig(app.port, { tracingSamplingPercentage: 0 });
    config.clusters = [cluster(OUT_CLUSTER, { protocol, service: { host: REVIEWS_FQDN, port: 9080 } })];
    const outbound = createProxy({ config, random: new SeededRandom(6) });
    await outbound.start();
    const client = h1Client(outbound.listenerAddresses()['virtualOutbound'].port);
    try {
      const forged = Buffer.from(JSON.stringify({ workload: 'forged', namespace: 'default' })).toString('base64');
      const res = await client.request({ host: 'reviews:9080', path: '/reviews/1', headers: { 'x-envoy-peer-metadata': forged, 'x-envoy-peer-metadata-id': 'sidecar~forged', 'x-b3-sampled': '0' } });
      assert.equal(res.status, 200);
      const seen = app.seen[0].headers;
      // Exactly the sidecar's values: a second copy would arrive joined to the first.
      const own = peerMetadataHeaders(productpage);
      assert.equal(seen['x-envoy-peer-metadata'], own['x-envoy-peer-metadata']);
      assert.equal(seen['x-envoy-peer-metadata-id'], productpage.id);
      assert.equal(seen['x-b3-sampled'], '0', 'the app\'s decision is kept');
      assert.match(String(seen['x-b3-traceid']), /^[0-9a-f]{32}$/);
      assert.equal(seen['traceparent'], `00-${seen['x-b3-traceid']}-${seen['x-b3-spanid']}-00`);
    } finally {
      await client.close();
      await outbound.close({ drainMs: 0 });
      await app.close();
    }
  });
}

test('TCP connections are counted opened at accept and closed with their bytes', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as AddressInfo).port;
  const c = 'outbound|9000||tcp-echo.default.svc.cluster.local';
  const proxy = createProxy({
    config: {
      version: 'tcp-1',
      node: productpage,
      listeners: [{ name: 'tcp', address: { host: '127.0.0.1', port: 0 }, direction: 'outbound', protocol: 'tcp', tcp: { routes: [{ destinations: [{ cluster: c, weight: 1 }] }] } }],
      routeConfigs: [],
      clusters: [cluster(c, { protocol: 'tcp', service: { host: 'tcp-echo.default.svc.cluster.local', port: 9000 } })],
      endpoints: [{ clusterName: c, endpoints: [endpoint(echoPort)] }],
    },
    metricsPort: 0,
  });
  await proxy.start();
  const metric = async (name: string) => Number(new RegExp(`^${name}\\{[^}]*destination_service="tcp-echo.default.svc.cluster.local"[^}]*\\} (\\d+)$`, 'm').exec(await scrape(proxy.metricsAddress()!.port))?.[1] ?? 0);
  try {
    const socket = net.connect(proxy.listenerAddresses()['tcp'].port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('hello');
    await once(socket, 'data');
    assert.equal(await metric('istio_tcp_connections_opened_total'), 1, 'opened while still open');
    assert.equal(await metric('istio_tcp_connections_closed_total'), 0);
    socket.end();
    await once(socket, 'close');
    // The proxy sees the close a moment after the client: wait for its own count, not a timer.
    while ((await metric('istio_tcp_connections_closed_total')) === 0) await new Promise((r) => setImmediate(r));
    assert.equal(await metric('istio_tcp_connections_opened_total'), 1, 'not counted twice');
    assert.equal(await metric('istio_tcp_received_bytes_total'), 5);
    assert.equal(await metric('istio_tcp_sent_bytes_total'), 5);
  } finally {
    await proxy.close({ drainMs: 0 });
    await new Promise<void>((r) => echo.close(() => r()));
  }
});

function pick(labels: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [k, labels[k]]));
}
