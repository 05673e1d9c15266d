/**
 * Telemetry providers as Istio documents them: a mesh config (here an IstioOperator, as the
 * istio.io telemetry tasks write it) defines an OpenTelemetry (OTLP/HTTP) provider, a Zipkin
 * provider and file access logs with a text format and JSON labels; Telemetry resources pick
 * them mesh-wide, per namespace and per workload. The compiler turns that into each proxy's
 * settings, and real proxies send their spans to real receivers in this file: an OTLP/HTTP
 * server and a Zipkin v2 server that decode and check what they are sent (there is no
 * OpenTelemetry collector or Zipkin packaged here; these are the counterparts, reached through
 * a ServiceEntry as a collector outside the cluster is in Istio).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isValidSpanId, isValidTraceId, SpanKind } from '@opentelemetry/api';
import type { ProxyNode, TelemetrySettings } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { compileTelemetry } from '../../src/compiler/telemetry.js';
import { DEFAULT_MESH, type MeshSettings } from '../../src/compiler/inputs.js';
import { parseMeshConfig } from '../../src/config/mesh-config.js';
import { validateText } from '../../src/config/validate.js';
import { SeededRandom } from '../../src/core/random.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { buildRegistrySnapshot } from '../../src/registry/registry.js';
import type { AccessLogSink } from '../../src/telemetry/access-log.js';
import { h1Client } from '../proxy/support/client.js';
import { cluster, endpoint, httpListener, route, routeTo, table, vhost } from '../proxy/support/config.js';
import { startEcho } from '../proxy/support/echo.js';

const productpage: ProxyNode = { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };
const reviews: ProxyNode = { id: 'sidecar~reviews-v2-0.default', mode: 'sidecar', workload: 'reviews-v2', namespace: 'default', labels: { app: 'reviews', version: 'v2' } };
const REVIEWS_FQDN = 'reviews.default.svc.cluster.local';
const OUT_CLUSTER = `outbound|9080||${REVIEWS_FQDN}`;

function resources(yaml: string): Resource[] {
  const r = validateText('telemetry.yaml', yaml);
  assert.deepEqual(r.diagnostics.filter((d) => d.level === 'error'), []);
  return r.resources;
}

function meshFrom(text: string, extra: Partial<MeshSettings> = {}): MeshSettings {
  const loaded = parseMeshConfig('mesh.yaml', text);
  assert.deepEqual(loaded.diagnostics.filter((d) => d.level === 'error'), [], 'the mesh config is valid');
  const { telemetry, ...rest } = loaded.settings!;
  return { ...DEFAULT_MESH, ...rest, meshTelemetry: telemetry, ...extra };
}

// === receivers ===

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: 'client' | 'server';
  service: string;
  tags: Record<string, string>;
}

interface Receiver {
  url: string;
  port: number;
  spans: ReceivedSpan[];
  requests: { headers: http.IncomingHttpHeaders; path: string }[];
  problems: string[];
  close(): Promise<void>;
}

async function startReceiver(handle: (body: unknown, r: Receiver) => { status: number; reply?: string }): Promise<Receiver> {
  const r: Receiver = { url: '', port: 0, spans: [], requests: [], problems: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests.push({ headers: req.headers, path: req.url ?? '' });
      if (!/^application\/json/.test(String(req.headers['content-type']))) r.problems.push(`content-type ${req.headers['content-type']}`);
      let out = { status: 400, reply: '{}' } as { status: number; reply?: string };
      try {
        out = handle(JSON.parse(Buffer.concat(chunks).toString('utf8')), r);
      } catch (err) {
        r.problems.push(String(err));
      }
      res.writeHead(out.status, { 'content-type': 'application/json' }).end(out.reply ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.port = (server.address() as AddressInfo).port;
  r.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return r;
}

/**
 * An OTLP/HTTP receiver (POST /v1/traces, the JSON encoding of ExportTraceServiceRequest):
 * checks the ids with the OpenTelemetry API's own validators, maps OTLP's span kind (the API's
 * SpanKind + 1) and reads the resource's service.name, as a collector does.
 */
