/**
 * Two minimal sidecars over real sockets, calling the telemetry library the way the proxy
 * should: productpage's outbound sidecar -> reviews' inbound sidecar -> the reviews app.
 * One request yields both reporters' metrics with each other's identity (metadata exchange),
 * a two-span trace in the collector (OTLP over HTTP into the trace store), and access logs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyNode, TelemetrySettings } from '../../src/api/proxy-config.js';
import { SeededRandom } from '../../src/core/random.js';
import type { TelemetryRequestEvent } from '../../src/telemetry/events.js';
import type { AccessLogSink } from '../../src/telemetry/access-log.js';
import { ProxyTelemetry, withoutPeerMetadataHeaders, withoutTraceHeaders } from '../../src/telemetry/proxy-telemetry.js';
import { decodePeerMetadata, PEER_METADATA_HEADER } from '../../src/telemetry/peer-metadata.js';
import { TraceStore, renderTraceTimeline } from '../../src/telemetry/trace-store.js';

const requestChannel = diagnosticsChannel.channel('sinew:proxy:request');

const productpage: ProxyNode = { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };
const reviews: ProxyNode = { id: 'sidecar~reviews-v2-0.default', mode: 'sidecar', workload: 'reviews-v2', namespace: 'default', labels: { app: 'reviews', version: 'v2' } };

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}
async function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

type Headers = Record<string, string | string[] | undefined>;

/** Forwards one request to `port`, returning status, headers and body. */
function forward(port: number, method: string, path: string, headers: Headers): Promise<{ status: number; headers: Headers; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const rq = http.request({ host: '127.0.0.1', port, method, path, headers: headers as http.OutgoingHttpHeaders }, (rs) => {
      const chunks: Buffer[] = [];
      rs.on('data', (c: Buffer) => chunks.push(c));
      rs.on('end', () => resolve({ status: rs.statusCode ?? 0, headers: { ...rs.headers }, body: Buffer.concat(chunks) }));
      rs.on('error', reject);
    });
    rq.on('error', reject);
    rq.end();
  });
}

function baseEvent(node: ProxyNode, direction: string, req: http.IncomingMessage, status: number, bytes: number, start: number): TelemetryRequestEvent {
  return {
    node: node.id, listener: direction === 'inbound' ? 'virtualInbound' : 'virtualOutbound', direction,
    requestId: String(req.headers['x-request-id'] ?? ''), method: req.method ?? 'GET', authority: String(req.headers.host ?? ''),
    path: req.url ?? '/', protocol: 'HTTP/1.1', status, flags: '-', downstreamPeer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    attempts: 1, requestBytes: 0, responseBytes: bytes, startTime: start, durationMs: 1,
    cluster: direction === 'inbound' ? 'inbound|9080||' : 'outbound|9080||reviews.default.svc.cluster.local',
  };
}

