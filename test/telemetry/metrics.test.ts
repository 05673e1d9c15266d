import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import type { ProxyNode } from '../../src/api/proxy-config.js';
import { MeshMetrics, subscribeProxyMetrics, sanitizeExposition, HTTP_LABELS, TCP_LABELS, SERIES_CACHE_LIMIT } from '../../src/telemetry/metrics.js';
import {
  decodePeerMetadata,
  encodePeerMetadata,
  peerMetadataHeaders,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
} from '../../src/telemetry/peer-metadata.js';
import type { TelemetryRequestEvent } from '../../src/telemetry/events.js';

const productpage: ProxyNode = {
  id: 'sidecar~productpage-v1-0.default',
  mode: 'sidecar',
  workload: 'productpage-v1',
  namespace: 'default',
  labels: { app: 'productpage', version: 'v1' },
  serviceAccount: 'bookinfo-productpage',
};
const reviews: ProxyNode = {
  id: 'sidecar~reviews-v2-0.default',
  mode: 'sidecar',
  workload: 'reviews-v2',
  namespace: 'default',
  labels: { app: 'reviews', version: 'v2', 'service.istio.io/canonical-name': 'reviews' },
  serviceAccount: 'bookinfo-reviews',
};

function event(over: Partial<TelemetryRequestEvent>): TelemetryRequestEvent {
  return {
    listener: 'virtualOutbound',
    direction: 'outbound',
    requestId: 'rid-1',
    method: 'GET',
    authority: 'reviews:9080',
    path: '/reviews/0',
    protocol: 'HTTP/1.1',
    route: 'reviews.default.svc.cluster.local:9080',
    cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
    upstreamHost: '127.0.0.1:40001',
    status: 200,
    flags: '-',
    downstreamPeer: '127.0.0.1:50000',
    attempts: 1,
    requestBytes: 0,
    responseBytes: 295,
    startTime: Date.UTC(2026, 0, 1),
    durationMs: 12,
    ...over,
  };
}

