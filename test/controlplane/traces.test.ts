/**
 * The control plane as the mesh's trace collector: proxies are told to send spans to its API
 * port, spans sent there (OTLP or Zipkin) are queryable, and `sinew traces` / `sinew trace`
 * print them. Telemetry resources change what the proxies are told.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/output.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { SeededRandom } from '../../src/core/random.js';
import { Tracer } from '../../src/telemetry/tracing.js';
import type { PushClient } from '../../src/xds/client.js';
import { OperatorApi, proxyClient } from './helpers.js';

const node: ProxyNode = { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };

const registration = {
  kind: 'workload',
  name: 'productpage-v1',
  namespace: 'default',
  labels: node.labels,
  replicas: [{ id: 'productpage-v1-0', host: '127.0.0.1', ports: { '9080': { inbound: 21000, app: 21001 } }, ready: true, restarts: 0, proxy: { inbound: '127.0.0.1:21000', outbound: '127.0.0.1:21002', admin: '127.0.0.1:21003' } }],
};

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await main(['node', 'sinew', ...args], io);
  return { code, out, err };
}

describe('control plane trace collector', () => {
  let cp: ControlPlane;
  let client: PushClient;
  const configs: ProxyConfig[] = [];

  before(async () => {
    cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5, mesh: { defaultTracingSampling: 100 } });
    const res = await new OperatorApi(cp).register(registration);
    assert.equal(res.status, 200, await res.clone().text());
  });
  after(async () => {
    await client?.close();
    await cp.close();
  });

  test('proxies are told to send spans to the control plane, at the sampling it was started with', async () => {
    client = proxyClient(cp, node, { apply: (c) => void configs.push(c) });
    const first = once(client, 'config');
    client.start();
    const [config] = (await first) as [ProxyConfig];
    assert.equal(config.telemetry?.tracingSamplingPercentage, 100);
    assert.deepEqual(config.telemetry?.tracingCollectors, [{ kind: 'otlp-http', url: `http://${cp.addresses.api}/v1/traces`, presentCredential: true }]);
  });

  test('Telemetry resources: the workload level overrides the namespace, which overrides the root', async () => {
    const yaml = [
      'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: mesh-default, namespace: istio-system}\nspec:\n  accessLogging: [{providers: [{name: envoy}]}]\n  tracing: [{randomSamplingPercentage: 50}]',
      'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: ns, namespace: default}\nspec:\n  tracing: [{randomSamplingPercentage: 10}]',
      'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: productpage, namespace: default}\nspec:\n  selector: {matchLabels: {app: productpage}}\n  accessLogging: [{disabled: true}]',
      'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: other, namespace: default}\nspec:\n  selector: {matchLabels: {app: reviews}}\n  tracing: [{randomSamplingPercentage: 0}]',
    ].join('\n---\n');
    const next = once(client, 'config');
    const res = await new OperatorApi(cp).apply(yaml);
    assert.equal(res.status, 200, await res.clone().text());
    const [config] = (await next) as [ProxyConfig];
    assert.equal(config.telemetry?.tracingSamplingPercentage, 10);
    assert.equal(config.telemetry?.accessLogs, undefined, 'the workload level turns the root\'s access log off');
    assert.equal(config.telemetry?.tracingCollectors?.length, 1, 'collectors stay');
  });

  test('spans sent to the control plane are listed by "sinew traces" and drawn by "sinew trace"', async () => {
    const collectors = configs[0].telemetry!.tracingCollectors!;
    const tracer = new Tracer({ node, randomSamplingPercentage: 100, collectors, credential: cp.credentials.mintProxyCredential(node), random: new SeededRandom(4) });
    const client1 = tracer.startClientSpan(undefined, { method: 'GET', url: 'http://reviews:9080/reviews/0', upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local' });
    const headers = client1.headers();
    const reviewsNode = { ...node, id: 'sidecar~reviews-v1-0.default', workload: 'reviews-v1', labels: { app: 'reviews', version: 'v1' } };
    const reviewsTracer = new Tracer({ node: reviewsNode, randomSamplingPercentage: 100, collectors, credential: cp.credentials.mintProxyCredential(reviewsNode) });
    const server = reviewsTracer.startServerSpan(headers, { method: 'GET', url: 'http://reviews:9080/reviews/0' });
    server.finish({ status: 200 });
    client1.finish({ status: 200 });
    await Promise.all([tracer.shutdown(), reviewsTracer.shutdown()]);
    assert.equal(tracer.stats.exported, 1);

    // A Zipkin span of another trace, as a Zipkin-instrumented app would send it.
    const zipkin = await new OperatorApi(cp).fetch('/api/v2/spans', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ traceId: 'b'.repeat(32), id: 'c'.repeat(16), name: 'get /ratings', timestamp: 1_700_000_000_000_000, duration: 1500, kind: 'SERVER', localEndpoint: { serviceName: 'ratings.default' }, tags: { 'http.status_code': '200' } }]),
    });
    assert.equal(zipkin.status, 202);

    const server_ = `--server=${cp.addresses.api}`;
    const token_ = `--token=${cp.credentials.apiToken}`;
    const listed = await cli(['traces', '-o', 'json', server_, token_]);
    assert.equal(listed.code, 0, listed.err);
    const traces = JSON.parse(listed.out) as { traceId: string; spans: { spanId: string; parentSpanId?: string; service: string; name: string; startTime: number; duration: number; tags: Record<string, string> }[] }[];
    assert.equal(traces.length, 2);
    const ours = traces.find((t) => t.traceId === client1.traceId)!;
    assert.ok(ours);
    assert.deepEqual(ours.spans.map((s) => s.service).sort(), ['productpage.default', 'reviews.default']);
    const srv = ours.spans.find((s) => s.service === 'reviews.default')!;
    assert.equal(srv.parentSpanId, client1.spanId);
    assert.deepEqual(Object.keys(srv), ['spanId', 'parentSpanId', 'service', 'name', 'startTime', 'duration', 'tags']);

    const filtered = await cli(['traces', '--service', 'ratings.default', '-o', 'json', server_, token_]);
    assert.deepEqual((JSON.parse(filtered.out) as { traceId: string }[]).map((t) => t.traceId), ['b'.repeat(32)]);

    // Regression: short names, as istioctl and Jaeger users type them, find the service.
    const short = await cli(['traces', '--service', 'ratings', '-o', 'json', server_, token_]);
    assert.deepEqual((JSON.parse(short.out) as { traceId: string }[]).map((t) => t.traceId), ['b'.repeat(32)]);
    const none = await cli(['traces', '--service', 'details', server_, token_]);
    assert.equal(none.code, 0);
    assert.match(none.out, /^no traces for service details yet \(spans reach the control plane within about a second of a request\)\nservices with traces: productpage\.default, ratings\.default, reviews\.default\n$/);

    const text = await cli(['traces', server_, token_, '--limit', '5']);
    assert.equal(text.code, 0);
    assert.match(text.out, /^TRACE ID +ROOT +SPANS +DURATION +START\n/);
    assert.match(text.out, new RegExp(`^${client1.traceId} +productpage\\.default reviews:9080/\\* +2 +\\d+\\.\\d\\dms +\\d{4}-`, 'm'));

    const one = await cli(['trace', client1.traceId, server_, token_]);
    assert.equal(one.code, 0, one.err);
    assert.match(one.out, new RegExp(`^trace ${client1.traceId}  2 spans`));
    assert.match(one.out, /\nproductpage\.default +reviews:9080\/\* .* 200\n {2}reviews\.default +reviews:9080\/\* .* 200\n$/);

    const missing = await cli(['trace', 'd'.repeat(32), server_, token_]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no trace/);
  });
});

describe('sinew controlplane --mesh-config', () => {
  test('a mesh config with errors is refused with every problem and its line; nothing starts', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'sinew-mesh-'));
    try {
      const file = join(dir, 'mesh.yaml');
      writeFileSync(file, 'apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n    extensionProviders:\n    - name: otel\n      opentelemetry: {service: c, port: 0, http: {}}\n    accesLogFile: /dev/stdout\n');
      const r = await cli(['controlplane', '--mesh-config', file, '--api-port', '0', '--push-port', '0', '--monitoring-port', '0', '--console-port', 'off']);
      assert.equal(r.code, 1);
      assert.match(r.err, /error \[SNW0104\] \S*mesh\.yaml:8:5 spec\.meshConfig\.accesLogFile: unknown field "accesLogFile": not a MeshConfig field; did you mean "accessLogFile"\?/);
      assert.match(r.err, /error \[SNW0450\] \S*mesh\.yaml:7:\d+ spec\.meshConfig\.extensionProviders\[0\]\.opentelemetry\.port: port 0 is not a port number/);
      assert.match(r.err, /the control plane did not start/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
