/**
 * Simulation tests in Istio's style (pilot/pkg/simulation): compile the configuration for
 * one proxy from YAML, send a synthetic request through it, and assert where it lands.
 * Bookinfo's Services and Istio's own bookinfo networking samples are the input.
 */
import { HTTP_FILTERS, type FaultInjection } from '../../src/api/proxy-config.js';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { explainRequest } from '../../src/compiler/index.js';
import { fixtures } from '../support/reference-corpus.js';
import { bookinfo, compile, parse, request, sample } from './support/mesh.js';

const REVIEWS = 'reviews.default.svc.cluster.local';
const v = (subset: string, host = REVIEWS, port = 9080) => `outbound|${port}|${subset}|${host}`;

describe('sidecar outbound, Bookinfo', () => {
  test('no VirtualService: the default route to the service ("you do not need any configuration")', () => {
    const { resources, instances } = bookinfo();
    const config = compile(resources, instances);
    const r = request(config, 'http://reviews:9080/reviews/0');
    assert.equal(r.outcome, 'route');
    assert.equal(r.cluster, 'outbound|9080||reviews.default.svc.cluster.local');
    assert.equal(r.destinations?.[0].exists, true);
    assert.equal(r.listener, 'virtualOutbound');
    assert.equal(r.routeConfig, '9080');
    // The endpoints of that cluster are the three reviews replicas, at their public ports.
    const eps = config.endpoints.find((e) => e.clusterName === r.cluster)!.endpoints;
    assert.equal(eps.length, 3);
    assert.deepEqual(eps.map((e) => e.identity), Array(3).fill('spiffe://cluster.local/ns/default/sa/bookinfo-reviews'));
  });

  test('every Istio host form reaches the service from its own namespace', () => {
    const { resources, instances } = bookinfo();
    const config = compile(resources, instances);
    for (const host of ['reviews', 'reviews:9080', 'reviews.default', 'reviews.default:9080', 'reviews.default.svc:9080', `${REVIEWS}`, `${REVIEWS}:9080`]) {
      const r = explainHost(config, host);
      assert.equal(r.cluster, v(''), host);
    }
  });

  test('virtual-service-all-v1 with destination-rule-all sends reviews to v1', () => {
    const { resources, instances } = bookinfo();
    const config = compile([...resources, ...sample('bookinfo/networking/destination-rule-all.yaml'), ...sample('bookinfo/networking/virtual-service-all-v1.yaml')], instances);
    const r = request(config, 'http://reviews:9080/reviews/0');
    assert.equal(r.cluster, v('v1'));
    assert.equal(r.destinations?.[0].exists, true);
    assert.equal(r.route, 'default/reviews/0');
    // The subset cluster holds only the v1 replica.
    const eps = config.endpoints.find((e) => e.clusterName === v('v1'))!.endpoints;
    assert.deepEqual(eps.map((e) => e.labels.version), ['v1']);
    assert.equal(request(config, 'http://ratings:9080/ratings/0').cluster, v('v1', 'ratings.default.svc.cluster.local'));
  });

  test('reviews-test-v2: end-user jason goes to v2, everyone else to v1', () => {
    const { resources, instances } = bookinfo();
    const config = compile([...resources, ...sample('bookinfo/networking/destination-rule-all.yaml'), ...sample('bookinfo/networking/virtual-service-reviews-test-v2.yaml')], instances);
    assert.equal(request(config, 'http://reviews:9080/reviews/0', { headers: { 'end-user': 'jason' } }).cluster, v('v2'));
    assert.equal(request(config, 'http://reviews:9080/reviews/0', { headers: { 'end-user': 'json' } }).cluster, v('v1'));
    assert.equal(request(config, 'http://reviews:9080/reviews/0').cluster, v('v1'));
  });

  test('reviews-50-v3 splits 50/50 between v1 and v3', () => {
    const { resources, instances } = bookinfo();
    const config = compile([...resources, ...sample('bookinfo/networking/destination-rule-all.yaml'), ...sample('bookinfo/networking/virtual-service-reviews-50-v3.yaml')], instances);
    const r = request(config, 'http://reviews:9080/');
    assert.deepEqual(
      r.destinations?.map((d) => [d.cluster, d.weight]),
      [
        [v('v1'), 50],
        [v('v3'), 50],
      ],
    );
  });

  test('a subset used before its DestinationRule exists names a cluster the proxy does not have', () => {
    const { resources, instances } = bookinfo();
    const config = compile([...resources, ...sample('bookinfo/networking/virtual-service-all-v1.yaml')], instances);
    const r = request(config, 'http://reviews:9080/');
    assert.equal(r.cluster, v('v1'));
    assert.equal(r.destinations?.[0].exists, false);
  });
});

