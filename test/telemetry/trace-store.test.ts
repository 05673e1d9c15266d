import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TraceStore, renderTraceTimeline, traceQueryFromParams, type StoredSpan } from '../../src/telemetry/trace-store.js';

const tid = (n: number) => n.toString(16).padStart(32, '0');
const sid = (n: number) => n.toString(16).padStart(16, '0');

function span(n: number, over: Partial<StoredSpan> = {}): StoredSpan {
  return { spanId: sid(n), service: 'productpage.default', name: 'GET /productpage', startTime: 1_000_000 + n, duration: 100, tags: {}, ...over };
}

test('bounds: max traces and max spans, least recently updated trace evicted first', () => {
  const store = new TraceStore({ maxTraces: 3, maxSpans: 5 });
  for (let t = 1; t <= 3; t++) assert.ok(store.add(tid(t), span(t)));
  assert.ok(store.add(tid(1), span(11))); // trace 1 updated: now the newest
  assert.ok(store.add(tid(4), span(4))); // over maxTraces: trace 2 (oldest) goes
  assert.equal(store.get(tid(2)), undefined);
  assert.ok(store.get(tid(1)) && store.get(tid(3)) && store.get(tid(4)));
  assert.deepEqual(store.size, { traces: 3, spans: 4 });
  // Two more spans on trace 4 -> 6 spans > 5: trace 3 goes.
  store.add(tid(4), span(41));
  store.add(tid(4), span(42));
  assert.equal(store.get(tid(3)), undefined);
  assert.deepEqual(store.size, { traces: 2, spans: 5 });
  assert.equal(store.stats.evictedTraces, 2);
  // One trace can never hold more than maxSpans.
  const small = new TraceStore({ maxSpans: 2 });
  assert.ok(small.add(tid(9), span(1)));
  assert.ok(small.add(tid(9), span(2)));
  assert.equal(small.add(tid(9), span(3)), false);
  // Malformed and duplicate spans are refused and counted.
  assert.equal(small.add('zz', span(5)), false);
  assert.equal(small.add(tid(0), span(5)), false);
  assert.equal(small.add(tid(9), span(1)), false);
  assert.equal(small.add(tid(8), span(0)), false);
  assert.equal(small.stats.rejected, 5);
});

test('queries: service, operation, tags, minimum duration, time range, limit; newest first', () => {
  const store = new TraceStore();
  store.add(tid(1), span(1, { startTime: 1000, duration: 5000, tags: { 'http.status_code': '200' } }));
  store.add(tid(1), span(2, { parentSpanId: sid(1), startTime: 1100, service: 'reviews.default', name: 'reviews:9080/*', duration: 3000, tags: { 'http.status_code': '503', response_flags: 'UF' } }));
  store.add(tid(2), span(3, { startTime: 2000, duration: 100 }));
  store.add(tid(3), span(4, { startTime: 3000, service: 'ratings.default', name: 'ratings:9080/*', duration: 20_000 }));
  const ids = (q: Parameters<TraceStore['query']>[0]) => store.query(q).map((t) => t.traceId);
  assert.deepEqual(ids({}), [tid(3), tid(2), tid(1)]);
  assert.deepEqual(ids({ service: 'reviews.default' }), [tid(1)]);
  assert.deepEqual(ids({ operation: 'GET /productpage' }), [tid(2), tid(1)]);
  assert.deepEqual(ids({ tags: { 'http.status_code': '503' } }), [tid(1)]);
  // Tags and service must match on the same span.
  assert.deepEqual(ids({ service: 'productpage.default', tags: { response_flags: 'UF' } }), []);
  assert.deepEqual(ids({ minDuration: 4000 }), [tid(3), tid(1)]);
  assert.deepEqual(ids({ start: 1500, end: 2500 }), [tid(2)]);
  assert.deepEqual(ids({ limit: 1 }), [tid(3)]);
  assert.deepEqual(ids({ service: 'nope' }), []);
  // Regression: "sinew traces --service reviews" found nothing without ".default".
  assert.deepEqual(ids({ service: 'reviews' }), [tid(1)], 'a short name finds the service in its namespace');
  assert.deepEqual(ids({ service: 'reviews.default.svc.cluster.local' }), [tid(1)], 'so does the Kubernetes host name');
  assert.deepEqual(ids({ service: 'Reviews' }), [tid(1)], 'names are case-insensitive');
  assert.deepEqual(ids({ service: 'review' }), [], 'a prefix is not the name');
  assert.deepEqual(ids({ service: 'reviews.prod' }), [], 'another namespace is another service');
  assert.deepEqual(store.servicesNamed('ratings'), ['ratings.default']);
  assert.deepEqual(store.services(), ['productpage.default', 'ratings.default', 'reviews.default']);
  // The CLI's JSON shape.
  const [t] = store.query({ service: 'reviews.default' });
  assert.deepEqual(JSON.parse(JSON.stringify(t)), {
    traceId: tid(1),
    spans: [
      { spanId: sid(1), service: 'productpage.default', name: 'GET /productpage', startTime: 1000, duration: 5000, tags: { 'http.status_code': '200' } },
      { spanId: sid(2), parentSpanId: sid(1), service: 'reviews.default', name: 'reviews:9080/*', startTime: 1100, duration: 3000, tags: { 'http.status_code': '503', response_flags: 'UF' } },
    ],
  });
  // Short (64-bit) ids are accepted and normalised.
  assert.equal(store.get('1')?.traceId, tid(1));
});

