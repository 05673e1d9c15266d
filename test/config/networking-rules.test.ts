/**
 * Networking validation beyond Istio's test table: the typos from the seed documents, strict
 * structure with suggestions, Sidecar rules (no upstream cases for it in expected.yaml) and a
 * few semantic rules a user is likely to trip over.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateText } from '../../src/config/validate.js';
import { formatDiagnostic, type Diagnostic } from '../../src/api/diagnostics.js';

const show = (ds: Diagnostic[]) => ds.map((d) => formatDiagnostic(d)).join('\n') || '(none)';

function run(yaml: string) {
  const { diagnostics, resources } = validateText('input.yaml', yaml);
  return {
    resources,
    errors: diagnostics.filter((d) => d.level === 'error'),
    warnings: diagnostics.filter((d) => d.level === 'warning'),
    all: diagnostics,
  };
}

function expectFinding(ds: Diagnostic[], path: string, text: string, line?: number): Diagnostic {
  const d = ds.find((x) => x.path === path && x.message.includes(text));
  assert.ok(d, `expected "${text}" at ${path}, got:\n${show(ds)}`);
  if (line !== undefined) assert.equal(d.source?.line, line, `line of ${path}`);
  return d;
}

const vs = (spec: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
${spec}`;
const dr = (spec: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
${spec}`;
const sidecar = (spec: string) => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
${spec}`;

describe('seed typos', () => {
  test('circuit breaker DestinationRule: misplaced maxConnection, deprecated consecutiveErrors, 5m interval', () => {
    const r = run(`apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: myapp-egress
spec:
  host: api.openweathermap.org
  trafficPolicy:
    connectionPool:
      maxConnection: 10
    outlierDetection:
      interval: 5m
      consecutiveErrors: 5
      baseEjectionTime: 15m
`);
    const d = expectFinding(r.errors, 'spec.trafficPolicy.connectionPool.maxConnection', 'unknown field "maxConnection"', 9);
    assert.match(d.message, /did you mean "tcp\.maxConnections"\?/);
    assert.equal(d.code, 'SNW0104');
    expectFinding(r.warnings, 'spec.trafficPolicy.outlierDetection.consecutiveErrors', 'consecutive errors is deprecated', 12);
    // 5m and 15m are fine durations: no finding on them.
    assert.ok(!r.all.some((x) => /interval|baseEjectionTime/.test(x.path ?? '')), show(r.all));
  });

  test('VirtualService with hosts under destination: did you mean "host", at its line', () => {
    const r = run(vs(`  hosts: [reviews]
  http:
  - route:
    - destination:
        hosts: reviews
        subset: v1
`));
    const d = expectFinding(r.errors, 'spec.http[0].route[0].destination.hosts', 'unknown field "hosts"; did you mean "host"?', 9);
    assert.equal(d.source?.column, 9);
    assert.equal(r.resources.length, 0);
  });

  test('a field one level too high names where it belongs', () => {
    const r = run(dr(`  host: reviews
  trafficPolicy:
    maxConnections: 5
`));
    expectFinding(r.errors, 'spec.trafficPolicy.maxConnections', 'did you mean "connectionPool.tcp.maxConnections"?', 7);
  });
});

describe('structure', () => {
  test('misspelt enum values get a suggestion', () => {
    const r = run(dr(`  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBINN}
    tls: {mode: ISTIO_MUTAL}
`));
    expectFinding(r.errors, 'spec.trafficPolicy.loadBalancer.simple', 'did you mean "ROUND_ROBIN"?');
    expectFinding(r.errors, 'spec.trafficPolicy.tls.mode', 'did you mean "ISTIO_MUTUAL"?');
  });

  test('every error is reported, not only the first', () => {
    const r = run(vs(`  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: -5
    - destination: {host: reviews, subset: V_2}
    retries: {attempts: 3, retryOn: "5xx,conect-failure"}
    timout: 1s
`));
    expectFinding(r.errors, 'spec.http[0].route[0].weight', 'weight -5 < 0');
    expectFinding(r.errors, 'spec.http[0].route[1].destination.subset', 'subset name is invalid: V_2');
    expectFinding(r.errors, 'spec.http[0].retries.retryOn', '"conect-failure" is not a valid retryOn policy');
    expectFinding(r.errors, 'spec.http[0].timout', 'did you mean "timeout"?');
  });

  test('a valid resource comes out frozen with its spec', () => {
    const r = run(vs(`  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v2}
      weight: 30
`));
    assert.equal(r.errors.length, 0, show(r.errors));
    assert.equal(r.resources.length, 1);
    assert.ok(Object.isFrozen(r.resources[0].spec));
  });
});

describe('VirtualService rules', () => {
  test('delegate rules: no gateways in a delegate, no route beside a delegate', () => {
    const d1 = run(vs(`  gateways: [istio-system/ingress]
  http:
  - route: [{destination: {host: reviews}}]
`));
    expectFinding(d1.errors, 'spec.gateways', 'delegate virtual service must have no gateways specified');
    const d2 = run(vs(`  hosts: [reviews]
  http:
  - delegate: {name: reviews-v1, namespace: default}
`));
    assert.equal(d2.errors.length, 0, show(d2.errors));
  });

  test('redirect and route cannot be mixed; a route needs an action', () => {
    const r = run(vs(`  hosts: [reviews]
  http:
  - redirect: {uri: /v2}
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /x}}]
`));
    expectFinding(r.errors, 'spec.http[0]', 'HTTP route cannot contain both route and redirect');
    expectFinding(r.errors, 'spec.http[1]', 'HTTP route, redirect or direct_response is required');
  });

  test('a rule after a catch-all rule is unreachable (warning only)', () => {
    const r = run(vs(`  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
`));
    assert.equal(r.errors.length, 0, show(r.errors));
    expectFinding(r.warnings, 'spec.http[1]', 'not used (route without matches defined before)');
  });

  test('header values must escape % for Envoy; an invalid regex is reported with RE2 wording', () => {
    const r = run(vs(`  hosts: [reviews]
  http:
  - match: [{uri: {regex: "/api/(v1"}}]
    headers: {request: {set: {x-load: "100%"}}}
    route: [{destination: {host: reviews}}]
`));
    expectFinding(r.errors, 'spec.http[0].headers.request.set.x-load', 'header value configuration');
    expectFinding(r.errors, 'spec.http[0].match[0].uri.regex', 'error parsing regexp: missing closing )');
  });
});

describe('DestinationRule rules', () => {
  test('subset names are unique labels; traffic policy numbers and TLS combinations', () => {
    const r = run(dr(`  host: reviews.default.svc.cluster.local
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v1
    labels: {version: v2}
  trafficPolicy:
    outlierDetection: {maxEjectionPercent: 150, interval: 1.5ms}
    tls: {mode: MUTUAL, caCertificates: /etc/ca.pem}
    loadBalancer:
      consistentHash: {maglev: {tableSize: 65536}, httpHeaderName: x-user}
`));
    expectFinding(r.errors, 'spec.subsets[1].name', 'duplicate subset names: v1');
    expectFinding(r.errors, 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', 'percentage 150 is not in range 0..100');
    expectFinding(r.errors, 'spec.trafficPolicy.outlierDetection.interval', 'only durations to ms precision are supported');
    expectFinding(r.errors, 'spec.trafficPolicy.tls.clientCertificate', 'client certificate required for mutual tls');
    expectFinding(r.errors, 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'tableSize must be a prime number for maglev');
  });

  test('a prime maglev table and a plain ROUND_ROBIN policy are accepted', () => {
    const r = run(dr(`  host: reviews
  trafficPolicy:
    loadBalancer: {consistentHash: {maglev: {tableSize: 65537}, useSourceIp: true}}
    connectionPool: {tcp: {maxConnections: 100, connectTimeout: 30ms}, http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
`));
    assert.equal(r.errors.length, 0, show(r.errors));
  });
});

describe('Gateway rules', () => {
  test('HTTPS needs TLS settings; hosts take an optional namespace', () => {
    const r = run(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["shop/*.example.com", "bookinfo.example.com"]
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {httpsRedirect: true}
  - port: {number: 8443, name: https-2, protocol: HTTPS}
    hosts: ["~/foo.example.com"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
`);
    expectFinding(r.errors, 'spec.servers[0].tls', 'server must have TLS settings for HTTPS/TLS protocols');
    expectFinding(r.errors, 'spec.servers[2].hosts[0]', 'invalid namespace value "~" in gateway');
    assert.equal(r.errors.length, 2, show(r.errors));
  });
});

describe('Sidecar rules', () => {
  test('a typical namespace Sidecar is accepted', () => {
    const r = run(sidecar(`  egress:
  - hosts: ["./*", "istio-system/*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`));
    assert.equal(r.errors.length, 0, show(r.errors));
  });

  test('egress hosts must be namespace/host; ports unique; egressProxy only with ALLOW_ANY', () => {
    const r = run(sidecar(`  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
  - port: {number: 9080, protocol: HTTP, name: http-2}
    defaultEndpoint: 10.0.0.1:8080
  egress:
  - hosts: ["reviews.default.svc.cluster.local", "shop/reviews"]
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
    egressProxy: {host: proxy.example.com, port: {number: 3128}}
`));
    expectFinding(r.errors, 'spec.ingress[1].port.number', 'sidecar: ports on IP bound listeners must be unique');
    expectFinding(r.errors, 'spec.ingress[1].defaultEndpoint', 'defaultEndpoint must be of form');
    expectFinding(r.errors, 'spec.egress[0].hosts[0]', 'host must be of form namespace/dnsName');
    expectFinding(r.errors, 'spec.egress[0].hosts[1]', 'short names (non FQDN) are not allowed');
    expectFinding(r.errors, 'spec.outboundTrafficPolicy.egressProxy', 'egress_proxy must be set only with ALLOW_ANY');
  });

  test('an empty Sidecar is refused; an empty selector is warned', () => {
    const r = run(sidecar(`  workloadSelector: {labels: {}}
`));
    expectFinding(r.errors, 'spec', 'sidecar: empty configuration provided');
    expectFinding(r.warnings, 'spec.workloadSelector', 'workload selector specified without labels');
  });
});
