/**
 * Simulation tests for the Kubernetes Gateway API: the config of a Gateway's own proxy, and of
 * sidecars shaped by GAMMA routes, compiled from YAML, with synthetic requests sent through it
 * by the proxy's own matcher (explainRequest).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import type { WorkloadInstance } from '../../src/registry/index.js';
import { compile, parse, request, workload } from './support/mesh.js';

const NS = 'apps';
const svc = (name: string, port = 8080, extra = '') => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${NS}}\nspec:\n  selector: {app: ${name}}\n  ports: [{name: http, port: ${port}${extra}}]\n---\n`;

function world(yaml: string) {
  const resources = [...parse(svc('v1') + svc('v2') + svc('echo', 80) + yaml), workload('v1', { namespace: NS, labels: { app: 'v1' }, ports: [{ name: 'http', containerPort: 8080 }] }), workload('v2', { namespace: NS, labels: { app: 'v2' }, ports: [{ name: 'http', containerPort: 8080 }] })];
  const instances = new Map<string, WorkloadInstance[]>([
    [`${NS}/v1`, [{ name: 'v1-0', address: '127.0.0.1', ports: { 8080: 20001 } }]],
    [`${NS}/v2`, [{ name: 'v2-0', address: '127.0.0.1', ports: { 8080: 20002 } }]],
  ]);
  return { resources, instances };
}

const gateway = (listeners: string, name = 'gw') => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: ${NS}}
spec:
  gatewayClassName: sinew
  listeners:
${listeners}---
`;

function gatewayConfig(yaml: string, ports: Record<number, number> = { 80: 18080 }, name = 'gw'): ProxyConfig {
  const { resources, instances } = world(yaml);
  return compile(resources, instances, {
    mode: 'router',
    workload: `${name}-sinew`,
    namespace: NS,
    labels: { 'gateway.networking.k8s.io/gateway-name': name },
    ports: { gateway: Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, { host: '127.0.0.1', port: v }])) },
  });
}

const cluster = (name: string, port = 8080) => `outbound|${port}||${name}.${NS}.svc.cluster.local`;

describe('a Gateway\'s own proxy', () => {
  test('a listener per port, where the runner mapped it; routes by path with segment-prefix semantics', () => {
    const config = gatewayConfig(
      gateway('  - {name: http, port: 80, protocol: HTTP}\n') +
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: matching, namespace: ${NS}}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: v2, port: 8080}]
`,
    );
    assert.deepEqual(config.listeners.map((l) => [l.name, l.direction, l.protocol]), [['127.0.0.1_18080', 'gateway', 'http']]);
    const to = (path: string, headers?: Record<string, string>) => request(config, `http://example.com:80${path}`, { headers }).cluster;
    assert.equal(to('/'), cluster('v1'));
    assert.equal(to('/v2'), cluster('v2'));
    assert.equal(to('/v2/example'), cluster('v2'));
    assert.equal(to('/v2example'), cluster('v1'), 'a PathPrefix matches whole segments');
    assert.equal(to('/', { version: 'two' }), cluster('v2'), 'a header match outranks the shorter prefix');
    assert.equal(to('/foo/v2/example'), cluster('v1'));
    // Routes are named after the HTTPRoute rules they came from.
    assert.equal(request(config, 'http://example.com:80/v2/x').route, `${NS}/matching/1.0`);
  });

  test('precedence across routes: exact before prefix, longer prefix first, then method, headers, query params, age', () => {
    const config = gatewayConfig(
      gateway('  - {name: http, port: 80, protocol: HTTP}\n') +
        [
          ['a-catch-all', '{path: {type: PathPrefix, value: /}}'],
          ['b-method', '{method: POST, path: {type: PathPrefix, value: /}}'],
          ['c-long', '{path: {type: PathPrefix, value: /api/v1}}'],
          ['d-exact', '{path: {type: Exact, value: /api}}'],
        ]
          .map(([name, match], i) => `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ${name}, namespace: ${NS}}\nspec:\n  parentRefs: [{name: gw}]\n  rules: [{matches: [${match}], backendRefs: [{name: ${i % 2 ? 'v2' : 'v1'}, port: 8080}]}]\n---\n`)
          .join(''),
    );
    const route = (path: string, method = 'GET') => request(config, `http://x:80${path}`, { method }).route;
    assert.equal(route('/api'), `${NS}/d-exact/0`);
    assert.equal(route('/api/v1/users'), `${NS}/c-long/0`);
    assert.equal(route('/other', 'POST'), `${NS}/b-method/0`);
    assert.equal(route('/other'), `${NS}/a-catch-all/0`);
  });

  test('hostnames: the intersection of listener and route; a more specific listener keeps its hostnames (isolation)', () => {
    const config = gatewayConfig(
      gateway('  - {name: wild, port: 80, protocol: HTTP, hostname: "*.example.com"}\n  - {name: foo, port: 80, protocol: HTTP, hostname: foo.example.com}\n') +
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wild, namespace: ${NS}}
spec:
  parentRefs: [{name: gw, sectionName: wild}]
  rules: [{backendRefs: [{name: v1, port: 8080}]}]
`,
    );
    assert.equal(request(config, 'http://bar.example.com:80/').cluster, cluster('v1'));
    assert.equal(request(config, 'http://example.com:80/').outcome, 'no-virtual-host', '*.example.com does not match example.com');
    // foo.example.com belongs to the foo listener, which has no route: 404, not the wildcard's route.
    assert.equal(request(config, 'http://foo.example.com:80/').outcome, 'no-route');
  });

  test('filters: header modifiers, redirects keep the listener port, rewrites, mirrors, and 500 for a backend that does not exist', () => {
    const config = gatewayConfig(
      gateway('  - {name: http, port: 80, protocol: HTTP}\n') +
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: f, namespace: ${NS}}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /headers}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-Set, value: a}], add: [{name: X-Add, value: b}], remove: [X-Gone]}
    backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /redirect}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]
  - matches: [{path: {type: PathPrefix, value: /https}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
  - matches: [{path: {type: PathPrefix, value: /prefix/one}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}}]
    backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /mirror}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: v2, port: 8080}, percent: 50}}]
    backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /missing}}]
    backendRefs: [{name: nothere, port: 8080}]
`,
    );
    const headers = request(config, 'http://x:80/headers').detail!;
    assert.deepEqual(headers.requestHeaders, { set: { 'x-set': 'a' }, add: { 'x-add': 'b' }, remove: ['x-gone'] });
    const redirect = request(config, 'http://x:80/redirect');
    assert.equal(redirect.outcome, 'redirect');
    assert.equal(redirect.status, 302);
    assert.deepEqual(redirect.detail!.action, { kind: 'redirect', responseCode: 302, host: 'example.org', port: 80 });
    assert.deepEqual(request(config, 'http://x:80/https').detail!.action, { kind: 'redirect', responseCode: 301, scheme: 'https', derivePort: 'FROM_PROTOCOL_DEFAULT' });
    const exact = request(config, 'http://x:80/prefix/one').detail!.action;
    const deeper = request(config, 'http://x:80/prefix/one/two').detail!.action;
    assert.equal(exact.kind === 'route' && exact.rewrite?.pathPrefix, '/one');
    assert.equal(deeper.kind === 'route' && deeper.rewrite?.pathPrefix, '/one/');
    const mirror = request(config, 'http://x:80/mirror').detail!.action;
    assert.deepEqual(mirror.kind === 'route' && mirror.mirrors, [{ cluster: cluster('v2'), percentage: 50 }]);
    const missing = request(config, 'http://x:80/missing');
    assert.deepEqual([missing.outcome, missing.status], ['direct', 500]);
  });

  test('regression: a RequestRedirect or URLRewrite on the backendRef applies (it was ignored: conformance HTTPRouteBackendRequestRedirect, HTTPRouteBackendURLRewrite)', () => {
    const config = gatewayConfig(
      gateway('  - {name: http, port: 80, protocol: HTTP}\n') +
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b, namespace: ${NS}}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /full}}]
    backendRefs:
    - name: v1
      port: 8080
      filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /redirected}}}]
  - matches: [{path: {type: PathPrefix, value: /rewrite}}]
    backendRefs:
    - name: v1
      port: 8080
      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /rewritten}}}]
`,
    );
    const redirect = request(config, 'http://x:80/full/original');
    assert.equal(redirect.outcome, 'redirect');
    assert.equal(redirect.detail!.action.kind === 'redirect' && redirect.detail!.action.path, '/redirected');
    const rewrite = request(config, 'http://x:80/rewrite/original').detail!.action;
    assert.equal(rewrite.kind, 'route');
    assert.ok(rewrite.kind === 'route' && rewrite.rewrite, 'the route rewrites the path');
  });

  test('a listener port the runner has not mapped yet is not served; a listener that is not valid is not either', () => {
    const config = gatewayConfig(gateway('  - {name: http, port: 80, protocol: HTTP}\n  - {name: other, port: 81, protocol: HTTP}\n  - {name: udp, port: 82, protocol: UDP}\n'), { 80: 18080, 82: 18082 });
    assert.deepEqual(config.listeners.map((l) => l.name), ['127.0.0.1_18080']);
  });

  test('another proxy gets nothing of the Gateway, and the Gateway\'s proxy nothing of Istio\'s Gateways', () => {
    const yaml = gateway('  - {name: http, port: 80, protocol: HTTP}\n') + 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: istio-gw, namespace: apps}\nspec:\n  servers: [{port: {number: 81, name: http, protocol: HTTP}, hosts: ["*"]}]\n';
    const ours = gatewayConfig(yaml, { 80: 18080, 81: 18081 });
    assert.deepEqual(ours.listeners.map((l) => l.name), ['127.0.0.1_18080']);
    const { resources, instances } = world(yaml);
    const ingress = compile(resources, instances, { mode: 'router', workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 80: { host: '127.0.0.1', port: 8080 }, 81: { host: '127.0.0.1', port: 8081 } } } });
    assert.deepEqual(ingress.listeners.map((l) => l.name), ['127.0.0.1_8081']);
  });
});

describe('GAMMA: routes whose parent is a Service', () => {
  const meshRoute = (name: string, namespace = NS, extra = '') => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, namespace: ${NS}}]
  rules:
  - matches: [{path: {type: Exact, value: /v1}}]
    backendRefs: [{name: v1, port: 8080, namespace: ${NS}}]
  - matches: [{path: {type: Exact, value: /v2}}]
    backendRefs: [{name: v2, port: 8080, namespace: ${NS}}]
${extra}---
`;
  const echoVs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo-vs, namespace: ${NS}}
spec:
  hosts: [echo]
  http: [{route: [{destination: {host: v2, port: {number: 8080}}}]}]
---
`;

  function sidecar(yaml: string, namespace = NS) {
    const { resources, instances } = world(yaml);
    return compile(resources, instances, { workload: 'client', namespace, labels: { app: 'client' } });
  }

  test('a producer route shapes the Service for clients in its namespace, before an older VirtualService', () => {
    // The VirtualService is applied first (older): Istio still puts the namespace's Gateway API routes first.
    const config = sidecar(echoVs + meshRoute('split'));
    assert.equal(request(config, 'http://echo/v1').cluster, cluster('v1'));
    assert.equal(request(config, 'http://echo/v2').cluster, cluster('v2'));
    assert.equal(request(config, 'http://echo/v1').route, `${NS}/split/0`);
    assert.equal(request(config, 'http://echo/other').outcome, 'no-route', 'the route owns the host: no fallback to the Service');
  });

  test('for a client in another namespace, the producer route and a VirtualService are ordered by age', () => {
    const { resources, instances } = world(echoVs + meshRoute('split'));
    const other = compile(resources, instances, { workload: 'client', namespace: 'elsewhere', labels: { app: 'client' } });
    // echo-vs was applied first in the file; parse() stamps no creation time, so the name order decides: echo-vs < split.
    assert.equal(request(other, `http://echo.${NS}/v1`).cluster, cluster('v2'), 'the VirtualService is older');
  });

  test('a consumer route applies in its own namespace only, and overrides the producer route there', () => {
    const consumer = `apiVersion: v1\nkind: Namespace\nmetadata: {name: consumer}\n---\n` + meshRoute('consumer-route', 'consumer', '  - matches: [{path: {type: PathPrefix, value: /}}]\n    backendRefs: [{name: echo, port: 80, namespace: apps}]\n');
    // Its catch-all sends to the Service itself (its own parent: no ReferenceGrant needed).
    const yaml = meshRoute('producer') + consumer;
    const inConsumer = sidecar(yaml, 'consumer');
    assert.equal(request(inConsumer, `http://echo.${NS}/anything`).cluster, cluster('echo', 80));
    assert.equal(request(inConsumer, `http://echo.${NS}/anything`).route, 'consumer/consumer-route/2');
    const inProducer = sidecar(yaml, NS);
    assert.equal(request(inProducer, 'http://echo/anything').outcome, 'no-route', 'the consumer route does not apply to other namespaces');
  });

  test('a parentRef with a port shapes that port only', () => {
    const { resources, instances } = world(
      svc('multi', 80, '}, {name: http-alt, port: 8080').replace('ports: [{name: http, port: 80}, {name: http-alt, port: 8080}]', 'ports: [{name: http, port: 80}, {name: http-alt, port: 8080}]') +
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: port-only, namespace: ${NS}}
spec:
  parentRefs: [{group: "", kind: Service, name: multi, port: 8080}]
  rules: [{backendRefs: [{name: v2, port: 8080}]}]
`,
    );
    const config = compile(resources, instances, { workload: 'client', namespace: NS, labels: { app: 'client' } });
    assert.equal(request(config, 'http://multi:8080/').cluster, cluster('v2'));
    assert.equal(request(config, 'http://multi:80/').cluster, `outbound|80||multi.${NS}.svc.cluster.local`);
  });
});