/** Parses Prometheus text into {name, labels, value} samples. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    assert.ok(m, `unparseable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function find(text: string, name: string, match: Record<string, string>) {
  return samples(text).filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

test('peer metadata round-trips and decoding never throws on garbage', () => {
  const value = encodePeerMetadata(reviews, { cluster: 'Kubernetes' });
  assert.deepEqual(decodePeerMetadata(value), {
    id: 'sidecar~reviews-v2-0.default',
    workload: 'reviews-v2',
    namespace: 'default',
    app: 'reviews',
    version: 'v2',
    canonicalService: 'reviews',
    canonicalRevision: 'v2',
    serviceAccount: 'bookinfo-reviews',
    principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
    cluster: 'Kubernetes',
  });
  const headers = peerMetadataHeaders(productpage);
  assert.equal(headers[PEER_METADATA_ID_HEADER], productpage.id);
  assert.equal(decodePeerMetadata(headers[PEER_METADATA_HEADER])?.workload, 'productpage-v1');
  // Canonical revision falls back to `latest` like Istio when no version label exists.
  const bare = decodePeerMetadata(encodePeerMetadata({ ...productpage, labels: {} }));
  assert.equal(bare?.canonicalService, 'productpage-v1');
  assert.equal(bare?.canonicalRevision, 'latest');

  const garbage: (string | string[] | undefined)[] = [
    undefined,
    '',
    '!!!!',
    'a',
    Buffer.from('not json').toString('base64'),
    Buffer.from('[1,2]').toString('base64'),
    Buffer.from('null').toString('base64'),
    Buffer.from('{"workload": 5}').toString('base64'),
    Buffer.from(JSON.stringify({ workload: 'x'.repeat(300) })).toString('base64'),
    Buffer.from(JSON.stringify({ workload: 'evil\nline' })).toString('base64'),
    'A'.repeat(5000),
    [],
  ];
  for (const g of garbage) assert.equal(decodePeerMetadata(g), undefined, String(g).slice(0, 40));
  // Unknown fields are ignored, known ones kept.
  assert.deepEqual(decodePeerMetadata(Buffer.from('{"workload":"w","zzz":1}').toString('base64')), { workload: 'w' });
});

test('one request, both reporters: source and destination labels filled through peer metadata', async () => {
  const clientMetrics = new MeshMetrics();
  const serverMetrics = new MeshMetrics();
  // productpage's sidecar sends its metadata on the request; reviews' sidecar answers with its own.
  const fromClient = decodePeerMetadata(encodePeerMetadata(productpage));
  const fromServer = decodePeerMetadata(encodePeerMetadata(reviews));
  serverMetrics.recordRequest(
    event({ listener: 'virtualInbound', direction: 'inbound', cluster: 'inbound|9080||', authority: 'reviews.default.svc.cluster.local:9080', durationMs: 7 }),
    { local: reviews, remote: fromClient, mtls: true },
  );
  // The client sidecar knows the principals from its upstream connection's certificates, as
  // Envoy's upstream SSL info gives them to istio/proxy's stats filter.
  clientMetrics.recordRequest(
    event({ durationMs: 12, upstreamLocalUriSan: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', upstreamPeerUriSan: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }),
    { local: productpage, remote: fromServer },
  );

  const expectedPeers = {
    source_workload: 'productpage-v1',
    source_workload_namespace: 'default',
    source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
    source_app: 'productpage',
    source_version: 'v1',
    source_canonical_service: 'productpage',
    source_canonical_revision: 'v1',
    source_cluster: 'Kubernetes',
    destination_workload: 'reviews-v2',
    destination_workload_namespace: 'default',
    destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
    destination_app: 'reviews',
    destination_version: 'v2',
    destination_service: 'reviews.default.svc.cluster.local',
    destination_service_name: 'reviews',
    destination_service_namespace: 'default',
    destination_canonical_service: 'reviews',
    destination_canonical_revision: 'v2',
    destination_cluster: 'Kubernetes',
    request_protocol: 'http',
    response_code: '200',
    grpc_response_status: '',
    response_flags: '-',
  };
  const server = await serverMetrics.render();
  const dst = find(server, 'istio_requests_total', {});
  assert.equal(dst.length, 1);
  assert.deepEqual(dst[0].labels, { reporter: 'destination', ...expectedPeers, connection_security_policy: 'mutual_tls' });
  assert.equal(dst[0].value, 1);
  assert.deepEqual(Object.keys(dst[0].labels).sort(), [...HTTP_LABELS].sort());

  const client = await clientMetrics.render();
  const src = find(client, 'istio_requests_total', {});
  // The source reporter cannot know the server's policy: Istio reports `unknown`.
  assert.deepEqual(src[0].labels, { reporter: 'source', ...expectedPeers, connection_security_policy: 'unknown' });

  // Histograms: Istio's buckets, the right observation.
  const buckets = find(server, 'istio_request_duration_milliseconds_bucket', {}).map((s) => s.labels.le);
  assert.deepEqual(buckets, ['0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf']);
  assert.equal(find(server, 'istio_request_duration_milliseconds_bucket', { le: '5' })[0].value, 0);
  assert.equal(find(server, 'istio_request_duration_milliseconds_bucket', { le: '10' })[0].value, 1);
  assert.equal(find(server, 'istio_request_duration_milliseconds_sum', {})[0].value, 7);
  const respBuckets = find(client, 'istio_response_bytes_bucket', {}).map((s) => s.labels.le);
  assert.deepEqual(respBuckets, ['1', '10', '100', '1000', '10000', '100000', '1000000', '10000000', '+Inf']);
  assert.equal(find(client, 'istio_response_bytes_bucket', { le: '100' })[0].value, 0);
  assert.equal(find(client, 'istio_response_bytes_bucket', { le: '1000' })[0].value, 1);
  assert.equal(find(client, 'istio_request_bytes_count', {})[0].value, 1);
});

test('unknown peers, plaintext and gRPC requests get Istio\'s fallback values', async () => {
  const m = new MeshMetrics();
  m.recordRequest(event({ direction: 'inbound', cluster: 'inbound|9080||', authority: 'reviews:9080', status: 503, flags: 'UF,URX' }), { local: reviews, mtls: false });
  m.recordRequest(event({ grpcStatus: '14', status: 200 }), { local: productpage });
  const text = await m.render();
  const [inbound] = find(text, 'istio_requests_total', { reporter: 'destination' });
  assert.equal(inbound.labels.source_workload, 'unknown');
  assert.equal(inbound.labels.source_principal, 'unknown');
  assert.equal(inbound.labels.destination_principal, 'unknown', 'principals need mTLS');
  assert.equal(inbound.labels.connection_security_policy, 'none');
  assert.equal(inbound.labels.destination_service, 'reviews');
  assert.equal(inbound.labels.destination_service_name, 'reviews');
  assert.equal(inbound.labels.destination_service_namespace, 'default');
  assert.equal(inbound.labels.response_code, '503');
  assert.equal(inbound.labels.response_flags, 'UF,URX');
  const [grpc] = find(text, 'istio_requests_total', { reporter: 'source' });
  assert.equal(grpc.labels.source_principal, 'unknown', 'a plaintext upstream connection proves no identity');
  assert.equal(grpc.labels.destination_principal, 'unknown');
  assert.equal(grpc.labels.request_protocol, 'grpc');
  assert.equal(grpc.labels.grpc_response_status, '14');
  assert.equal(grpc.labels.destination_workload, 'unknown');
});

test('TCP metrics: opened, closed and bytes, with the TCP label set', async () => {
  const m = new MeshMetrics();
  const base = { listener: '0.0.0.0_9000', cluster: 'outbound|9000||tcp-echo.default.svc.cluster.local', flags: '-', downstreamPeer: '127.0.0.1:1', durationMs: 5 };
  m.recordTcp({ ...base, bytesReceived: 100, bytesSent: 250 }, { local: productpage });
  m.recordTcp({ ...base, phase: 'open', bytesReceived: 0, bytesSent: 0 }, { local: productpage });
  m.recordTcp({ ...base, phase: 'close', bytesReceived: 1, bytesSent: 2 }, { local: productpage });
  const text = await m.render();
  assert.equal(find(text, 'istio_tcp_connections_opened_total', {})[0].value, 2);
  assert.equal(find(text, 'istio_tcp_connections_closed_total', {})[0].value, 2);
  assert.equal(find(text, 'istio_tcp_received_bytes_total', {})[0].value, 101);
  assert.equal(find(text, 'istio_tcp_sent_bytes_total', {})[0].value, 252);
  const [s] = find(text, 'istio_tcp_sent_bytes_total', {});
  assert.deepEqual(Object.keys(s.labels).sort(), [...TCP_LABELS].sort());
  assert.equal(s.labels.request_protocol, 'tcp');
  assert.equal(s.labels.reporter, 'source');
  assert.equal(s.labels.destination_service, 'tcp-echo.default.svc.cluster.local');
});

test('subscribeProxyMetrics records what the proxy publishes, including self-metrics, until unsubscribed', async () => {
  const m = new MeshMetrics();
  const off = subscribeProxyMetrics(productpage, m);
  const request = diagnosticsChannel.channel('sinew:proxy:request');
  const config = diagnosticsChannel.channel('sinew:proxy:config');
  const tcp = diagnosticsChannel.channel('sinew:proxy:tcp');
  assert.ok(request.hasSubscribers);
  request.publish(event({}));
  request.publish(event({ status: 503, flags: 'UO' }));
  request.publish(event({ attempts: 3, status: 200 }));
  tcp.publish({ listener: 'x', flags: '-', downstreamPeer: '', bytesReceived: 1, bytesSent: 1, durationMs: 1 });
  config.publish({ version: 'v1', accepted: true });
  config.publish({ version: 'v2', accepted: false, error: 'bad' });
  config.publish({ version: 'v3', accepted: true });
  m.recordUpstreamEvent({ type: 'ejected', cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', key: 'a' });
  m.recordUpstreamEvent({ type: 'ejected', cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', key: 'b' });
  m.recordUpstreamEvent({ type: 'unejected', cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', key: 'a' });
  request.publish(null); // a malformed event is counted, never thrown into the publisher
  request.publish({ ...event({}), durationMs: NaN, requestBytes: -5 });
  off();
  off(); // idempotent
  request.publish(event({}));

  const text = await m.render();
  const cluster = { cluster_name: 'outbound|9080|v2|reviews.default.svc.cluster.local' };
  assert.equal(find(text, 'istio_requests_total', {}).reduce((a, s) => a + s.value, 0), 4);
  assert.equal(find(text, 'sinew_telemetry_record_errors_total', {})[0].value, 1);
  assert.equal(find(text, 'istio_requests_total', { response_code: '503', response_flags: 'UO' })[0].value, 1);
  assert.equal(find(text, 'istio_tcp_connections_opened_total', {})[0].value, 1);
  assert.equal(find(text, 'envoy_cluster_upstream_rq_pending_overflow', cluster)[0].value, 1);
  assert.equal(find(text, 'envoy_cluster_upstream_rq_retry', cluster)[0].value, 2);
  assert.equal(find(text, 'envoy_cluster_outlier_detection_ejections_enforced_total', cluster)[0].value, 2);
  assert.equal(find(text, 'envoy_cluster_outlier_detection_ejections_active', cluster)[0].value, 1);
  assert.equal(find(text, 'sinew_proxy_response_flags_total', { response_flags: 'UO' })[0].value, 1);
  assert.equal(find(text, 'sinew_proxy_config_updates_total', { result: 'accepted' })[0].value, 2);
  assert.equal(find(text, 'sinew_proxy_config_updates_total', { result: 'rejected' })[0].value, 1);
  assert.deepEqual(find(text, 'sinew_proxy_config_version_info', {}).map((s) => s.labels.version), ['v3']);
});

test('merge appends the application metrics and leaves out what would break the scrape', async () => {
  const m = new MeshMetrics();
  m.recordRequest(event({}), { local: productpage });
  const app = [
    '# HELP app_orders_total Orders.',
    '# TYPE app_orders_total counter',
    'app_orders_total{shop="a b",note="quote \\" and \\\\ and \\n"} 7',
    'app_orders_total{shop="c"} 3 1700000000000',
    '# a plain comment',
    '# HELP istio_requests_total forged',
    '# TYPE istio_requests_total counter',
    'istio_requests_total{reporter="destination"} 999',
    'app_latency_bucket{le="+Inf"} 2',
    'broken line without value',
    'app_bad{unterminated="x} 1',
    'app_bad2{1x="y"} 1',
    'app_bad3 abc',
    '# TYPE app_orders_total counter',
    '# TYPE app_weird wat',
    'app_gauge NaN',
    'app_gauge2 -Inf',
    '# EOF',
  ].join('\r\n');
  const merged = await m.merge(app);
  const s = samples(merged);
  assert.equal(find(merged, 'app_orders_total', { shop: 'c' })[0].value, 3);
  assert.equal(find(merged, 'app_latency_bucket', {})[0].value, 2);
  assert.equal(s.filter((x) => x.name === 'istio_requests_total').length, 1, 'the forged family is dropped');
  assert.ok(!merged.includes('forged'));
  assert.ok(!merged.includes('broken line'));
  assert.ok(!merged.includes('# EOF'));
  assert.ok(!merged.includes('\r'));
  assert.equal(merged.split('\n').filter((l) => l === '# TYPE app_orders_total counter').length, 1);
  assert.ok(merged.includes('app_gauge NaN') && merged.includes('app_gauge2 -Inf'));
  assert.ok(merged.endsWith('\n'));
  // Counted in the proxy's own metrics.
  assert.equal(find(await m.render(), 'sinew_metrics_merge_dropped_lines_total', {})[0].value, 9);

  // Pure function: an empty or hostile input never throws.
  assert.deepEqual(sanitizeExposition('', new Set()), { text: '', dropped: 0 });
  assert.equal(sanitizeExposition('\u0000\u0001{}}}', new Set()).dropped, 1);
});

test('cached series: distinct response codes stay distinct series and the cache is bounded', async () => {
  const m = new MeshMetrics();
  const peers = { local: productpage };
  const peer = decodePeerMetadata(encodePeerMetadata(reviews));
  for (let i = 0; i < 3; i++) m.recordRequest(event({ status: 200, peer, durationMs: 2 }), peers);
  for (let i = 0; i < 2; i++) m.recordRequest(event({ status: 503, flags: 'UF', peer, durationMs: 40 }), peers);
  let text = await m.render();
  assert.equal(find(text, 'istio_requests_total', { response_code: '200', response_flags: '-' })[0].value, 3);
  assert.equal(find(text, 'istio_requests_total', { response_code: '503', response_flags: 'UF' })[0].value, 2);
  assert.equal(find(text, 'istio_request_duration_milliseconds_count', { response_code: '503' })[0].value, 2);
  assert.equal(find(text, 'istio_request_duration_milliseconds_sum', { response_code: '503' })[0].value, 80);
  assert.equal(find(text, 'istio_request_duration_milliseconds_bucket', { response_code: '200', le: '5' })[0].value, 3);
  assert.equal(find(text, 'sinew_proxy_response_flags_total', { response_flags: 'UF' })[0].value, 2);
  assert.equal(m.cachedSeries, 2);

  // A label explosion (20 000 distinct codes and flags) never grows the cache past its bound.
  for (let i = 0; i < 20_000; i++) {
    m.recordRequest(event({ status: 1000 + i, flags: i % 2 ? 'DC' : '-', peer }), peers);
    assert.ok(m.cachedSeries <= SERIES_CACHE_LIMIT);
  }
  for (let i = 0; i < 4; i++) m.recordRequest(event({ status: 200, peer }), peers);
  const requests = await m.registry.getSingleMetric('istio_requests_total')!.get();
  assert.equal(requests.values.length, 20_002);
  assert.equal(requests.values.reduce((n, v) => n + v.value, 0), 20_009);
  assert.equal(requests.values.find((v) => v.labels.response_code === '200')?.value, 7);

  // A registry reset is survived: the cached series is recreated, not lost.
  m.registry.resetMetrics();
  m.recordRequest(event({ status: 200, peer }), peers);
  m.recordRequest(event({ status: 200, peer }), peers);
  text = await m.render();
  assert.equal(find(text, 'istio_requests_total', { response_code: '200' })[0].value, 2);
  assert.equal(find(text, 'istio_response_bytes_count', { response_code: '200' })[0].value, 2);
});

test("the proxy's prom-client classes are the package's own, loaded without its index", async () => {
  const core = await import('../../src/telemetry/prom-client-core.js');
  const index = createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
  assert.equal(core.Registry, index.Registry);
  assert.equal(core.Counter, index.Counter);
  assert.equal(core.Gauge, index.Gauge);
});

test('label values from a peer cannot make two series one', async () => {
  const m = new MeshMetrics();
  const peers = { local: productpage };
  // Joined with a separator, these two peers' workload + namespace would read the same.
  const a = { ...decodePeerMetadata(encodePeerMetadata(reviews))!, workload: 'a\nb', namespace: 'c' };
  const b = { ...decodePeerMetadata(encodePeerMetadata(reviews))!, workload: 'a', namespace: 'b\nc' };
  m.recordRequest(event({ peer: a }), peers);
  m.recordRequest(event({ peer: b }), peers);
  m.recordRequest(event({ peer: { ...b } }), peers); // another object, same values: the same series
  const requests = await m.registry.getSingleMetric('istio_requests_total')!.get();
  assert.deepEqual(
    requests.values.map((v) => [v.labels.destination_workload, v.labels.destination_workload_namespace, v.value]),
    [
      ['a\nb', 'c', 1],
      ['a', 'b\nc', 2],
    ],
  );
});

test('the source reporter keeps a plaintext and a mutual TLS call to the same peer apart', async () => {
  const m = new MeshMetrics();
  const remote = decodePeerMetadata(encodePeerMetadata(reviews));
  const mtls = { upstreamLocalUriSan: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', upstreamPeerUriSan: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' };
  m.recordRequest(event({}), { local: productpage, remote });
  m.recordRequest(event(mtls), { local: productpage, remote });
  m.recordRequest(event(mtls), { local: productpage, remote });
  const seen = find(await m.render(), 'istio_requests_total', { reporter: 'source' }).map((s) => [s.labels.source_principal, s.labels.destination_principal, s.value]);
  assert.deepEqual(seen.sort(), [['unknown', 'unknown', 1], [mtls.upstreamLocalUriSan, mtls.upstreamPeerUriSan, 2]].sort());
});