function otlpReceiver(): Promise<Receiver> {
  return startReceiver((body, r) => {
    const req = body as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
    for (const rs of req.resourceSpans) {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      for (const ss of rs.scopeSpans) {
        for (const s of ss.spans) {
          const traceId = String(s.traceId);
          const spanId = String(s.spanId);
          if (!isValidTraceId(traceId) || !isValidSpanId(spanId)) r.problems.push(`bad ids ${traceId}/${spanId}`);
          if (!/^\d+$/.test(String(s.startTimeUnixNano)) || BigInt(String(s.endTimeUnixNano)) < BigInt(String(s.startTimeUnixNano))) r.problems.push('bad times');
          const kind = Number(s.kind) - 1 === SpanKind.SERVER ? 'server' : Number(s.kind) - 1 === SpanKind.CLIENT ? 'client' : 'other';
          const tags = Object.fromEntries(((s.attributes ?? []) as { key: string; value: { stringValue?: string } }[]).map((a) => [a.key, String(a.value.stringValue ?? '')]));
          r.spans.push({ traceId, spanId, parentSpanId: (s.parentSpanId as string) || undefined, name: String(s.name), kind: kind as 'client', service, tags });
        }
      }
    }
    return { status: 200, reply: '{}' };
  });
}

/** A Zipkin v2 receiver (POST /api/v2/spans, a JSON list of spans), answering 202 as Zipkin does. */
function zipkinReceiver(): Promise<Receiver> {
  return startReceiver((body, r) => {
    for (const s of body as Record<string, unknown>[]) {
      const traceId = String(s.traceId);
      const id = String(s.id);
      if (!/^[0-9a-f]{16}([0-9a-f]{16})?$/.test(traceId) || !/^[0-9a-f]{16}$/.test(id)) r.problems.push(`bad ids ${traceId}/${id}`);
      if (typeof s.timestamp !== 'number' || typeof s.duration !== 'number') r.problems.push('timestamp and duration are microseconds');
      if (s.kind !== 'CLIENT' && s.kind !== 'SERVER') r.problems.push(`kind ${String(s.kind)}`);
      r.spans.push({
        traceId,
        spanId: id,
        parentSpanId: s.parentId as string | undefined,
        name: String(s.name),
        kind: String(s.kind).toLowerCase() as 'client',
        service: String((s.localEndpoint as { serviceName?: string })?.serviceName),
        tags: (s.tags ?? {}) as Record<string, string>,
      });
    }
    return { status: 202 };
  });
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// === the mesh config ===

const meshConfig = (otlpPort: number, zipkinPort: number) => `
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    accessLogEncoding: JSON
    extensionProviders:
    - name: otel
      opentelemetry:
        service: otel-collector.observability.svc.cluster.local
        port: ${otlpPort}
        http:
          path: /v1/traces
          headers: [{name: x-api-key, value: s3cret}]
    - name: zipkin-tracing
      zipkin:
        service: zipkin.example.com
        port: ${zipkinPort}
    - name: text-log
      envoyFileAccessLog:
        path: /dev/stdout
        logFormat:
          text: '%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% "%REQ(X-CUSTOM)%" %UPSTREAM_CLUSTER%'
    - name: json-log
      envoyFileAccessLog:
        path: /dev/stdout
        logFormat:
          labels:
            code: '%RESPONSE_CODE%'
            method: '%REQ(:METHOD)%'
            custom: '%REQ(X-CUSTOM)%'
            route: 'route=%ROUTE_NAME%'
`;

const collectors = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: otel-collector, namespace: observability}
spec:
  hosts: [otel-collector.observability.svc.cluster.local]
  ports: [{number: OTLP, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`;

const telemetries = `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing: [{providers: [{name: otel}], randomSamplingPercentage: 100}]
  accessLogging: [{providers: [{name: text-log}]}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  tracing: [{providers: [{name: zipkin-tracing}]}]
  accessLogging: [{providers: [{name: json-log}]}]
`;

describe('compiling providers for each proxy', () => {
  const mesh = meshFrom(meshConfig(4318, 9411));
  const config = { resources: resources(telemetries) };
  const registry = buildRegistrySnapshot(resources(collectors.replace('OTLP', '4318')), new Map(), 1);

  test('the root namespace picks OpenTelemetry for everyone; a workload Telemetry picks Zipkin for reviews', () => {
    const pp = compileTelemetry({ config, node: productpage, mesh, registry });
    assert.equal(pp.tracingSamplingPercentage, 100);
    assert.deepEqual(pp.tracingCollectors, [{ kind: 'otlp-http', url: 'http://127.0.0.1:4318/v1/traces', provider: 'otel', headers: { 'x-api-key': 's3cret' } }]);
    assert.deepEqual(pp.accessLogs?.map((l) => [l.format, l.text?.slice(0, 14)]), [['text', '%REQ(:METHOD)%']]);
    const rv = compileTelemetry({ config, node: reviews, mesh, registry });
    assert.equal(rv.tracingSamplingPercentage, 100, 'sampling is inherited from the root');
    assert.deepEqual(rv.tracingCollectors, [{ kind: 'zipkin', url: 'http://zipkin.example.com:9411/api/v2/spans', provider: 'zipkin-tracing' }], 'a host the registry does not know is connected to as it is');
    assert.deepEqual(rv.accessLogs?.map((l) => l.format), ['json'], 'the workload level replaces the access log providers');
  });

  test('the control plane\'s own collector keeps the spans; disableSpanReporting sends none', () => {
    const own = { kind: 'otlp-http' as const, url: 'http://127.0.0.1:15080/v1/traces' };
    const withOwn = { ...mesh, tracingCollectors: [own] };
    assert.deepEqual(compileTelemetry({ config, node: productpage, mesh: withOwn, registry }).tracingCollectors?.map((c) => c.url), ['http://127.0.0.1:4318/v1/traces', own.url]);
    const off = { resources: resources(telemetries + '---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: quiet, namespace: default}\nspec:\n  tracing: [{disableSpanReporting: true}]\n') };
    assert.equal(compileTelemetry({ config: off, node: productpage, mesh: withOwn, registry }).tracingCollectors, undefined);
  });

  test('legacy mesh settings apply without Telemetry: accessLogFile with the mesh encoding, enableTracing: false', () => {
    const legacy = meshFrom('accessLogFile: /tmp/access.log\naccessLogEncoding: JSON\nenableTracing: false\n');
    const s = compileTelemetry({ config: { resources: [] }, node: productpage, mesh: legacy, registry });
    assert.deepEqual(s.accessLogs, [{ enabled: true, format: 'json', path: '/tmp/access.log' }]);
    assert.equal(s.tracingSamplingPercentage, 0);
    assert.equal(s.tracingCollectors, undefined);
  });

  test('a mode-specific access log is written for that direction only', () => {
    const modes = { resources: resources(telemetries.replace('accessLogging: [{providers: [{name: json-log}]}]', 'accessLogging: [{providers: [{name: json-log}], match: {mode: SERVER}}]')) };
    const rv = compileTelemetry({ config: modes, node: reviews, mesh, registry });
    assert.deepEqual(rv.accessLogs?.map((l) => [l.format, l.directions]), [['text', ['outbound', 'gateway']], ['json', ['inbound']]]);
  });

  test('targetRefs: a Telemetry for a Gateway API gateway applies to its proxies, not to sidecars', () => {
    const gw: ProxyNode = { id: 'router~edge-istio.default', mode: 'router', workload: 'edge-istio', namespace: 'default', labels: { 'gateway.networking.k8s.io/gateway-name': 'edge' } };
    const targeted = { resources: resources('apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: edge, namespace: default}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: edge}]\n  tracing: [{randomSamplingPercentage: 7}]\n') };
    assert.equal(compileTelemetry({ config: targeted, node: gw, mesh, registry }).tracingSamplingPercentage, 7);
    assert.equal(compileTelemetry({ config: targeted, node: productpage, mesh, registry }).tracingSamplingPercentage, 1);
  });

  test('metrics: off when no prometheus provider is in scope, on again below', () => {
    const yaml = 'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: mesh, namespace: istio-system}\nspec:\n  metrics: [{providers: [{name: otel}]}]\n---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: reviews, namespace: default}\nspec:\n  selector: {matchLabels: {app: reviews}}\n  metrics: [{providers: [{name: prometheus}]}]\n';
    const c = { resources: resources(yaml) };
    assert.deepEqual(compileTelemetry({ config: c, node: productpage, mesh, registry }).metrics, { enabled: false });
    assert.deepEqual(compileTelemetry({ config: c, node: reviews, mesh, registry }).metrics, { enabled: true });
  });
});

describe('the mesh config file', () => {
  test('every problem at once, with line, field and code; nothing is applied', () => {
    const text = [
      'extensionProviders:',
      '- name: otel',
      '  opentelemetry: {service: c, port: 70000, http: {}}',
      '- name: otel',
      '  zipkin: {service: z, port: 9411}',
      '- name: both',
      '  zipkin: {service: z, port: 9411}',
      '  prometheus: {}',
      '- name: bad-log',
      '  envoyFileAccessLog: {logFormat: {text: "%NOT_AN_OPERATOR%"}}',
      'defaultProviders: {tracing: [zipkn]}',
      'enableTraceing: true',
      'trustDomain: example.org',
    ].join('\n');
    const r = parseMeshConfig('mesh.yaml', text);
    assert.equal(r.settings, undefined);
    assert.deepEqual(
      r.diagnostics.map((d) => `${d.level} ${d.code} ${d.source?.line} ${d.path}`),
      [
        'error SNW0104 12 enableTraceing',
        'warning SNW0452 13 trustDomain',
        'error SNW0450 3 extensionProviders[0].opentelemetry.port',
        'error SNW0450 4 extensionProviders[1].name',
        'error SNW0450 6 extensionProviders[2]',
        'error SNW0450 10 extensionProviders[3].envoyFileAccessLog.logFormat.text',
        'warning SNW0451 11 defaultProviders.tracing[0]',
      ],
    );
    assert.match(r.diagnostics[0].message, /did you mean "enableTracing"/);
    assert.match(r.diagnostics[5].message, /%NOT_AN_OPERATOR% at position 0 is not a command operator Envoy has/);
  });

  test('defaultConfig.gatewayTopology.numTrustedProxies is applied (istio.io authz-ingress); its other fields warn, a bad count is refused', () => {
    const ok = parseMeshConfig('mesh.yaml', 'defaultConfig:\n  gatewayTopology: {numTrustedProxies: 2, forwardClientCertDetails: SANITIZE}\n');
    assert.equal(ok.settings?.gatewayNumTrustedProxies, 2);
    assert.deepEqual(ok.diagnostics.map((d) => `${d.level} ${d.code} ${d.path}`), ['warning SNW0452 defaultConfig.gatewayTopology.forwardClientCertDetails']);
    const bad = parseMeshConfig('mesh.yaml', 'defaultConfig:\n  gatewayTopology: {numTrustedProxies: -1}\n');
    assert.equal(bad.settings, undefined);
    assert.deepEqual(bad.diagnostics.map((d) => `${d.level} ${d.path}`), ['error defaultConfig.gatewayTopology.numTrustedProxies']);
  });

  test('the istio ConfigMap and Helm values are read as istiod reads them', () => {
    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |-\n    rootNamespace: mesh-root\n    defaultConfig:\n      tracing: {sampling: 25}\n';
    const fromCm = parseMeshConfig('istio-cm.yaml', cm);
    assert.equal(fromCm.form, 'ConfigMap');
    assert.equal(fromCm.settings?.rootNamespace, 'mesh-root');
    assert.equal(fromCm.settings?.defaultTracingSampling, 25);
    const helm = parseMeshConfig('values.yaml', 'meshConfig:\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n');
    assert.equal(helm.form, 'Helm values');
    assert.equal(helm.settings?.outboundTrafficPolicy, 'REGISTRY_ONLY');
    // Istio's built-in providers stay, a user's provider of the same name replaces one.
    const merged = parseMeshConfig('m.yaml', 'extensionProviders: [{name: envoy, envoyFileAccessLog: {path: /tmp/x.log}}]\n');
    assert.deepEqual(merged.settings?.telemetry.extensionProviders?.map((p) => p.name), ['prometheus', 'stackdriver', 'envoy']);
    assert.equal(merged.settings?.telemetry.extensionProviders?.[2].envoyFileAccessLog?.path, '/tmp/x.log');
  });
});

describe('real proxies, real receivers', () => {
  test('spans reach the OTLP/HTTP and Zipkin providers the Telemetry resources pick; access logs use their formats', async () => {
    const otlp = await otlpReceiver();
    const zipkin = await zipkinReceiver();
    const app = await startEcho('reviews-v2');
    const productpageLogs: string[] = [];
    const reviewsLogs: string[] = [];
    const sink = (lines: string[]): AccessLogSink => ({ write: (l) => void lines.push(l), close: async () => undefined, stats: { written: 0, dropped: 0 } });
    const mesh = meshFrom(meshConfig(otlp.port, zipkin.port).replace('zipkin.example.com', '127.0.0.1'));
    const config = { resources: resources(telemetries) };
    const registry = buildRegistrySnapshot(resources(collectors.replace('OTLP', String(otlp.port))), new Map(), 1);
    const outTel: TelemetrySettings = compileTelemetry({ config, node: productpage, mesh, registry });
    const inTel: TelemetrySettings = compileTelemetry({ config, node: reviews, mesh, registry });
    const proxies: Proxy[] = [];
    try {
      const inbound = createProxy({
        config: {
          version: 'in-1',
          node: reviews,
          listeners: [httpListener('virtualInbound', { routeConfigName: 'inbound|9080' }, { direction: 'inbound' })],
          routeConfigs: [table('inbound|9080', [vhost('inbound|http|9080', ['*'], [route('default', {}, routeTo('inbound|9080||'))])])],
          clusters: [cluster('inbound|9080||', { service: { host: REVIEWS_FQDN, port: 9080 } })],
          endpoints: [{ clusterName: 'inbound|9080||', endpoints: [endpoint(app.port)] }],
          telemetry: inTel,
        },
        random: new SeededRandom(1),
        telemetry: { accessLogSink: sink(reviewsLogs) },
      });
      proxies.push(inbound);
      await inbound.start();
      const outbound = createProxy({
        config: {
          version: 'out-1',
          node: productpage,
          listeners: [httpListener('virtualOutbound', { routeConfigName: '9080', acceptAbsoluteUri: true })],
          routeConfigs: [table('9080', [vhost(`${REVIEWS_FQDN}:9080`, ['reviews', 'reviews:9080'], [route('reviews-route', {}, routeTo(OUT_CLUSTER))])])],
          clusters: [cluster(OUT_CLUSTER, { service: { host: REVIEWS_FQDN, namespace: 'default', name: 'reviews', port: 9080 } })],
          endpoints: [{ clusterName: OUT_CLUSTER, endpoints: [endpoint(inbound.listenerAddresses()['virtualInbound'].port, { app: 'reviews', version: 'v2' })] }],
          telemetry: outTel,
        },
        random: new SeededRandom(2),
        telemetry: { accessLogSink: sink(productpageLogs) },
      });
      proxies.push(outbound);
      await outbound.start();
      const client = h1Client(outbound.listenerAddresses()['virtualOutbound'].port);
      try {
        const res = await client.request({ host: 'reviews:9080', path: '/reviews/7?x=1', headers: { 'x-custom': 'hello' } });
        assert.equal(res.status, 200);
      } finally {
        await client.close();
      }
      const [, traceId, parentOfApp] = String(app.seen[0].headers['traceparent']).split('-');
      // Unflushed: the tracers' own batch delay delivers them.
      await until('the client span at the OTLP receiver', () => otlp.spans.length >= 1);
      await until('the server span at the Zipkin receiver', () => zipkin.spans.length >= 1);
      assert.deepEqual([...otlp.problems, ...zipkin.problems], []);
      const clientSpan = otlp.spans.find((s) => s.traceId === traceId)!;
      const serverSpan = zipkin.spans.find((s) => s.traceId === traceId)!;
      assert.equal(clientSpan.kind, 'client');
      assert.equal(clientSpan.service, 'productpage.default');
      assert.equal(serverSpan.kind, 'server');
      assert.equal(serverSpan.service, 'reviews.default');
      assert.equal(serverSpan.parentSpanId, clientSpan.spanId, 'one trace across both providers');
      assert.equal(serverSpan.spanId, parentOfApp, 'the app is the server span\'s child');
      assert.equal(otlp.requests[0].path, '/v1/traces');
      assert.equal(otlp.requests[0].headers['x-api-key'], 's3cret', 'the provider\'s headers are sent');
      assert.equal(zipkin.requests[0].path, '/api/v2/spans');
      assert.equal(zipkin.spans.some((s) => s.service === 'productpage.default'), false, 'each proxy sends to its own provider only');

      // Access logs: the outbound proxy in the root's text format, the inbound one in json-log's labels.
      assert.deepEqual(productpageLogs, [`GET /reviews/7?x=1 200 - "hello" ${OUT_CLUSTER}`]);
      assert.equal(reviewsLogs.length, 1);
      assert.deepEqual(JSON.parse(reviewsLogs[0]), { code: 200, method: 'GET', custom: 'hello', route: 'route=default' });
    } finally {
      for (const p of proxies.reverse()) await p.close({ drainMs: 0 });
      await app.close();
      await otlp.close();
      await zipkin.close();
    }
  });
});
