import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ProxyNode } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { Tracer, type CollectorSpec } from '../../src/telemetry/tracing.js';
import { TraceStore } from '../../src/telemetry/trace-store.js';
import { parseTraceparent } from '../../src/telemetry/propagation.js';

const node: ProxyNode = {
  id: 'sidecar~reviews-v2-0.default',
  mode: 'sidecar',
  workload: 'reviews-v2',
  namespace: 'default',
  labels: { app: 'reviews', version: 'v2' },
};
const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const req = { method: 'GET', url: 'http://reviews:9080/reviews/0', requestId: 'rid-7', peerAddress: '127.0.0.1:5000' };

function sampledCount(tracer: Tracer, n: number, headers: Record<string, string> = {}): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (tracer.startServerSpan(headers, req).sampled) k++;
  return k;
}

test('sampling: 100% / 0% / 1% with a seeded random; incoming decisions are kept', () => {
  const mk = (p: number | undefined, seed = 42) => new Tracer({ node, randomSamplingPercentage: p, random: new SeededRandom(seed) });
  assert.equal(sampledCount(mk(100), 10_000), 10_000);
  assert.equal(sampledCount(mk(0), 10_000), 0);
  // Binomial(10000, 0.01): mean 100, sd ~9.95; allow 3 sd, for several seeds.
  for (const seed of [1, 2, 3, 42]) {
    const k = sampledCount(mk(1, seed), 10_000);
    assert.ok(k >= 70 && k <= 130, `seed ${seed}: ${k} of 10000 sampled at 1%`);
  }
  // No percentage configured: only incoming decisions start sampled traces.
  assert.equal(sampledCount(mk(undefined), 1000), 0);

  const on = { traceparent: `00-${T}-${S}-01` };
  const off = { traceparent: `00-${T}-${S}-00` };
  assert.equal(sampledCount(mk(0), 100, on), 100, 'incoming sampled=1 kept at 0%');
  assert.equal(sampledCount(mk(100), 100, off), 0, 'incoming sampled=0 kept at 100%');
  assert.equal(sampledCount(mk(100), 100, { 'x-b3-sampled': '0' }), 0, 'B3 decision without ids kept');
  assert.equal(sampledCount(mk(0), 100, { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1' }), 100, 'debug forces sampling');
  // Ids without a decision (B3 deferred): the proxy decides.
  assert.equal(sampledCount(mk(0), 100, { 'x-b3-traceid': T, 'x-b3-spanid': S }), 0);
  assert.equal(sampledCount(mk(100), 100, { 'x-b3-traceid': T, 'x-b3-spanid': S }), 100);
});

test('server span joins the incoming trace; client span is its child; headers name the new span', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const tracer = new Tracer({ node, randomSamplingPercentage: 0, clock, meshId: 'mesh1' });
  const server = tracer.startServerSpan({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1', tracestate: 'a=b', traceparent: 'bad' }, req);
  const toApp = server.headers();
  assert.equal(server.traceId, T);
  assert.equal(server.parentSpanId, S);
  assert.notEqual(server.spanId, S);
  assert.match(server.spanId, /^[0-9a-f]{16}$/);
  assert.equal(server.sampled, true);
  assert.equal(toApp['x-b3-spanid'], server.spanId);
  assert.equal(toApp['x-b3-parentspanid'], S);
  assert.equal(toApp['x-b3-sampled'], '1');
  assert.equal(toApp.traceparent, `00-${T}-${server.spanId}-01`);

  const client = tracer.startClientSpan(server, { ...req, upstreamCluster: 'outbound|9080||ratings.default.svc.cluster.local' });
  const upstream = client.headers();
  assert.equal(client.traceId, T);
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(upstream['x-b3-spanid'], client.spanId);
  assert.equal(upstream['x-b3-parentspanid'], server.spanId);
  assert.equal(parseTraceparent(upstream.traceparent)?.spanId, client.spanId);
  assert.equal(upstream.b3, undefined, 'the trace came in B3 multi-header form: no single b3 header is added');

  // A trace that arrived in the single b3 header goes on in it too, at both spans.
  const viaSingle = tracer.startServerSpan({ b3: `${T}-${S}-1` }, req);
  assert.equal(viaSingle.headers().b3, `${T}-${viaSingle.spanId}-1-${S}`);
  const onward = tracer.startClientSpan(viaSingle, req);
  assert.equal(onward.headers().b3, `${T}-${onward.spanId}-1-${viaSingle.spanId}`);
  assert.equal(onward.headers()['x-b3-spanid'], onward.spanId);

  // The outbound sidecar sees only the app's headers: the client span parents to what the app sent.
  const fromApp = tracer.startClientSpan({ headers: toApp }, req);
  assert.equal(fromApp.parentSpanId, server.spanId);
  assert.equal(fromApp.sampled, true);

  clock.advance(25);
  client.finish({ status: 503, flags: 'UF' });
  server.finish({ status: 503, flags: 'UF', upstreamCluster: 'inbound|9080||' });
  server.finish({ status: 200 }); // second finish ignored
  assert.equal(server.endTime, 1_700_000_000_025);
  assert.deepEqual(
    { ...server.tags },
    {
      component: 'proxy',
      node_id: node.id,
      'istio.canonical_service': 'reviews',
      'istio.canonical_revision': 'v2',
      'istio.namespace': 'default',
      'istio.mesh_id': 'mesh1',
      'http.url': req.url,
      'http.method': 'GET',
      'guid:x-request-id': 'rid-7',
      'peer.address': '127.0.0.1:5000',
      'http.status_code': '503',
      response_flags: 'UF',
      upstream_cluster: 'inbound|9080||',
      'upstream_cluster.name': 'inbound|9080||',
      error: 'true',
    },
  );
  assert.equal(client.tags.upstream_cluster, 'outbound|9080||ratings.default.svc.cluster.local');
  assert.equal(server.name, 'reviews:9080/*');

  // A new trace when nothing came in.
  const fresh = tracer.startServerSpan({}, req);
  assert.match(fresh.traceId, /^[0-9a-f]{32}$/);
  assert.equal(fresh.parentSpanId, undefined);
  assert.equal(fresh.sampled, false);
});

async function receiver(store: TraceStore): Promise<{ server: http.Server; base: string }> {
  const server = http.createServer((rq, rs) => {
    if (rq.method === 'POST' && rq.url === '/v1/traces') return store.handleOtlp(rq, rs);
    if (rq.method === 'POST' && rq.url === '/api/v2/spans') return store.handleZipkin(rq, rs);
    rs.statusCode = 404;
    rs.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

for (const kind of ['otlp-http', 'zipkin'] as const) {
  test(`${kind} exporter delivers spans with their ids and tags to a real receiver (the trace store)`, async () => {
    const store = new TraceStore();
    const { server, base } = await receiver(store);
    const url = kind === 'zipkin' ? `${base}/api/v2/spans` : `${base}/v1/traces`;
    const clock = new ManualClock(1_700_000_000_000);
    const tracer = new Tracer({ node, randomSamplingPercentage: 100, clock, collectors: [{ kind, url }], random: new SeededRandom(1) });
    try {
      const server1 = tracer.startServerSpan({}, req);
      const client1 = tracer.startClientSpan(server1, { ...req, url: 'http://ratings:9080/ratings/0' });
      clock.advance(4);
      client1.finish({ status: 200, upstreamCluster: 'outbound|9080||ratings.default.svc.cluster.local' });
      clock.advance(6);
      server1.finish({ status: 200 });
      const unsampled = new Tracer({ node, randomSamplingPercentage: 0 }).startServerSpan({}, req);
      unsampled.finish({ status: 200 });
      await tracer.flush();
      assert.deepEqual(tracer.stats, { started: 2, sampled: 2, exported: 2, dropped: 0 });

      const trace = store.get(server1.traceId);
      assert.ok(trace, 'trace stored');
      assert.equal(trace.spans.length, 2);
      const s = trace.spans.find((x) => x.spanId === server1.spanId)!;
      const c = trace.spans.find((x) => x.spanId === client1.spanId)!;
      assert.ok(s && c);
      assert.equal(s.spanId, server1.spanId);
      assert.equal(s.parentSpanId, undefined);
      assert.equal(c.spanId, client1.spanId);
      assert.equal(c.parentSpanId, server1.spanId);
      assert.equal(s.service, 'reviews.default');
      assert.equal(s.name, 'reviews:9080/*');
      assert.equal(c.name, 'ratings:9080/*');
      assert.equal(s.startTime, 1_700_000_000_000_000);
      assert.equal(s.duration, 10_000);
      assert.equal(c.duration, 4_000);
      assert.equal(s.kind, 'server');
      assert.equal(c.kind, 'client');
      assert.equal(s.tags['guid:x-request-id'], 'rid-7');
      assert.equal(s.tags['istio.canonical_service'], 'reviews');
      assert.equal(c.tags['upstream_cluster'], 'outbound|9080||ratings.default.svc.cluster.local');
      assert.equal(c.tags['http.status_code'], '200');
      assert.deepEqual(store.query({ service: 'reviews.default', operation: 'ratings:9080/*' }).map((t) => t.traceId), [server1.traceId]);
    } finally {
      await tracer.shutdown();
      await closeServer(server);
    }
  });
}

async function refusedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('collector down: requests go on, spans are dropped and counted, nothing throws', async () => {
  const port = await refusedPort();
  const collectors: CollectorSpec[] = [
    { kind: 'otlp-http', url: `http://127.0.0.1:${port}/v1/traces` },
    { kind: 'zipkin', url: `http://127.0.0.1:${port}/api/v2/spans` },
  ];
  const tracer = new Tracer({ node, randomSamplingPercentage: 100, collectors, maxQueueSize: 4, exportTimeoutMillis: 300 });
  try {
    // Six spans into a queue of four per collector: two are dropped at once, per collector.
    for (let i = 0; i < 6; i++) {
      const span = tracer.startServerSpan({}, req);
      assert.doesNotThrow(() => span.finish({ status: 200 }));
    }
    assert.equal(tracer.stats.dropped, 4);
    await tracer.flush();
    // The four queued per collector fail to export (connection refused) and are counted too.
    assert.deepEqual(tracer.stats, { started: 6, sampled: 6, exported: 0, dropped: 12 });
    // And the pipeline is usable again afterwards (its in-flight bound was released).
    const span = tracer.startServerSpan({}, req);
    span.finish({ status: 200 });
    await tracer.flush();
    assert.equal(tracer.stats.dropped, 14);
  } finally {
    await tracer.shutdown();
  }
});

test('a collector that accepts and never answers is timed out, not waited on forever', async () => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.resume();
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as AddressInfo).port;
  const tracer = new Tracer({
    node,
    randomSamplingPercentage: 100,
    collectors: [{ kind: 'zipkin', url: `http://127.0.0.1:${port}/api/v2/spans` }],
    exportTimeoutMillis: 200,
  });
  try {
    tracer.startServerSpan({}, req).finish({ status: 200 });
    await tracer.flush();
    assert.equal(tracer.stats.dropped, 1);
  } finally {
    for (const s of sockets) s.destroy();
    await tracer.shutdown();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});