function explainHost(config: ReturnType<typeof compile>, host: string) {
  return request(config, `http://${host.includes(':') ? host : `${host}:9080`}/`);
}

describe('gateway', () => {
  const gatewayNode = { mode: 'router' as const, workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 8080: { host: '127.0.0.1', port: 18080 } } } };

  test('bookinfo-gateway routes /productpage to productpage; /foo gets no route', () => {
    const { resources, instances } = bookinfo();
    const config = compile([...resources, ...sample('bookinfo/networking/bookinfo-gateway.yaml')], instances, gatewayNode);
    assert.equal(config.listeners.length, 1);
    assert.equal(config.listeners[0].address.port, 18080);
    const ok = request(config, 'http://localhost:8080/productpage');
    assert.equal(ok.outcome, 'route');
    assert.equal(ok.routeConfig, 'http.8080');
    assert.equal(ok.cluster, 'outbound|9080||productpage.default.svc.cluster.local');
    assert.equal(request(config, 'http://localhost:8080/static/x.css').cluster, 'outbound|9080||productpage.default.svc.cluster.local');
    assert.equal(request(config, 'http://localhost:8080/foo').outcome, 'no-route');
  });

  test('a gateway proxy whose labels the selector does not match gets no listener', () => {
    const { resources, instances } = bookinfo();
    const config = compile([...resources, ...sample('bookinfo/networking/bookinfo-gateway.yaml')], instances, { ...gatewayNode, labels: { istio: 'egressgateway' } });
    assert.equal(config.listeners.length, 0);
  });

  test('server hosts, ns/host binding and httpsRedirect', () => {
    const { resources, instances } = bookinfo();
    const config = compile(
      [
        ...resources,
        ...parse(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["default/bookinfo.example.com"]
    tls: {httpsRedirect: true}
  - port: {number: 81, name: http2, protocol: HTTP}
    hosts: ["other/*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bi, namespace: default}
spec:
  hosts: ["*.example.com"]
  gateways: ["istio-system/gw"]
  http:
  - route:
    - destination: {host: productpage}
`),
      ],
      instances,
      { ...gatewayNode, ports: {} },
    );
    const r80 = request(config, 'http://bookinfo.example.com/productpage');
    assert.equal(r80.outcome, 'redirect');
    assert.equal(r80.requireTls, true);
    assert.equal(request(config, 'https://bookinfo.example.com:80/x', { listener: '0.0.0.0_80' }).cluster, 'outbound|9080||productpage.default.svc.cluster.local');
    // Port 81 only admits VirtualServices from namespace `other`.
    assert.equal(request(config, 'http://bookinfo.example.com:81/').outcome, 'no-route');
  });

  test('a server that terminates TLS is left out (no credentials yet); the gateway\'s other ports serve', () => {
    const { resources, instances } = bookinfo();
    const config = compile(
      [
        ...resources,
        ...parse(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: bookinfo-credential}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bi, namespace: default}
spec:
  hosts: ["*"]
  gateways: ["istio-system/gw"]
  http:
  - route:
    - destination: {host: productpage}
`),
      ],
      instances,
      { ...gatewayNode, ports: {} },
    );
    assert.deepEqual(config.listeners.map((l) => l.name), ['0.0.0.0_80']);
    assert.ok(config.listeners.every((l) => l.tls === undefined), 'no listener names a secret nobody pushes');
    assert.equal(request(config, 'http://bookinfo.example.com/productpage').cluster, 'outbound|9080||productpage.default.svc.cluster.local');
  });

  test('TCP server with VirtualService tcp routes', () => {
    const config = compile(
      parse(`
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: default}
spec:
  selector: {app: tcp-echo}
  ports: [{name: tcp, port: 9000}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tcp-gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [tcp-gw]
  tcp:
  - match: [{port: 31400}]
    route:
    - destination: {host: tcp-echo, port: {number: 9000}, subset: v1}
      weight: 80
    - destination: {host: tcp-echo, port: {number: 9000}, subset: v2}
      weight: 20
`),
      new Map(),
      { ...gatewayNode, ports: {} },
    );
    const l = config.listeners[0];
    assert.equal(l.protocol, 'tcp');
    assert.deepEqual(l.tcp?.routes[0].destinations, [
      { cluster: 'outbound|9000|v1|tcp-echo.default.svc.cluster.local', weight: 80 },
      { cluster: 'outbound|9000|v2|tcp-echo.default.svc.cluster.local', weight: 20 },
    ]);
  });
});

