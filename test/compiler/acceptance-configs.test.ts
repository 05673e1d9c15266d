/**
 * The acceptance suite's configurations (test/fixtures/istio/acceptance/configs) compile for the
 * `curl` sidecar, and a few of them land where the suite expects.
 */
import { HTTP_FILTERS, type FaultInjection } from '../../src/api/proxy-config.js';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Resource } from '../../src/api/resources/meta.js';
import type { RedirectAction, RouteAction } from '../../src/api/proxy-config.js';
import type { WorkloadInstance } from '../../src/registry/index.js';
import { fixtures } from '../support/reference-corpus.js';
import { compile, parse, request, workload } from './support/mesh.js';

const configs = path.join(fixtures.istio, 'acceptance/configs');
const ECHO = 'echo.default.svc.cluster.local';

function echoMesh(): { resources: Resource[]; instances: Map<string, WorkloadInstance[]> } {
  const resources = parse(readFileSync(path.join(configs, 'echo-workloads.yaml'), 'utf8'), 'echo-workloads.yaml');
  const instances = new Map<string, WorkloadInstance[]>();
  ['v1', 'v2', 'v3'].forEach((v, i) => {
    resources.push(workload(`echo-${v}`, { labels: { app: 'echo', version: v }, ports: [{ name: 'http', containerPort: 8080 }, { name: 'grpc', containerPort: 7070 }] }));
    instances.set(`default/echo-${v}`, [{ name: `echo-${v}-0`, address: '127.0.0.1', ports: { 8080: 21000 + i, 7070: 22000 + i } }]);
  });
  resources.push(workload('curl', { labels: { app: 'curl' }, ports: [] }));
  return { resources, instances };
}

const curl = { workload: 'curl', labels: { app: 'curl' } };

function withConfig(relative: string) {
  const { resources, instances } = echoMesh();
  const extra = parse(readFileSync(path.join(configs, relative), 'utf8'), relative);
  return compile([...resources, ...extra], instances, curl);
}

describe('acceptance configurations', () => {
  const files = [
    // meshconfig-*.yaml are MeshConfig fragments, not resources: the mesh settings carry them.
    ...readdirSync(configs).filter((f) => f.endsWith('.yaml') && f !== 'echo-workloads.yaml' && !f.startsWith('meshconfig-')),
    ...readdirSync(path.join(configs, 'routing-go')).map((f) => `routing-go/${f}`),
  ];
  test('every file compiles for the curl sidecar', () => {
    for (const f of files) {
      const config = withConfig(f);
      assert.ok(config.listeners.length > 0, f);
    }
  });

  test('rewrite: /v1 and /v1/products rewrite, /v1x falls to the default rule', () => {
    const config = withConfig('vs-echo-rewrite-v1.yaml');
    const root = request(config, 'http://echo/v1');
    assert.equal(root.route, 'default/echo/0');
    assert.equal(root.cluster, `outbound|80|v1|${ECHO}`);
    const routes = config.routeConfigs.find((r) => r.name === '80')!.virtualHosts.find((h) => h.name === `${ECHO}:80`)!.routes;
    assert.deepEqual((routes[0].action as RouteAction).rewrite, { pathPrefix: '/' });
    assert.equal(request(config, 'http://echo/v1/products/42?color=red').route, 'default/echo/1');
    assert.equal(request(config, 'http://echo/v1x').route, 'default/echo/2');
  });

  test('redirect prefixRewrite', () => {
    const config = withConfig('routing-go/redirect-prefix-rewrite.yaml');
    const r = request(config, 'http://echo/foo/bar');
    assert.equal(r.outcome, 'redirect');
    const route = config.routeConfigs.find((c) => c.name === '80')!.virtualHosts.find((h) => h.name === `${ECHO}:80`)!.routes[0];
    assert.equal((route.action as RedirectAction).prefixRewrite, '/new/');
    assert.equal(request(config, 'http://echo/new/bar').cluster, `outbound|80||${ECHO}`);
  });

  test('the grpc port of a two-port service has its own route table and an HTTP/2 cluster', () => {
    const config = withConfig('dr-echo-lb-round-robin.yaml');
    assert.equal(request(config, 'http://echo:7070/pkg.Svc/Method').cluster, `outbound|7070||${ECHO}`);
    assert.equal(config.clusters.find((c) => c.name === `outbound|7070||${ECHO}`)?.protocol, 'http2');
    assert.equal(config.clusters.find((c) => c.name === `outbound|80||${ECHO}`)?.lb.policy, 'ROUND_ROBIN');
  });

  test('withoutHeaders (Istio routing.go): a missing header is an empty value; regex "*" means present', () => {
    const aborted = (file: string, headers?: Record<string, string>) => request(withConfig(`routing-go/${file}`), 'http://echo/foo', { headers }).route === 'default/vs/0';
    // exact jason: jason -> 200, not-jason -> 403, no header -> 403
    assert.deepEqual([aborted('without-headers.yaml', { 'end-user': 'jason' }), aborted('without-headers.yaml', { 'end-user': 'bob' }), aborted('without-headers.yaml')], [false, true, true]);
    // regex "*" (present): jason -> 200, empty value -> 200, no header -> 403
    const star = 'without-headers-regex-convert-to-present-match.yaml';
    assert.deepEqual([aborted(star, { 'end-user': 'jason' }), aborted(star, { 'end-user': '' }), aborted(star)], [false, false, true]);
    // regex ".*": all three -> 200
    const any = 'without-headers-regex-match-any-string.yaml';
    assert.deepEqual([aborted(any, { 'end-user': 'jason' }), aborted(any, { 'end-user': '' }), aborted(any)], [false, false, false]);
  });

  test('weird header names: no header -> no route (404 NR), header -> route', () => {
    const config = withConfig('routing-go/weird-header-matches.yaml');
    assert.equal(request(config, 'http://echo/').outcome, 'no-route');
    assert.equal(request(config, 'http://echo/', { headers: { "a!#$%&'*+-.^_`|~z": 'why' } }).outcome, 'route');
  });

  test('pseudo-header :method match; a regex ".*" catch-all shadows later rules', () => {
    const pseudo = withConfig('routing-go/pseudo-header-matches.yaml');
    assert.equal(request(pseudo, 'http://echo/', { method: 'POST' }).outcome, 'no-route');
    assert.equal(request(pseudo, 'http://echo/', { method: 'GET' }).outcome, 'route');
    const catchAll = withConfig('routing-go/catch-all-route-short-circuit-the-other-routes.yaml');
    const r = request(catchAll, 'http://echo/anything');
    assert.equal(r.route, 'default/default/0');
    assert.equal((r.detail?.perFilterConfig?.[HTTP_FILTERS.fault] as FaultInjection | undefined)?.abort?.httpStatus, 418);
  });

  test('REGISTRY_ONLY from the mesh config file', () => {
    const { resources, instances } = echoMesh();
    const text = readFileSync(path.join(configs, 'meshconfig-registry-only.yaml'), 'utf8');
    assert.match(text, /mode: REGISTRY_ONLY/);
    const config = compile(resources, instances, { ...curl, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    assert.equal(request(config, 'http://httpbin.org/headers').cluster, 'BlackHoleCluster');
  });
});
