/**
 * VirtualService HTTP semantics: matches, actions, Istio's defaults, delegation, and the
 * Sinew sticky-canary annotation.
 */
import { HTTP_FILTERS, type CorsPolicy } from '../../src/api/proxy-config.js';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig, Route, RouteAction } from '../../src/api/proxy-config.js';
import { bookinfo, compile, parse, request, workload } from './support/mesh.js';

const REVIEWS = 'reviews.default.svc.cluster.local';
const { resources, instances } = bookinfo();
const rules = parse(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`);

function withVs(yaml: string, proxy = {}): ProxyConfig {
  return compile([...resources, ...rules, ...parse(yaml)], instances, proxy);
}

function reviewsRoutes(config: ProxyConfig, port = '9080'): Route[] {
  return config.routeConfigs.find((r) => r.name === port)!.virtualHosts.find((h) => h.name === `${REVIEWS}:9080`)!.routes;
}

function routeAction(r: Route): RouteAction {
  assert.equal(r.action.kind, 'route');
  return r.action as RouteAction;
}

describe('matching', () => {
  const config = withVs(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers: {x-canary: {}}
    - uri: {prefix: /v3}
      ignoreUriCase: true
    route: [{destination: {host: reviews, subset: v3}}]
  - match:
    - withoutHeaders: {end-user: {exact: jason}}
      queryParams: {debug: {exact: "1"}}
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`);

  test('several match blocks become several routes with the same action (OR)', () => {
    const routes = reviewsRoutes(config);
    assert.deepEqual(routes.map((r) => r.name), ['default/reviews/0.0', 'default/reviews/0.1', 'default/reviews/1', 'default/reviews/2']);
    assert.deepEqual(routes[0].match.headers, [{ name: 'x-canary' }]);
    assert.equal(request(config, 'http://reviews:9080/', { headers: { 'x-canary': '' } }).cluster, `outbound|9080|v3|${REVIEWS}`);
    assert.equal(request(config, 'http://reviews:9080/V3/x').cluster, `outbound|9080|v3|${REVIEWS}`);
  });

  test('withoutHeaders inverts; query parameters must match', () => {
    assert.equal(request(config, 'http://reviews:9080/?debug=1').cluster, `outbound|9080|v2|${REVIEWS}`);
    assert.equal(request(config, 'http://reviews:9080/?debug=1', { headers: { 'end-user': 'jason' } }).cluster, `outbound|9080|v1|${REVIEWS}`);
    assert.equal(request(config, 'http://reviews:9080/?debug=2').cluster, `outbound|9080|v1|${REVIEWS}`);
  });

  test('a VirtualService without a catch-all leaves unmatched requests without a route (404 NR)', () => {
    const c = withVs(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {regex: "/reviews/[0-9]+"}}]
    route: [{destination: {host: reviews, subset: v1}}]
`);
    assert.equal(request(c, 'http://reviews:9080/reviews/12').cluster, `outbound|9080|v1|${REVIEWS}`);
    // RE2 regexes match the whole path, as Envoy's safe_regex does.
    assert.equal(request(c, 'http://reviews:9080/reviews/12/x').outcome, 'no-route');
  });
});

describe('actions and Istio defaults', () => {
  test('no retries field: 2 attempts on Istio\'s conditions, previous hosts avoided; no timeout', () => {
    const c = withVs(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
`);
    const a = routeAction(reviewsRoutes(c)[0]);
    assert.deepEqual(a.retry, {
      attempts: 2,
      retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
      backoffBaseMs: 25,
      avoidPreviousHosts: true,
    });
    assert.equal(a.timeoutMs, undefined);
    assert.deepEqual(a.destinations, [{ cluster: `outbound|9080|v1|${REVIEWS}`, weight: 100 }]);
  });

  test('retries, timeout, attempts 0, numeric retryOn', () => {
    const c = withVs(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /a}}]
    timeout: 0.5s
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,503"}
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 0}
`);
    const [a, b] = reviewsRoutes(c).map(routeAction);
    assert.equal(a.timeoutMs, 500);
    assert.deepEqual(a.retry, { attempts: 3, perTryTimeoutMs: 2000, retryOn: ['5xx', 'retriable-status-codes'], retriableStatusCodes: [503], backoffBaseMs: 25, avoidPreviousHosts: true });
    assert.equal(b.retry, undefined);
    // Destination port defaults to the service's only port.
    assert.equal(a.destinations[0].cluster, `outbound|9080||${REVIEWS}`);
  });

  test('redirect, direct response, rewrite, headers, fault, mirror, CORS', () => {
    const c = withVs(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: other}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match: [{uri: {prefix: /api}}]
    rewrite: {uri: /v2/api, authority: reviews-internal}
    headers:
      request: {set: {x-a: "1"}, remove: [x-b]}
      response: {add: {x-c: "2"}}
    fault:
      delay: {fixedDelay: 7s}
      abort: {httpStatus: 500, percentage: {value: 10}}
    mirror: {host: reviews, subset: v3}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}]
      allowMethods: [GET]
      maxAge: 24h
    route:
    - destination: {host: reviews, subset: v1}
      headers: {request: {set: {x-version: v1}}}
`);
    const routes = reviewsRoutes(c);
    assert.deepEqual(routes[0].action, { kind: 'redirect', responseCode: 301, host: 'other', path: '/new' });
    assert.deepEqual(routes[1].action, { kind: 'direct', status: 418, body: 'short and stout' });
    const r = routes[2];
    const a = routeAction(r);
    assert.deepEqual(a.rewrite, { pathPrefix: '/v2/api', authority: 'reviews-internal' });
    assert.deepEqual(r.requestHeaders, { set: { 'x-a': '1' }, remove: ['x-b'] });
    assert.deepEqual(r.responseHeaders, { add: { 'x-c': '2' } });
    assert.deepEqual(r.perFilterConfig?.[HTTP_FILTERS.fault], { delay: { fixedDelayMs: 7000, percentage: 100 }, abort: { httpStatus: 500, percentage: 10 } });
    assert.deepEqual(a.mirrors, [{ cluster: `outbound|9080|v3|${REVIEWS}`, percentage: 100 }]);
    assert.deepEqual(a.destinations[0].requestHeaders, { set: { 'x-version': 'v1' } });
    assert.equal((r.perFilterConfig?.[HTTP_FILTERS.cors] as CorsPolicy | undefined)?.maxAgeSeconds, 86400);
    assert.equal((r.perFilterConfig?.[HTTP_FILTERS.cors] as CorsPolicy | undefined)?.unmatchedPreflights, 'FORWARD');
    assert.equal(request(c, 'http://reviews:9080/teapot').status, 418);
  });

  test('sticky canary: the annotation with a consistent hash sets stickyWeightedHash', () => {
    const vs = (annotated: boolean) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
  ${annotated ? 'annotations: {sinew.dev/sticky-canary: "true"}' : ''}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v3}, weight: 10}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-hash, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s}}}
