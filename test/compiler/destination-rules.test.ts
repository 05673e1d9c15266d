/**
 * DestinationRule semantics: lookup order (client, service, root namespace, with exportTo),
 * subset and port-level merging, and Istio's cluster defaults.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { bookinfo, compile, parse, request } from './support/mesh.js';

const REVIEWS = 'reviews.default.svc.cluster.local';
const cluster = (config: ProxyConfig, name: string) => {
  const c = config.clusters.find((x) => x.name === name);
  assert.ok(c, `cluster ${name} missing`);
  return c;
};

function drYaml(ns: string, lb: string, extra = ''): string {
  return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-${ns}, namespace: ${ns}}
spec:
  host: ${REVIEWS}
  trafficPolicy:
    loadBalancer: {simple: ${lb}}
${extra}
---
`;
}

describe('DestinationRule lookup order (client namespace, service namespace, root namespace)', () => {
  const { resources, instances } = bookinfo();
  const foo = { workload: 'curl', namespace: 'foo', labels: { app: 'curl' } };

  test('client namespace first', () => {
    const rules = parse(drYaml('foo', 'RANDOM') + drYaml('default', 'ROUND_ROBIN') + drYaml('istio-system', 'LEAST_REQUEST'));
    assert.equal(cluster(compile([...resources, ...rules], instances, foo), `outbound|9080||${REVIEWS}`).lb.policy, 'RANDOM');
    // A proxy in default finds the service namespace's rule.
    assert.equal(cluster(compile([...resources, ...rules], instances), `outbound|9080||${REVIEWS}`).lb.policy, 'ROUND_ROBIN');
  });

  test('service namespace next, unless not exported to the client; then the root namespace', () => {
    const rules = parse(drYaml('default', 'ROUND_ROBIN') + drYaml('istio-system', 'RANDOM'));
    assert.equal(cluster(compile([...resources, ...rules], instances, foo), `outbound|9080||${REVIEWS}`).lb.policy, 'ROUND_ROBIN');
    const hidden = parse(drYaml('default', 'ROUND_ROBIN', '  exportTo: ["."]') + drYaml('istio-system', 'RANDOM'));
    assert.equal(cluster(compile([...resources, ...hidden], instances, foo), `outbound|9080||${REVIEWS}`).lb.policy, 'RANDOM');
    assert.equal(cluster(compile([...resources, ...hidden], instances), `outbound|9080||${REVIEWS}`).lb.policy, 'ROUND_ROBIN');
  });

  test('no rule: Istio defaults (LEAST_REQUEST, 10 s connect timeout, no limits, no outlier detection)', () => {
    const c = cluster(compile(resources, instances), `outbound|9080||${REVIEWS}`);
    assert.equal(c.lb.policy, 'LEAST_REQUEST');
    assert.equal(c.connectTimeoutMs, 10_000);
    assert.equal(c.connectionPool, undefined);
    assert.equal(c.outlierDetection, undefined);
    assert.equal(c.kind, 'eds');
    assert.equal(c.protocol, 'http1');
  });
});

describe('traffic policy merging', () => {
  const { resources, instances } = bookinfo();
  const rule = parse(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 10}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5s}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {simple: RANDOM}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      connectionPool:
        http: {http2MaxRequests: 5}
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {simple: LEAST_CONN}
`);
  const config = compile([...resources, ...rule], instances);

  test('a subset without policy inherits the whole parent policy', () => {
    const c = cluster(config, `outbound|9080|v1|${REVIEWS}`);
    assert.equal(c.lb.policy, 'ROUND_ROBIN');
    assert.equal(c.connectionPool?.maxConnections, 100);
    assert.equal(c.connectTimeoutMs, 2000);
    assert.equal(c.outlierDetection?.consecutive5xxErrors, 7);
    assert.equal(c.subset, 'v1');
  });

  test('a subset policy replaces only the fields it sets, each as a whole', () => {
    const c = cluster(config, `outbound|9080|v2|${REVIEWS}`);
    assert.equal(c.lb.policy, 'RANDOM');
    assert.equal(c.connectionPool?.maxConnections, 100);
    assert.equal(c.outlierDetection?.intervalMs, 5000);
  });

  test('subset port-level settings replace the policy for that port (unset fields fall to defaults)', () => {
    const c = cluster(config, `outbound|9080|v3|${REVIEWS}`);
    assert.equal(c.lb.policy, 'LEAST_REQUEST'); // LEAST_CONN is Istio's alias
    assert.equal(c.connectionPool, undefined);
    assert.equal(c.outlierDetection, undefined);
    assert.equal(c.connectTimeoutMs, 10_000);
  });

  test('endpoints of each subset cluster are filtered by its labels', () => {
    for (const s of ['v1', 'v2', 'v3']) {
      const eps = config.endpoints.find((e) => e.clusterName === `outbound|9080|${s}|${REVIEWS}`)!.endpoints;
      assert.deepEqual(eps.map((e) => e.labels.version), [s]);
    }
  });
});

describe('port-level settings on a multi-port service', () => {
  test('only the named port gets them, and they replace the top-level policy', () => {
    const rs = parse(`
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: grpc, port: 7070}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 3}}
    portLevelSettings:
    - port: {number: 7070}
      loadBalancer: {simple: RANDOM}
`);
    const config = compile(rs, new Map());
    const http = cluster(config, 'outbound|80||echo.default.svc.cluster.local');
    const grpc = cluster(config, 'outbound|7070||echo.default.svc.cluster.local');
    assert.equal(http.lb.policy, 'ROUND_ROBIN');
    assert.equal(http.connectionPool?.maxConnections, 3);
    assert.equal(grpc.lb.policy, 'RANDOM');
    assert.equal(grpc.connectionPool, undefined);
    assert.equal(grpc.protocol, 'http2');
  });
});

describe('cluster settings', () => {
  const { resources, instances } = bookinfo();
  const with_ = (policy: string) =>
    compile(
      [
        ...resources,
        ...parse(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
${policy}
`),
      ],
      instances,
    );

  test('outlier detection present: Envoy defaults fill unset fields (5 x 5xx, 10 s, 30 s, 10 %)', () => {
    const c = cluster(with_('    outlierDetection: {baseEjectionTime: 1m}'), `outbound|9080||${REVIEWS}`);
    assert.deepEqual(c.outlierDetection, { intervalMs: 10_000, baseEjectionTimeMs: 60_000, maxEjectionPercent: 10, consecutive5xxErrors: 5 });
  });

  test('deprecated consecutiveErrors counts gateway errors only (istio/api#617)', () => {
    const c = cluster(with_('    outlierDetection: {consecutiveErrors: 2}'), `outbound|9080||${REVIEWS}`);
    assert.equal(c.outlierDetection?.consecutiveGatewayErrors, 2);
    assert.equal(c.outlierDetection?.consecutive5xxErrors, undefined);
  });

  test('consistentHash -> RING_HASH and a route hash policy', () => {
    const config = with_('    loadBalancer: {consistentHash: {httpHeaderName: x-user}}');
    const c = cluster(config, `outbound|9080||${REVIEWS}`);
    assert.equal(c.lb.policy, 'RING_HASH');
    assert.equal(c.lb.minimumRingSize, 1024);
    const vh = config.routeConfigs.find((r) => r.name === '9080')!.virtualHosts.find((h) => h.name.startsWith('reviews'))!;
    const action = vh.routes[0].action;
    assert.equal(action.kind, 'route');
    assert.deepEqual(action.kind === 'route' ? action.hashPolicy : undefined, { header: 'x-user' });
  });

  test('simple PASSTHROUGH makes the cluster original-destination', () => {
    assert.equal(cluster(with_('    loadBalancer: {simple: PASSTHROUGH}'), `outbound|9080||${REVIEWS}`).kind, 'originalDst');
  });

  test('locality: failover only with outlier detection (Istio applyLocalityLoadBalancer)', () => {
    const failover = `    loadBalancer:
      localityLbSetting:
        failover: [{from: us-east, to: us-west}]`;
    assert.deepEqual(cluster(with_(failover), `outbound|9080||${REVIEWS}`).lb.locality, { enabled: true });
    const withOd = cluster(with_(`${failover}\n    outlierDetection: {consecutive5xxErrors: 1}`), `outbound|9080||${REVIEWS}`);
    assert.deepEqual(withOd.lb.locality?.failover, [{ from: 'us-east', to: 'us-west' }]);
    const distribute = cluster(
      with_(`    loadBalancer:
      localityLbSetting:
        distribute: [{from: "us-east/*", to: {"us-east/*": 80, "us-west/*": 20}}]`),
      `outbound|9080||${REVIEWS}`,
    );
    assert.deepEqual(distribute.lb.locality, { enabled: true, distribute: [{ from: 'us-east/*', to: { 'us-east/*': 80, 'us-west/*': 20 } }] });
    // Outlier detection alone turns on locality-aware balancing, from the proxy's topology labels.
    const { resources: rs, instances: is } = bookinfo();
    const located = compile(
      [...rs, ...parse(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}}
`)],
      is,
      { labels: { app: 'productpage', 'topology.kubernetes.io/region': 'us-east', 'topology.kubernetes.io/zone': 'a' } },
    );
    assert.deepEqual(cluster(located, `outbound|9080||${REVIEWS}`).lb.locality, { enabled: true, self: 'us-east/a' });
  });

  test('ISTIO_MUTUAL uses the workload certificate and the mesh root', () => {
    const c = cluster(with_('    tls: {mode: ISTIO_MUTUAL}'), `outbound|9080||${REVIEWS}`);
    // Istio's buildIstioMutualTLS: its SNI for the cluster, and the endpoints' identities as SANs when known.
    assert.deepEqual({ ...c.tls, subjectAltNames: undefined }, { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA', sni: `outbound_.9080_._.${REVIEWS}`, subjectAltNames: undefined });
  });
});

describe('ServiceEntry clusters', () => {
  const rs = parse(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static, namespace: default}
spec:
  hosts: [db.internal]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}, {address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: round-robin, namespace: default}
spec:
  hosts: [rr.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS_ROUND_ROBIN
`);
  const config = compile(rs, new Map(), { mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });

  test('DNS resolves strictly (every address a host), DNS_ROUND_ROBIN logically (one host), as Envoy STRICT_DNS / LOGICAL_DNS', () => {
    assert.deepEqual(cluster(config, 'outbound|80||httpbin.org').dns, { mode: 'strict' });
    assert.deepEqual(cluster(config, 'outbound|80||rr.example.com').dns, { mode: 'logical' });
    assert.equal(cluster(config, 'outbound|80||rr.example.com').kind, 'dns');
    assert.equal(cluster(config, 'outbound|5432||db.internal').dns, undefined);
  });

  test('DNS -> dns cluster whose endpoint is the host name', () => {
    const c = cluster(config, 'outbound|80||httpbin.org');
    assert.equal(c.kind, 'dns');
    assert.deepEqual(config.endpoints.find((e) => e.clusterName === c.name)!.endpoints.map((e) => e.address), [{ host: 'httpbin.org', port: 80 }]);
    assert.equal(request(config, 'http://httpbin.org/get').cluster, 'outbound|80||httpbin.org');
  });

  test('STATIC -> eds with the listed endpoints; NONE -> original destination', () => {
    assert.equal(cluster(config, 'outbound|5432||db.internal').kind, 'eds');
    assert.equal(cluster(config, 'outbound|5432||db.internal').protocol, 'tcp');
    assert.equal(config.endpoints.find((e) => e.clusterName === 'outbound|5432||db.internal')!.endpoints.length, 2);
    assert.equal(cluster(config, 'outbound|443||api.example.com').kind, 'originalDst');
  });
});