test('one request through two sidecars: both reporters, one trace, access logs', async () => {
  const store = new TraceStore();
  const collector = http.createServer((rq, rs) => store.handleOtlp(rq, rs));
  const collectorPort = await listen(collector);
  const seenByApp: Headers[] = [];
  const app = http.createServer((rq, rs) => {
    seenByApp.push({ ...rq.headers });
    rs.end('{"reviews":[]}');
  });
  const appPort = await listen(app);

  const logs: string[] = [];
  const sink: AccessLogSink = { write: (l) => void logs.push(l), close: async () => undefined, stats: { written: 0, dropped: 0 } };
  const settings: TelemetrySettings = {
    tracingSamplingPercentage: 100,
    tracingCollectors: [{ kind: 'otlp-http', url: `http://127.0.0.1:${collectorPort}/v1/traces` }],
    accessLog: { enabled: true, format: 'json' },
  };
  const inboundTel = new ProxyTelemetry(reviews, { random: new SeededRandom(1), accessLogSink: sink });
  const outboundTel = new ProxyTelemetry(productpage, { random: new SeededRandom(2) });
  inboundTel.apply(settings);
  outboundTel.apply({ ...settings, accessLog: undefined });

  // reviews' inbound sidecar.
  const inbound = http.createServer(async (req, res) => {
    const start = Date.now();
    const received: Headers = { ...req.headers };
    const peer = decodePeerMetadata(received[PEER_METADATA_HEADER]);
    const headers = withoutPeerMetadataHeaders(received); // the app never sees the exchange headers
    const span = inboundTel.tracer!.startServerSpan(headers, { method: req.method!, url: `http://${req.headers.host}${req.url}`, requestId: String(req.headers['x-request-id']), peerAddress: req.socket.remoteAddress });
    const traceHeaders = span.headers();
    const up = await forward(appPort, req.method!, req.url!, { ...withoutTraceHeaders(headers), ...traceHeaders });
    res.writeHead(up.status, { ...inboundTel.localPeerHeaders, 'content-length': up.body.length });
    res.end(up.body);
    span.finish({ status: up.status, upstreamCluster: 'inbound|9080||' });
    requestChannel.publish({ ...baseEvent(reviews, 'inbound', req, up.status, up.body.length, start), peer, mtls: false });
  });
  const inboundPort = await listen(inbound);

  // productpage's outbound sidecar.
  const outbound = http.createServer(async (req, res) => {
    const start = Date.now();
    const headers: Headers = { ...req.headers, 'x-request-id': 'req-42' };
    const span = outboundTel.tracer!.startClientSpan({ headers }, { method: req.method!, url: `http://${req.headers.host}${req.url}`, requestId: 'req-42', upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local' });
    const traceHeaders = span.headers();
    const up = await forward(inboundPort, req.method!, req.url!, { ...withoutTraceHeaders(headers), ...traceHeaders, ...outboundTel.localPeerHeaders });
    const peer = decodePeerMetadata(up.headers[PEER_METADATA_HEADER]);
    const forApp = withoutPeerMetadataHeaders(up.headers);
    res.writeHead(up.status, { 'content-length': up.body.length, 'x-peer-seen': String(forApp['x-envoy-peer-metadata'] ?? 'stripped') });
    res.end(up.body);
    span.finish({ status: up.status, upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local' });
    requestChannel.publish({ ...baseEvent(productpage, 'outbound', req, up.status, up.body.length, start), peer, authority: 'reviews:9080' });
  });
  const outboundPort = await listen(outbound);

  try {
    const res = await forward(outboundPort, 'GET', '/reviews/0', { host: 'reviews:9080' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-peer-seen'], 'stripped');
    assert.equal(seenByApp.length, 1);
    assert.equal(seenByApp[0]['x-envoy-peer-metadata'], undefined);

    // Metrics: each proxy recorded only its own event, with the other side's identity.
    const src = await outboundTel.metrics.render();
    const dst = await inboundTel.metrics.render();
    assert.match(src, /istio_requests_total\{reporter="source",source_workload="productpage-v1",[^}]*destination_workload="reviews-v2",[^}]*destination_version="v2"[^}]*\} 1\n/);
    assert.match(dst, /istio_requests_total\{reporter="destination",source_workload="productpage-v1",[^}]*destination_workload="reviews-v2",[^}]*connection_security_policy="none"\} 1\n/);
    assert.doesNotMatch(src, /reporter="destination"/);
    assert.doesNotMatch(dst, /reporter="source"/);

    // Tracing: the app saw the server span as its parent; the collector has both spans in one trace.
    await Promise.all([inboundTel.tracer!.flush(), outboundTel.tracer!.flush()]);
    const tp = String(seenByApp[0].traceparent);
    const traceId = tp.split('-')[1];
    const trace = store.get(traceId);
    assert.ok(trace, 'trace collected');
    assert.equal(trace.spans.length, 2);
    const client = trace.spans.find((s) => s.kind === 'client')!;
    const server = trace.spans.find((s) => s.kind === 'server')!;
    assert.equal(server.parentSpanId, client.spanId);
    assert.equal(tp.split('-')[2], server.spanId);
    assert.equal(seenByApp[0]['x-b3-spanid'], server.spanId);
    assert.equal(client.service, 'productpage.default');
    assert.equal(server.service, 'reviews.default');
    assert.equal(server.tags['guid:x-request-id'], 'req-42');
    const timeline = renderTraceTimeline(trace);
    assert.match(timeline, /\nproductpage\.default +reviews:9080\/\* .* 200\n {2}reviews\.default +reviews:9080\/\* .* 200\n$/);

    // Access log: only the inbound proxy had it on, and only its own event was written.
    assert.equal(logs.length, 1);
    assert.equal(JSON.parse(logs[0]).upstream_cluster, 'inbound|9080||');
  } finally {
    await inboundTel.close();
    await outboundTel.close();
    for (const s of [outbound, inbound, app, collector]) await close(s);
  }
});

test('ProxyTelemetry.apply follows config changes and rebuilds only what changed', async () => {
  const tel = new ProxyTelemetry(reviews, { random: new SeededRandom(3) });
  const channel = diagnosticsChannel.channel('sinew:proxy:request');
  const ev = (node: string): TelemetryRequestEvent => ({
    node, listener: 'virtualInbound', direction: 'inbound', requestId: 'r', method: 'GET', authority: 'reviews:9080', path: '/', protocol: 'HTTP/1.1',
    status: 200, flags: '-', downstreamPeer: '', attempts: 1, requestBytes: 0, responseBytes: 0, startTime: 0, durationMs: 1,
  });
  const count = async () => Number(/^istio_requests_total\{[^}]*\} (\d+)$/m.exec(await tel.metrics.render())?.[1] ?? 0);
  try {
    tel.apply(undefined); // defaults: metrics on, no sampling of our own, no access log
    const first = tel.tracer;
    assert.ok(first);
    assert.equal(first.startServerSpan({}, { method: 'GET', url: 'http://a/' }).sampled, false);
    channel.publish(ev(reviews.id));
    channel.publish(ev('sidecar~someone-else.default')); // another proxy in this process: not ours
    assert.equal(await count(), 1);

    tel.apply({ metrics: { enabled: true } });
    assert.equal(tel.tracer, first, 'tracing settings unchanged: same tracer');
    tel.apply({ tracingSamplingPercentage: 100 });
    assert.notEqual(tel.tracer, first);
    assert.equal(tel.tracer!.startServerSpan({}, { method: 'GET', url: 'http://a/' }).sampled, true);

    tel.apply({ tracingSamplingPercentage: 100, metrics: { enabled: false } });
    channel.publish(ev(reviews.id));
    assert.equal(await count(), 1, 'metrics off: nothing recorded');
    tel.apply({ tracingSamplingPercentage: 100 });
    channel.publish(ev(reviews.id));
    assert.equal(await count(), 2);
  } finally {
    await tel.close();
  }
  channel.publish(ev(reviews.id));
  assert.equal(await count(), 2, 'closed: unsubscribed');
});