`;
    const sticky = routeAction(reviewsRoutes(compile([...resources, ...parse(vs(true))], instances))[0]);
    assert.equal(sticky.stickyWeightedHash, true);
    assert.deepEqual(sticky.hashPolicy, { cookie: { name: 'user', ttlMs: 0 } });
    const plain = routeAction(reviewsRoutes(compile([...resources, ...parse(vs(false))], instances))[0]);
    assert.equal(plain.stickyWeightedHash, undefined);
  });
});

describe('several VirtualServices and delegation', () => {
  test('for sidecars the oldest VirtualService for a host wins', () => {
    const c = withVs(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b-reviews, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a-reviews, namespace: default, creationTimestamp: "2024-06-01T00:00:00Z"}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v3}}]}]
`);
    assert.equal(request(c, 'http://reviews:9080/').cluster, `outbound|9080|v2|${REVIEWS}`);
  });

  test('a delegate\'s routes are merged under the root\'s match', () => {
    const c = withVs(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /reviews}}]
    delegate: {name: reviews-delegate, namespace: team}
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-delegate, namespace: team}
spec:
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v3}}]
`);
    assert.equal(request(c, 'http://reviews:9080/reviews/1', { headers: { 'end-user': 'jason' } }).cluster, `outbound|9080|v2|${REVIEWS}`);
    assert.equal(request(c, 'http://reviews:9080/reviews/1').cluster, `outbound|9080|v3|${REVIEWS}`);
    assert.equal(request(c, 'http://reviews:9080/other', { headers: { 'end-user': 'jason' } }).cluster, `outbound|9080|v1|${REVIEWS}`);
  });
});

describe('sidecar inbound', () => {
  test('one listener per containerPort, forwarding to the app through inbound|<port>||', () => {
    const config = compile(resources, instances, {
      workload: 'reviews-v1',
      labels: { app: 'reviews', version: 'v1' },
      ports: { outbound: 15001, inbound: [{ containerPort: 9080, listen: { host: '127.0.0.1', port: 20002 }, app: { host: '127.0.0.1', port: 30002 } }] },
    });
    const l = config.listeners.find((x) => x.direction === 'inbound')!;
    assert.deepEqual(l.address, { host: '127.0.0.1', port: 20002 });
    const r = request(config, 'http://reviews:9080/reviews/0', { listener: l.name });
    assert.equal(r.cluster, 'inbound|9080||');
    assert.equal(r.destinations?.[0].exists, true);
    const a = config.routeConfigs.find((x) => x.name === 'inbound|9080||')!.virtualHosts[0].routes[0].action as RouteAction;
    assert.equal(a.retry, undefined);
    assert.deepEqual(config.endpoints.find((e) => e.clusterName === 'inbound|9080||')!.endpoints[0].address, { host: '127.0.0.1', port: 30002 });
  });
});

describe('sidecar inbound protocol', () => {
  test('taken from the service port that selects the workload when the runner does not say', () => {
    const rs = parse(`
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  selector: {app: db}
  ports: [{name: tcp-db, port: 5432}]
`);
    const all = [...rs, workloadOf('db', { app: 'db' }, 5432)];
    const config = compile(all, new Map([['default/db', [{ name: 'db-0', address: '127.0.0.1', ports: { 5432: 25432 } }]]]), {
      workload: 'db',
      labels: { app: 'db' },
      ports: { inbound: [{ containerPort: 5432, listen: { host: '127.0.0.1', port: 25432 }, app: { host: '127.0.0.1', port: 35432 } }] },
    });
    const l = config.listeners.find((x) => x.direction === 'inbound')!;
    assert.equal(l.protocol, 'tcp');
    assert.equal(config.clusters.find((c) => c.name === 'inbound|5432||')?.protocol, 'tcp');
  });
});

function workloadOf(name: string, labels: Record<string, string>, containerPort: number) {
  return workload(name, { labels, ports: [{ name: 'db', containerPort }] });
}