describe('which proxies get a rule', () => {
  const ratingsByCaller = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - match:
    - sourceLabels: {app: reviews, version: v2}
    fault:
      abort: {httpStatus: 500}
    route:
    - destination: {host: ratings, subset: v1}
  - route:
    - destination: {host: ratings, subset: v1}
`;

  test('sourceLabels: the rule is only in the matching proxy\'s config', () => {
    const { resources, instances } = bookinfo();
    const all = [...resources, ...sample('bookinfo/networking/destination-rule-all.yaml'), ...parse(ratingsByCaller)];
    const v2 = compile(all, instances, { workload: 'reviews-v2', labels: { app: 'reviews', version: 'v2' } });
    const v3 = compile(all, instances, { workload: 'reviews-v3', labels: { app: 'reviews', version: 'v3' } });
    const r2 = request(v2, 'http://ratings:9080/ratings/0');
    const r3 = request(v3, 'http://ratings:9080/ratings/0');
    assert.equal(r2.route, 'default/ratings/0');
    assert.equal(r3.route, 'default/ratings/1');
    const route2 = v2.routeConfigs.find((c) => c.name === '9080')!.virtualHosts.find((h) => h.name.startsWith('ratings'))!.routes;
    assert.equal((route2[0].perFilterConfig?.[HTTP_FILTERS.fault] as FaultInjection | undefined)?.abort?.httpStatus, 500);
    const route3 = v3.routeConfigs.find((c) => c.name === '9080')!.virtualHosts.find((h) => h.name.startsWith('ratings'))!.routes;
    assert.equal(route3.some((r) => r.perFilterConfig?.[HTTP_FILTERS.fault] !== undefined), false);
  });

  test('exportTo "." hides a VirtualService from other namespaces', () => {
    const { resources, instances } = bookinfo();
    const vs = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  exportTo: ["."]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
`);
    const all = [...resources, ...sample('bookinfo/networking/destination-rule-all.yaml'), ...vs];
    const inDefault = compile(all, instances);
    const inFoo = compile(all, instances, { workload: 'curl', namespace: 'foo', labels: { app: 'curl' } });
    assert.equal(request(inDefault, 'http://reviews:9080/').cluster, v('v2'));
    assert.equal(request(inFoo, 'http://reviews.default:9080/').cluster, v(''));
    // From another namespace the bare short name is not a reviews host (Istio's domains).
    assert.equal(request(inFoo, 'http://reviews:9080/').cluster, 'PassthroughCluster');
  });

  test('gateways: a VirtualService bound only to a gateway does not reach sidecars', () => {
    const { resources, instances } = bookinfo();
    const config = compile([...resources, ...sample('bookinfo/networking/bookinfo-gateway.yaml')], instances);
    assert.equal(request(config, 'http://productpage:9080/foo').cluster, 'outbound|9080||productpage.default.svc.cluster.local');
  });
});

describe('outbound traffic policy and Sidecar scoping', () => {
  test('ALLOW_ANY passes unknown hosts through; REGISTRY_ONLY sends them to the BlackHoleCluster (502)', () => {
    const { resources, instances } = bookinfo();
    const allow = compile(resources, instances);
    const r1 = request(allow, 'http://httpbin.org/get');
    assert.equal(r1.cluster, 'PassthroughCluster');
    assert.equal(allow.clusters.find((c) => c.name === 'PassthroughCluster')?.kind, 'originalDst');
    const block = compile(resources, instances, { mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    const r2 = request(block, 'http://httpbin.org/get');
    assert.equal(r2.cluster, 'BlackHoleCluster');
    assert.equal(block.clusters.find((c) => c.name === 'BlackHoleCluster')?.kind, 'blackhole');
    // An unknown host on a known service port gets the same fallback.
    assert.equal(request(block, 'http://unknown:9080/').cluster, 'BlackHoleCluster');
  });

  test('Sidecar egress hosts limit the services a proxy sees, and its outboundTrafficPolicy overrides the mesh', () => {
    const { resources, instances } = bookinfo();
    const extra = parse(`
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`);
    const config = compile([...resources, ...extra], instances);
    assert.equal(request(config, 'http://reviews:9080/').cluster, v(''));
    assert.equal(request(config, 'http://httpbin.foo:8000/get').cluster, 'BlackHoleCluster');
    assert.equal(config.clusters.some((c) => c.name.endsWith('httpbin.foo.svc.cluster.local')), false);
    // A proxy in foo has no Sidecar: it sees everything.
    const inFoo = compile([...resources, ...extra], instances, { workload: 'curl', namespace: 'foo', labels: { app: 'curl' } });
    assert.equal(request(inFoo, 'http://httpbin:8000/get').cluster, 'outbound|8000||httpbin.foo.svc.cluster.local');
  });
});

describe('TCP traffic shifting (istio.io task, tcp-echo samples)', () => {
  const gateway = { mode: 'router' as const, workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 31400: { host: '127.0.0.1', port: 31400 } } } };
  const services = sample('tcp-echo/tcp-echo-services.yaml').filter((r) => r.kind === 'Service');

  test('all-v1, then 80/20 v1/v2 at the ingress gateway', () => {
    const v1 = compile([...services, ...sample('tcp-echo/tcp-echo-all-v1.yaml')], new Map(), gateway);
    const r1 = request(v1, 'tcp://x:31400');
    assert.equal(r1.outcome, 'tcp');
    assert.deepEqual(r1.destinations?.map((d) => [d.cluster, d.weight, d.exists]), [['outbound|9000|v1|tcp-echo.default.svc.cluster.local', 100, true]]);
    const split = compile([...services, ...sample('tcp-echo/tcp-echo-all-v1.yaml').filter((r) => r.kind !== 'VirtualService'), ...sample('tcp-echo/tcp-echo-20-v2.yaml')], new Map(), gateway);
    assert.deepEqual(request(split, 'tcp://x:31400').destinations?.map((d) => [d.cluster, d.weight]), [
      ['outbound|9000|v1|tcp-echo.default.svc.cluster.local', 80],
      ['outbound|9000|v2|tcp-echo.default.svc.cluster.local', 20],
    ]);
    assert.equal(split.clusters.find((c) => c.name === 'outbound|9000|v1|tcp-echo.default.svc.cluster.local')?.protocol, 'tcp');
  });
});