test('timeline: indented by parentage, with offset, duration and status', () => {
  const store = new TraceStore();
  const T = tid(0xabc);
  store.add(T, span(1, { service: 'istio-ingressgateway.istio-system', name: 'bookinfo.example.com:80/*', startTime: 10_000, duration: 12_500, tags: { 'http.status_code': '200' } }));
  store.add(T, span(2, { parentSpanId: sid(1), service: 'productpage.default', name: 'productpage:9080/*', startTime: 10_400, duration: 11_000, tags: { 'http.status_code': '200' } }));
  store.add(T, span(3, { parentSpanId: sid(2), service: 'reviews.default', name: 'reviews:9080/*', startTime: 11_000, duration: 3_250, tags: { 'http.status_code': '503', response_flags: 'UF' } }));
  store.add(T, span(4, { parentSpanId: sid(99), service: 'orphan.default', name: 'lost-parent', startTime: 30_000, duration: 10, tags: { error: 'true' } }));
  const text = renderTraceTimeline(store.get(T)!);
  assert.equal(
    text,
    [
      `trace ${T}  4 spans  20.01ms`,
      'SERVICE                            OPERATION                    OFFSET  DURATION  STATUS',
      'istio-ingressgateway.istio-system  bookinfo.example.com:80/*   +0.00ms   12.50ms  200',
      '  productpage.default              productpage:9080/*          +0.40ms   11.00ms  200',
      '    reviews.default                reviews:9080/*              +1.00ms    3.25ms  503 UF',
      'orphan.default                     lost-parent                +20.00ms    0.01ms  ERROR',
      '',
    ].join('\n'),
  );
  assert.equal(renderTraceTimeline({ traceId: T, spans: [] }), `trace ${T}: no spans\n`);
});

async function withReceiver(store: TraceStore, fn: (base: string) => Promise<void>): Promise<void> {
  const server = http.createServer((rq, rs) => (rq.url === '/v1/traces' ? store.handleOtlp(rq, rs) : store.handleZipkin(rq, rs)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

test('receivers: OTLP JSON and Zipkin v2 over HTTP, with bad input answered, never thrown', async () => {
  const store = new TraceStore({ maxBodyBytes: 2000 });
  await withReceiver(store, async (base) => {
    const post = (path: string, body: string, type = 'application/json') =>
      fetch(base + path, { method: 'POST', body, headers: { 'content-type': type } });
    const otlp = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'details.default' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: tid(7), spanId: sid(1), name: 'details:9080/*', kind: 2,
                  startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000002500000',
                  attributes: [{ key: 'http.status_code', value: { intValue: 200 } }, { key: 'ok', value: { boolValue: true } }],
                  status: { code: 2, message: 'boom' },
                },
                { traceId: 'nothex', spanId: sid(2), name: 'bad' },
              ],
            },
          ],
        },
      ],
    };
    let r = await post('/v1/traces', JSON.stringify(otlp));
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { partialSuccess: { rejectedSpans: 1, errorMessage: 'malformed or duplicate spans' } });
    const [d] = store.get(tid(7))!.spans;
    assert.deepEqual(d, {
      spanId: sid(1), service: 'details.default', name: 'details:9080/*', startTime: 1_700_000_000_000_000, duration: 2500,
      tags: { 'http.status_code': '200', ok: 'true', 'otel.status_code': 'ERROR', 'otel.status_description': 'boom' }, kind: 'server',
    });

    const zipkin = [{ traceId: tid(7), id: sid(2), parentId: sid(1), name: 'get', kind: 'CLIENT', timestamp: 1_700_000_000_000_100, duration: 900, localEndpoint: { serviceName: 'details.default' }, remoteEndpoint: { ipv4: '10.0.0.1', port: 9080 }, tags: { a: 'b' } }];
    r = await post('/api/v2/spans', JSON.stringify(zipkin));
    assert.equal(r.status, 202);
    await r.arrayBuffer();
    const z = store.get(tid(7))!.spans[1];
    assert.equal(z.parentSpanId, sid(1));
    assert.equal(z.tags['peer.address'], '10.0.0.1:9080');

    assert.equal((await post('/v1/traces', '{not json')).status, 400);
    assert.equal((await post('/v1/traces', 'x', 'application/x-protobuf')).status, 415);
    assert.equal((await post('/api/v2/spans', '{"not":"array"}')).status, 400);
    assert.equal((await post('/api/v2/spans', JSON.stringify([{ junk: true }, null, 5]))).status, 202);
    assert.equal((await post('/v1/traces', JSON.stringify({ resourceSpans: 'nope' }))).status, 200);
    const big = await post('/v1/traces', 'x'.repeat(5000)).catch(() => undefined);
    assert.ok(!big || big.status === 413);
    assert.equal(store.get(tid(7))!.spans.length, 2);
  });
});

test('query parameters: Jaeger-style strings to a TraceQuery, malformed values ignored', () => {
  const p = new URLSearchParams('service=reviews.default&operation=reviews%3A9080%2F*&tags=http.status_code:503&tag=response_flags:UF&minDuration=1.5ms&start=10&end=x&limit=5');
  assert.deepEqual(traceQueryFromParams(p), {
    service: 'reviews.default',
    operation: 'reviews:9080/*',
    tags: { 'http.status_code': '503', response_flags: 'UF' },
    minDuration: 1500,
    start: 10,
    limit: 5,
  });
  assert.deepEqual(traceQueryFromParams(new URLSearchParams('tags={"a":1}&minDuration=soon')), { tags: { a: '1' } });
  assert.deepEqual(traceQueryFromParams(new URLSearchParams('tags={bad')), {});
});
