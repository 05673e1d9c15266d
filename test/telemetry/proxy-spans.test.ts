/**
 * The spans real proxies make, as `sinew trace` shows them: a fault-injected delay inside the
 * sidecar's client span, the gateway's own span and its upstream span told apart, and spans
 * reaching a collector promptly without anyone flushing. Real sockets, a real collector (the
 * control plane's trace store behind node:http).
 */
import { HTTP_FILTERS } from '../../src/api/proxy-config.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyNode, TelemetrySettings } from '../../src/api/proxy-config.js';
import { SeededRandom } from '../../src/core/random.js';
import { createProxy } from '../../src/proxy/proxy.js';
import { TraceStore, type StoredTrace } from '../../src/telemetry/trace-store.js';
import { h1Client } from '../proxy/support/client.js';
import { cluster, endpoint, httpListener, route, routeTo, table, vhost } from '../proxy/support/config.js';
import { startEcho } from '../proxy/support/echo.js';

const productpage: ProxyNode = { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };
const gatewayNode: ProxyNode = { id: 'router~istio-ingressgateway.istio-system', mode: 'router', workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' } };
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';

async function startCollector(): Promise<{ store: TraceStore; url: string; close(): Promise<void> }> {
  const store = new TraceStore();
  const server = http.createServer((req, res) => store.handleOtlp(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    store,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Polls until the trace has `spans` spans, or fails after `ms`. */
async function waitForTrace(store: TraceStore, traceId: string, spans: number, ms: number): Promise<StoredTrace> {
  const deadline = Date.now() + ms;
  for (;;) {
    const trace = store.get(traceId);
    if (trace && trace.spans.length >= spans) return trace;
    if (Date.now() > deadline) throw new Error(`trace ${traceId} had ${trace?.spans.length ?? 0} of ${spans} spans after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('regression: a fault-injected delay is drawn inside the sidecar\'s client span, where the span used to start after it', async () => {
  const collector = await startCollector();
  const app = await startEcho('ratings-v1');
  const telemetry: TelemetrySettings = { tracingSamplingPercentage: 100, tracingCollectors: [{ kind: 'otlp-http', url: collector.url }] };
  const delayMs = 300;
  const proxy = createProxy({
    config: {
      version: 'v1',
      node: productpage,
      listeners: [httpListener('virtualOutbound', { routeConfigName: '9080', acceptAbsoluteUri: true })],
      routeConfigs: [table('9080', [vhost('ratings:9080', ['ratings', 'ratings:9080'], [route('ratings', {}, routeTo(RATINGS), { perFilterConfig: { [HTTP_FILTERS.fault]: { delay: { fixedDelayMs: delayMs, percentage: 100 } } } })])])],
      clusters: [cluster(RATINGS, { service: { host: 'ratings.default.svc.cluster.local', port: 9080 } })],
      endpoints: [{ clusterName: RATINGS, endpoints: [endpoint(app.port)] }],
      telemetry,
    },
    random: new SeededRandom(1),
    telemetry: { tracer: { scheduledDelayMillis: 60_000 } },
  });
  await proxy.start();
  const client = h1Client(proxy.listenerAddresses()['virtualOutbound'].port);
  try {
    const started = Date.now();
    const res = await client.request({ host: 'ratings:9080', path: '/ratings/0' });
    const took = Date.now() - started;
    assert.equal(res.status, 200);
    assert.ok(took >= delayMs, `the request was delayed (${took} ms)`);
    await proxy.telemetry!.tracer!.flush();
    const traceId = String(app.seen[0].headers['traceparent']).split('-')[1];
    const [span] = collector.store.get(traceId)!.spans;
    assert.equal(span.kind, 'client');
    assert.equal(span.tags['response_flags'], 'DI');
    // Microseconds: the span covers the delay and the upstream call after it.
    assert.ok(span.duration >= delayMs * 1000, `client span lasts ${span.duration / 1000} ms, the delay ${delayMs} ms`);
    assert.ok(span.duration <= (took + 5) * 1000, 'and no longer than the request as the client saw it');
  } finally {
    await client.close();
    await proxy.close({ drainMs: 0 });
    await app.close();
    await collector.close();
  }
});

test('regression: the gateway\'s span appears once, its upstream span under Envoy\'s name; spans arrive within a second, unflushed', async () => {
  const collector = await startCollector();
  const app = await startEcho('productpage-v1');
  const c = 'outbound|9080||productpage.default.svc.cluster.local';
  // The tracer's default batch delay: spans go without a flush (it was 5 s, the SDK's default).
  const gateway = createProxy({
    config: {
      version: 'gw-1',
      node: gatewayNode,
      listeners: [httpListener('0.0.0.0_8080', { routeConfigName: 'http.8080' }, { direction: 'gateway' })],
      routeConfigs: [table('http.8080', [vhost('*:8080', ['*'], [route('bookinfo', {}, routeTo(c))])])],
      clusters: [cluster(c, { service: { host: 'productpage.default.svc.cluster.local', port: 9080 } })],
      endpoints: [{ clusterName: c, endpoints: [endpoint(app.port)] }],
      telemetry: { tracingSamplingPercentage: 100, tracingCollectors: [{ kind: 'otlp-http', url: collector.url }] },
    },
    random: new SeededRandom(5),
  });
  await gateway.start();
  const client = h1Client(gateway.listenerAddresses()['0.0.0.0_8080'].port);
  try {
    const res = await client.request({ host: 'bookinfo.example.com', path: '/productpage' });
    assert.equal(res.status, 200);
    const traceId = String(app.seen[0].headers['traceparent']).split('-')[1];
    const trace = await waitForTrace(collector.store, traceId, 2, 2500);
    const server = trace.spans.find((s) => s.kind === 'server')!;
    const upstream = trace.spans.find((s) => s.kind === 'client')!;
    assert.equal(server.name, 'bookinfo.example.com/*');
    assert.equal(upstream.name, `router ${c} egress`);
    assert.equal(upstream.parentSpanId, server.spanId);
    assert.notEqual(server.name, upstream.name, 'two different spans, not the same span twice');
  } finally {
    await client.close();
    await gateway.close({ drainMs: 0 });
    await app.close();
    await collector.close();
  }
});