describe('opaque (TCP/TLS) service ports through the capture listener', () => {
  test('a CONNECT to a TLS ServiceEntry host reaches its cluster under REGISTRY_ONLY; other hosts do not', () => {
    const config = compile(
      parse(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: google, namespace: default}
spec:
  hosts: [www.google.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
`),
      new Map(),
      { mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } },
    );
    const connect = (authority: string) => explainRequest(config, { port: 443, authority, path: '', method: 'CONNECT' });
    assert.equal(connect('www.google.com:443').cluster, 'outbound|443||www.google.com');
    assert.equal(connect('www.bing.com:443').cluster, 'BlackHoleCluster');
  });

  test('mesh tcp routes of a VirtualService apply to sidecars', () => {
    const config = compile(
      [
        ...sample('tcp-echo/tcp-echo-services.yaml').filter((r) => r.kind === 'Service'),
        ...parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: [tcp-echo]
  tcp:
  - route:
    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v1}, weight: 80}
    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v2}, weight: 20}
`),
      ],
      new Map(),
    );
    const r = explainRequest(config, { port: 9000, authority: 'tcp-echo:9000', path: '', method: 'CONNECT' });
    assert.deepEqual(r.destinations?.map((d) => d.weight), [80, 20]);
    assert.equal(r.route, 'default/tcp-echo/tcp/0');
  });
});

describe('ingress (istio.io ingress-control task)', () => {
  const dir = path.join(fixtures.istio, 'data/istio.io/traffic-management/ingress/ingress-control');
  const snippet = (f: string) => parse(readFileSync(path.join(dir, f), 'utf8'), f);
  const httpbin = sample('httpbin/httpbin.yaml').filter((r) => r.kind === 'Service');
  const ingress = { mode: 'router' as const, workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 80: 8080 } } };

  test('only the exposed paths of httpbin.example.com reach httpbin', () => {
    const config = compile([...httpbin, ...snippet('snip_configuring_ingress_using_a_gateway_1.yaml'), ...snippet('snip_configuring_ingress_using_a_gateway_2.yaml')], new Map(), ingress);
    assert.deepEqual(config.listeners[0].address, { host: '127.0.0.1', port: 8080 });
    const get = (p: string, host = 'httpbin.example.com') => explainRequest(config, { port: 80, authority: host, path: p });
    assert.equal(get('/status/200').cluster, 'outbound|8000||httpbin.default.svc.cluster.local');
    assert.equal(get('/delay/1').cluster, 'outbound|8000||httpbin.default.svc.cluster.local');
    assert.equal(get('/headers').outcome, 'no-route');
    assert.equal(get('/status/200', 'other.example.com').outcome, 'no-virtual-host');
    assert.equal(get('/status/200', 'httpbin.example.com:8080').outcome, 'route');
  });

  test('wildcard host: any Host reaches httpbin', () => {
    const config = compile([...httpbin, ...snippet('snip_accessing_ingress_services_using_a_browser_1.yaml')], new Map(), ingress);
    assert.equal(explainRequest(config, { port: 80, authority: '127.0.0.1:8080', path: '/headers' }).cluster, 'outbound|8000||httpbin.default.svc.cluster.local');
  });
});
