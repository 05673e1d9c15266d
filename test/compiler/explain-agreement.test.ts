/**
 * explainRequest and the proxy agree: Istio YAML is compiled for a sidecar, the compiled
 * config is loaded into a real proxy (each route answering with its own name, so no upstream
 * is involved), and every request of a table is both explained and sent through the proxy's
 * capture listener. The two must name the same route, or both none.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { ProxyConfig, Route } from '../../src/api/proxy-config.js';
import { explainRequest } from '../../src/compiler/index.js';
import { startProxy, type Harness } from '../proxy/support/harness.js';
import { compile, parse } from './support/mesh.js';
import type { WorkloadInstance } from '../../src/registry/index.js';

const SERVICES = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
`;

const ROUTING = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}, {name: v3, labels: {version: v3}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: api-regex
    match: [{uri: {regex: "/api/v[0-9]+"}, ignoreUriCase: true}]
    route: [{destination: {host: reviews, subset: v1}}]
  - name: admin-prefix
    match: [{uri: {prefix: /Admin}, ignoreUriCase: true}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: jason
    match: [{headers: {end-user: {exact: jason}}, queryParams: {debug: {regex: "[01]"}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: not-jason
    match: [{withoutHeaders: {end-user: {prefix: jas}}, method: {exact: DELETE}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: health
    match: [{uri: {exact: /health}}]
    route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  http:
  - name: any
    route: [{destination: {host: ratings}}]
`;

interface Probe {
  url: string;
  method?: string;
  headers?: Record<string, string>;
}

const PROBES: Probe[] = [
  // Istio's ignoreUriCase holds for exact and prefix, not for a regex (Envoy ignores
  // case_sensitive for safe_regex).
  { url: 'http://reviews:9080/api/v1' },
  { url: 'http://reviews:9080/API/v1' },
  { url: 'http://reviews:9080/api/v12' },
  { url: 'http://reviews:9080/api/v1/x' },
  { url: 'http://reviews:9080/admin/users' },
  { url: 'http://reviews:9080/ADMIN' },
  { url: 'http://reviews:9080/health' },
  { url: 'http://reviews:9080/Health' },
  { url: 'http://reviews:9080/x?debug=1', headers: { 'end-user': 'jason' } },
  { url: 'http://reviews:9080/x?debug=2', headers: { 'end-user': 'jason' } },
  { url: 'http://reviews:9080/x?debug=0', headers: { 'end-user': 'Jason' } },
  { url: 'http://reviews:9080/x', method: 'DELETE' },
  { url: 'http://reviews:9080/x', method: 'DELETE', headers: { 'end-user': 'jasmine' } },
  { url: 'http://reviews:9080/x', method: 'DELETE', headers: { 'end-user': 'bob' } },
  { url: 'http://reviews.default:9080/health' },
  { url: 'http://reviews.default.svc.cluster.local:9080/health' },
  { url: 'http://ratings:9080/anything' },
  { url: 'http://ratings.default.svc:9080/' },
];

/** Every route answers 200 with its own name: the proxy's choice of route, without an upstream. */
function answeringWithRouteNames(config: ProxyConfig): ProxyConfig {
  const named = (r: Route): Route => ({ name: r.name, match: r.match, action: { kind: 'direct', status: 200, body: r.name } });
  return {
    ...config,
    listeners: config.listeners.filter((l) => l.direction === 'outbound').map((l) => ({ ...l, address: { host: '127.0.0.1', port: 0 } })),
    routeConfigs: config.routeConfigs.map((rc) => ({ ...rc, virtualHosts: rc.virtualHosts.map((vh) => ({ ...vh, routes: vh.routes.map(named) })) })),
  };
}

/** Sends a request in absolute form through the capture listener, as an app's HTTP_PROXY client does. */
function viaProxy(port: number, probe: Probe): Promise<{ status: number; body: string; flags?: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(probe.url);
    const req = http.request({ host: '127.0.0.1', port, method: probe.method ?? 'GET', path: probe.url, headers: { host: u.host, ...probe.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, flags: res.headers['x-sinew-response-flags'] as string | undefined }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('explainRequest and the proxy route alike (compiled from Istio YAML)', () => {
  let compiled: ProxyConfig;
  let h: Harness;
  before(async () => {
    const instances = new Map<string, WorkloadInstance[]>();
    compiled = compile([...parse(SERVICES), ...parse(ROUTING)], instances);
    h = await startProxy(answeringWithRouteNames(compiled));
  });
  after(async () => {
    await h?.close();
  });

  for (const probe of PROBES) {
    const label = `${probe.method ?? 'GET'} ${probe.url} ${JSON.stringify(probe.headers ?? {})}`;
    test(label, async () => {
      const u = new URL(probe.url);
      const explained = explainRequest(compiled, {
        port: Number(u.port),
        authority: u.host,
        path: `${u.pathname}${u.search}`,
        method: probe.method,
        headers: probe.headers,
      });
      const served = await viaProxy(h.port(), probe);
      if (explained.outcome === 'route') {
        assert.equal(served.status, 200, `the proxy found no route, explain found ${explained.route}`);
        assert.equal(served.body.trim(), explained.route);
      } else {
        assert.equal(explained.outcome, 'no-route', JSON.stringify(explained));
        assert.equal(served.status, 404, `the proxy took route ${served.body.trim()}`);
        assert.equal(served.flags, 'NR');
      }
    });
  }

  test('regression: a regex uri with ignoreUriCase matches case-sensitively in explain, as in the proxy', () => {
    const at = (path: string) => explainRequest(compiled, { port: 9080, authority: 'reviews:9080', path }).route;
    assert.equal(at('/api/v1'), 'default/reviews/0');
    assert.notEqual(at('/API/v1'), 'default/reviews/0');
    assert.equal(at('/ADMIN/x'), 'default/reviews/1', 'ignoreUriCase still holds for a prefix');
  });
});
