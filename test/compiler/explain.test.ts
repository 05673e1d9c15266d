/**
 * explainRequest on hand-built configs (the matching rules themselves are tested in
 * test/semantics), and the purity of compileProxyConfig.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { explainRequest } from '../../src/compiler/index.js';
import { bookinfo, compile, parse, request, sample } from './support/mesh.js';

describe('explainRequest on a hand-built config', () => {
  const config: ProxyConfig = {
    version: 'x',
    node: { id: 'sidecar~a.default', mode: 'sidecar', workload: 'a', namespace: 'default', labels: {} },
    listeners: [{ name: 'virtualOutbound', address: { host: '127.0.0.1', port: 15001 }, direction: 'outbound', protocol: 'http', http: { routeConfigByPort: true, fallbackRouteConfigName: 'allow_any', acceptAbsoluteUri: true } }],
    routeConfigs: [
      {
        name: '80',
        virtualHosts: [
          {
            name: 'web',
            domains: ['web', 'web:80'],
            routes: [
              { name: 'm', match: { method: { exact: 'POST' }, headers: [{ name: 'x-debug', invert: true }] }, action: { kind: 'direct', status: 403 } },
              { name: 'all', match: { path: { prefix: '/' } }, action: { kind: 'route', destinations: [{ cluster: 'outbound|80||web', weight: 1 }, { cluster: 'outbound|80|b|web', weight: 3 }] } },
            ],
          },
        ],
      },
      { name: 'allow_any', virtualHosts: [{ name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: {}, action: { kind: 'route', destinations: [{ cluster: 'PassthroughCluster', weight: 100 }] } }] }] },
    ],
    clusters: [{ name: 'outbound|80||web', kind: 'eds', protocol: 'http1', connectTimeoutMs: 1, lb: { policy: 'ROUND_ROBIN' } }],
    endpoints: [],
  };

  test('route table by destination port, fallback for other ports', () => {
    const r = explainRequest(config, { port: 80, authority: 'web', path: '/x' });
    assert.equal(r.routeConfig, '80');
    assert.equal(r.cluster, 'outbound|80|b|web'); // the heaviest destination
    assert.deepEqual(r.destinations?.map((d) => d.exists), [true, false]);
    assert.equal(explainRequest(config, { port: 8080, authority: 'web:8080', path: '/' }).cluster, 'PassthroughCluster');
    // Port 80 with a host nobody claims: no virtual host in that table.
    assert.equal(explainRequest(config, { port: 80, authority: 'other', path: '/' }).outcome, 'no-virtual-host');
  });

  test('an inverted header match holds when the header is absent', () => {
    assert.equal(explainRequest(config, { port: 80, authority: 'web', path: '/', method: 'POST' }).status, 403);
    assert.equal(explainRequest(config, { port: 80, authority: 'web', path: '/', method: 'POST', headers: { 'X-Debug': '1' } }).route, 'all');
  });
});

describe('compileProxyConfig', () => {
  test('is pure: the same input gives the same, frozen output', () => {
    const { resources, instances } = bookinfo();
    const all = [...resources, ...sample('bookinfo/networking/destination-rule-all.yaml'), ...sample('bookinfo/networking/virtual-service-reviews-90-10.yaml')];
    const a = compile(all, instances);
    const b = compile(all, instances);
    assert.deepEqual(a, b);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.clusters[0]));
    assert.equal(a.version, '1');
    assert.equal(a.telemetry?.tracingSamplingPercentage, 1);
    // JSON round trip: plain data only.
    assert.deepEqual(JSON.parse(JSON.stringify(a)), a);
  });

  test('gateways merge every VirtualService bound to them for a host, in creation order', () => {
    const { resources, instances } = bookinfo();
    const config = compile(
      [
        ...resources,
        ...parse(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default}
spec:
  hosts: [bookinfo.example.com]
  gateways: [gw]
  http: [{match: [{uri: {prefix: /reviews}}], route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default}
spec:
  hosts: [bookinfo.example.com]
  gateways: [default/gw]
  http: [{route: [{destination: {host: productpage, port: {number: 9080}}}]}]
`),
      ],
      instances,
      { mode: 'router', workload: 'ingress', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: {} },
    );
    assert.equal(request(config, 'http://bookinfo.example.com/reviews/1').cluster, 'outbound|9080||reviews.default.svc.cluster.local');
    assert.equal(request(config, 'http://bookinfo.example.com:80/').cluster, 'outbound|9080||productpage.default.svc.cluster.local');
    assert.equal(request(config, 'http://other.example.com/').outcome, 'no-virtual-host');
  });
});
