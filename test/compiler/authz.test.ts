/**
 * The compiler's side of authorization, from the YAML of istio.io's authorization tasks
 * (test/fixtures/istio/data/istio.io/security/, verbatim; see its README): which proxies get
 * which filters, and what the filters they get decide for the requests the tasks send, with
 * the results the tasks print. The filters are the proxy's own (src/proxy/http/filters).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Listener, ProxyConfig } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { securityFilterFactories } from '../../src/proxy/http/filters/security-chain.js';
import { createNetworkRbacFilterFactory } from '../../src/proxy/http/filters/rbac/index.js';
import type { RequestAttributes } from '../../src/security/attributes.js';
import { bookinfo, compile, parse, repoRoot, workload, type ProxyOptions } from './support/mesh.js';
import { compileHttpFilters, securityFiltersOf, through } from '../security/chain-support.js';

const TASKS = path.join(repoRoot, 'test/fixtures/istio/data/istio.io/security');
const task = (file: string, vars: Record<string, string> = {}) => {
  let text = readFileSync(path.join(TASKS, file), 'utf8');
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`$${k}`, v);
  return parse(text, file);
};

const factories = securityFilterFactories({ jwt: { fetchJwks: () => Promise.reject(new Error('no JWKS in this test')), now: Date.now }, extAuthz: { check: () => Promise.reject(new Error('no authorizer in this test')) } });

/** The HTTP filters of a listener, built as the proxy builds them. */
function httpFilters(listener: Listener) {
  return compileHttpFilters(securityFiltersOf(listener), factories);
}

/** The status a request to a proxy's first inbound (or gateway) HTTP listener gets from its filters (200: on to the router). */
async function statusOf(config: ProxyConfig, req: Partial<RequestAttributes> & { headers?: Record<string, string> }): Promise<number> {
  const listener = config.listeners.find((l) => (l.direction === 'inbound' || l.direction === 'gateway') && l.http)!;
  return (await through(httpFilters(listener), req)).status;
}

// === Bookinfo: authz-http ===

describe("istio.io authz-http on Bookinfo", () => {
  const { resources, instances } = bookinfo();
  const sidecar = (app: string, sa: string): ProxyOptions => ({
    workload: `${app}-v1`,
    labels: { app, version: 'v1' },
    ports: { inbound: [{ containerPort: 9080, listen: { host: '127.0.0.1', port: 29080 }, app: { host: '127.0.0.1', port: 39080 } }] },
    serviceAccount: sa,
  } as ProxyOptions);
  const productpage = sidecar('productpage', 'bookinfo-productpage');
  const details = sidecar('details', 'bookinfo-details');
  const fromProductpage = { peerPrincipal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage' };
  const fromOther = { peerPrincipal: 'spiffe://cluster.local/ns/default/sa/sleep' };
  const step1 = task('authorization/authz-http/snip_configure_access_control_for_workloads_using_http_traffic_1.yaml');
  const step2 = task('authorization/authz-http/snip_configure_access_control_for_workloads_using_http_traffic_2.yaml');
  const step3 = task('authorization/authz-http/snip_configure_access_control_for_workloads_using_http_traffic_3.yaml');

  test('allow-nothing: "RBAC: access denied" everywhere in default, the outbound side untouched', async () => {
    const config = compile([...resources, ...step1], instances, productpage);
    assert.equal(await statusOf(config, { method: 'GET', path: '/productpage' }), 403);
    for (const l of config.listeners.filter((x) => x.direction === 'outbound')) assert.deepEqual(securityFiltersOf(l), []);
  });

  test('productpage-viewer: GET allowed, POST still denied; details still denied', async () => {
    const pp = compile([...resources, ...step1, ...step2], instances, productpage);
    assert.equal(await statusOf(pp, { method: 'GET', path: '/productpage' }), 200);
    assert.equal(await statusOf(pp, { method: 'POST', path: '/productpage' }), 403);
    assert.equal(await statusOf(compile([...resources, ...step1, ...step2], instances, details), { method: 'GET', path: '/details/0', ...fromProductpage }), 403);
  });

  test('details-viewer: GET from the productpage service account only, and only over mTLS', async () => {
    const d = compile([...resources, ...step1, ...step2, ...step3], instances, details);
    assert.equal(await statusOf(d, { method: 'GET', path: '/details/0', ...fromProductpage }), 200);
    assert.equal(await statusOf(d, { method: 'GET', path: '/details/0', ...fromOther }), 403);
    assert.equal(await statusOf(d, { method: 'GET', path: '/details/0' }), 403);
  });
});

// === httpbin: authz-deny ===

const HTTPBIN = `
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
`;
const httpbinWorkload = workload('httpbin', { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' }, ports: [{ name: 'http', containerPort: 80 }] });
const httpbinInstances = new Map([['foo/httpbin', [{ name: 'httpbin-0', address: '127.0.0.1', ports: { 80: 28000 } }]]]);
const httpbinProxy: ProxyOptions = {
  workload: 'httpbin',
  namespace: 'foo',
  labels: { app: 'httpbin', version: 'v1' },
  ports: { inbound: [{ containerPort: 80, listen: { host: '127.0.0.1', port: 28000 }, app: { host: '127.0.0.1', port: 38000 } }] },
};
const httpbin = (...policies: Resource[][]) => compile([...parse(HTTPBIN), httpbinWorkload, ...policies.flat()], httpbinInstances, httpbinProxy);

describe('istio.io authz-deny on httpbin', () => {
  const denyGet = task('authorization/authz-deny/snip_explicitly_deny_a_request_1.yaml');
  const denyGetUnlessAdmin = task('authorization/authz-deny/snip_explicitly_deny_a_request_4.yaml');
  const allowIp = task('authorization/authz-deny/snip_explicitly_deny_a_request_7.yaml');

  test('deny-method-get: GET 403, POST 200', async () => {
    const c = httpbin(denyGet);
    assert.equal(await statusOf(c, { method: 'GET', path: '/get' }), 403);
    assert.equal(await statusOf(c, { method: 'POST', path: '/post' }), 200);
  });

  test('deny-method-get unless x-token: admin', async () => {
    const c = httpbin(denyGetUnlessAdmin);
    assert.equal(await statusOf(c, { method: 'GET', path: '/get', headers: { 'x-token': 'admin' } }), 200);
    assert.equal(await statusOf(c, { method: 'GET', path: '/get', headers: { 'x-token': 'guest' } }), 403);
  });

  test('allow-path-ip beside the deny: /ip with x-token admin 200, /get 403', async () => {
    const c = httpbin(denyGetUnlessAdmin, allowIp);
    assert.equal(await statusOf(c, { method: 'GET', path: '/ip', headers: { 'x-token': 'admin' } }), 200);
    assert.equal(await statusOf(c, { method: 'GET', path: '/get', headers: { 'x-token': 'admin' } }), 403);
  });
});

// === scope: mesh (root namespace), namespace, workload, targetRefs ===

describe('which proxies a policy attaches to', () => {
  const policy = (meta: string, spec = 'action: DENY\n  rules: [{}]') => parse(`apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {${meta}}\nspec:\n  ${spec}\n`);
  const hasRbac = (c: ProxyConfig) => c.listeners.some((l) => securityFiltersOf(l).some((f) => f.name === 'sinew.filters.http.rbac'));

  test('root namespace without selector: every workload of the mesh', () => {
    assert.ok(hasRbac(httpbin(policy('name: p, namespace: istio-system'))));
  });
  test('root namespace with a selector: matching workloads in any namespace', () => {
    assert.ok(hasRbac(httpbin(policy('name: p, namespace: istio-system', 'selector: {matchLabels: {app: httpbin}}\n  action: DENY\n  rules: [{}]'))));
    assert.ok(!hasRbac(httpbin(policy('name: p, namespace: istio-system', 'selector: {matchLabels: {app: other}}\n  action: DENY\n  rules: [{}]'))));
  });
  test('a custom root namespace', () => {
    const c = compile([...parse(HTTPBIN), httpbinWorkload, ...policy('name: p, namespace: mesh-root')], httpbinInstances, { ...httpbinProxy, mesh: { rootNamespace: 'mesh-root' } });
    assert.ok(hasRbac(c));
  });
  test("another namespace's policy does not attach", () => {
    assert.ok(!hasRbac(httpbin(policy('name: p, namespace: bar'))));
  });
  test('a selector of another version does not attach', () => {
    assert.ok(!hasRbac(httpbin(policy('name: p, namespace: foo', 'selector: {matchLabels: {version: v2}}\n  action: DENY\n  rules: [{}]'))));
  });
  test('targetRefs attach to the Gateway API gateway they name, never to a sidecar', () => {
    const ref = policy('name: p, namespace: foo', 'targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: edge}]\n  action: DENY\n  rules: [{}]');
    assert.ok(!hasRbac(httpbin(ref)));
  });
});

// === TCP: authz-tcp ===

describe('istio.io authz-tcp on tcp-echo', () => {
  const TCP_ECHO = `
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: foo}
spec:
  selector: {app: tcp-echo}
  ports: [{name: tcp, port: 9000}, {name: tcp-other, port: 9001}, {name: tcp-third, port: 9002}]
`;
  const ports = [9000, 9001, 9002];
  const tcpEcho = (...policies: Resource[][]) =>
    compile(
      [...parse(TCP_ECHO), workload('tcp-echo', { namespace: 'foo', labels: { app: 'tcp-echo' }, ports: ports.map((p) => ({ name: `tcp-${p}`, containerPort: p })) }), ...policies.flat()],
      new Map([['foo/tcp-echo', [{ name: 'tcp-echo-0', address: '127.0.0.1', ports: Object.fromEntries(ports.map((p) => [p, p + 20000])) }]]]),
      { workload: 'tcp-echo', namespace: 'foo', labels: { app: 'tcp-echo' }, ports: { inbound: ports.map((p) => ({ containerPort: p, listen: { host: '127.0.0.1', port: p + 20000 }, app: { host: '127.0.0.1', port: p + 30000 }, protocol: 'tcp' as const })) } },
    );
  /** Which ports accept a connection (the listener's own port stands for the containerPort through the filter's config). */
  const accepted = (config: ProxyConfig) =>
    ports.filter((p) => {
      const listener = config.listeners.find((l) => l.direction === 'inbound' && l.address.port === p + 20000)!;
      assert.equal(listener.protocol, 'tcp');
      const filter = listener.networkFilters?.[0];
      if (!filter) return true;
      return createNetworkRbacFilterFactory().compile(filter.config).onNewConnection({ sourceIp: '127.0.0.1', destinationPort: p + 20000 }) === 'continue';
    });

  test('no policy: every port', () => assert.deepEqual(accepted(tcpEcho()), [9000, 9001, 9002]));
  test('ALLOW ports 9000, 9001: 9002 is closed', () => assert.deepEqual(accepted(tcpEcho(task('authorization/authz-tcp/snip_configure_allow_authorization_policy_for_a_tcp_workload_1.yaml'))), [9000, 9001]));
  test('ALLOW with methods (HTTP-only): the rule is ignored, nothing is accepted', () => assert.deepEqual(accepted(tcpEcho(task('authorization/authz-tcp/snip_configure_allow_authorization_policy_for_a_tcp_workload_5.yaml'))), []));
  test('DENY with methods (HTTP-only): everything is denied', () => assert.deepEqual(accepted(tcpEcho(task('authorization/authz-tcp/snip_configure_deny_authorization_policy_for_a_tcp_workload_1.yaml'))), []));
  test('DENY with methods on port 9000 only: the rule widens to the whole port', () => assert.deepEqual(accepted(tcpEcho(task('authorization/authz-tcp/snip_configure_deny_authorization_policy_for_a_tcp_workload_4.yaml'))), [9001, 9002]));
});

// === the ingress gateway: authz-ingress ===

describe('istio.io authz-ingress on the ingress gateway', () => {
  const GATEWAY = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: httpbin-gateway, namespace: foo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: foo}
spec:
  hosts: ["*"]
  gateways: [httpbin-gateway]
  http:
  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
`;
  const gateway = (...policies: Resource[][]) =>
    compile([...parse(HTTPBIN + '---' + GATEWAY), httpbinWorkload, ...policies.flat()], httpbinInstances, {
      mode: 'router',
      workload: 'istio-ingressgateway',
      namespace: 'istio-system',
      labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
      ports: { gateway: { 80: 18080 } },
    });
  const client = '10.1.2.3';

  test('ipBlocks: the direct peer is checked', async () => {
    const c = gateway(task('authorization/authz-ingress/snip_ipbased_allow_list_and_deny_list_10.yaml', { CLIENT_IP: client }));
    assert.equal(await statusOf(c, { sourceIp: client, path: '/headers' }), 200);
    assert.equal(await statusOf(c, { sourceIp: '10.9.9.9', remoteIp: client, path: '/headers' }), 403);
    assert.equal(await statusOf(c, { sourceIp: '5.6.7.8', path: '/headers' }), 200);
  });
  test('remoteIpBlocks: the original client (X-Forwarded-For) is checked', async () => {
    const c = gateway(task('authorization/authz-ingress/snip_ipbased_allow_list_and_deny_list_11.yaml', { CLIENT_IP: client }));
    assert.equal(await statusOf(c, { sourceIp: '10.9.9.9', remoteIp: client, path: '/headers' }), 200);
    assert.equal(await statusOf(c, { sourceIp: client, remoteIp: '10.9.9.9', path: '/headers' }), 403);
  });
  test('the deny lists', async () => {
    assert.equal(await statusOf(gateway(task('authorization/authz-ingress/snip_ipbased_allow_list_and_deny_list_15.yaml', { CLIENT_IP: client })), { sourceIp: client, path: '/headers' }), 403);
    assert.equal(await statusOf(gateway(task('authorization/authz-ingress/snip_ipbased_allow_list_and_deny_list_16.yaml', { CLIENT_IP: client })), { sourceIp: '10.9.9.9', remoteIp: client, path: '/headers' }), 403);
    assert.equal(await statusOf(gateway(task('authorization/authz-ingress/snip_ipbased_allow_list_and_deny_list_16.yaml', { CLIENT_IP: client })), { sourceIp: client, remoteIp: '10.9.9.9', path: '/headers' }), 200);
  });
  test('the policy names the gateway server port, not the port the proxy listens on', () => {
    const c = gateway(parse(`apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: istio-system}\nspec:\n  selector: {matchLabels: {istio: ingressgateway}}\n  rules: [{to: [{operation: {ports: ["80"]}}]}]\n`));
    const rbac = securityFiltersOf(c.listeners.find((l) => l.direction === 'gateway')).find((f) => f.name === 'sinew.filters.http.rbac')!;
    assert.equal(rbac.config.destinationPort, 80);
  });
  test('the mesh path normalisation reaches gateway and inbound listeners only', () => {
    const c = compile([...parse(HTTPBIN + '---' + GATEWAY), httpbinWorkload], httpbinInstances, { mode: 'router', workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 80: 18080 } }, mesh: { pathNormalization: 'MERGE_SLASHES' } });
    assert.equal(c.listeners.find((l) => l.direction === 'gateway')!.http!.pathNormalization, 'MERGE_SLASHES');
    const s = compile([...parse(HTTPBIN), httpbinWorkload], httpbinInstances, { ...httpbinProxy, mesh: { pathNormalization: 'DECODE_AND_MERGE_SLASHES' } });
    assert.deepEqual(s.listeners.map((l) => [l.direction, l.http?.pathNormalization]), s.listeners.map((l) => [l.direction, l.direction === 'inbound' ? 'DECODE_AND_MERGE_SLASHES' : undefined]));
  });
});

// === authn: per-path tokens at the ingress ===

describe('istio.io authn-policy: require a token at the ingress, per path', () => {
  test('frontend-ingress per path: /headers needs a token, /ip does not; a bad token is 401 everywhere', async () => {
    const GATEWAY = `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n`;
    const c = compile([...parse(HTTPBIN + '---\n' + GATEWAY), httpbinWorkload, ...task('authentication/authn-policy/snip_enduser_authentication_5.yaml'), ...task('authentication/authn-policy/snip_require_valid_tokens_perpath_1.yaml')], httpbinInstances, {
      mode: 'router', workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 80: 18080 } },
    });
    const names = securityFiltersOf(c.listeners.find((l) => l.direction === 'gateway')).map((f) => f.name);
    assert.deepEqual(names, ['sinew.filters.http.jwt_authn', 'sinew.filters.http.rbac']);
    assert.equal(await statusOf(c, { path: '/headers' }), 403);
    assert.equal(await statusOf(c, { path: '/ip' }), 200);
    assert.equal(await statusOf(c, { path: '/ip', headers: { authorization: 'Bearer deadbeef' } }), 401);
  });
});

// === jwt-route: routing on JWT claims at the ingress ===

describe('istio.io jwt-route: a claim match at the gateway', () => {
  const GATEWAY = `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: httpbin-gateway, namespace: foo}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n`;
  const resources = () => [
    ...parse(HTTPBIN + '---\n' + GATEWAY),
    httpbinWorkload,
    ...task('authentication/jwt-route/snip_configuring_ingress_routing_based_on_jwt_claims_1.yaml'),
    ...task('authentication/jwt-route/snip_configuring_ingress_routing_based_on_jwt_claims_2.yaml'),
  ];

  test('`@request.auth.claims.groups` becomes a claim condition, not a header match, and the gateway\'s jwt_authn routes again after verifying', () => {
    const c = compile(resources(), httpbinInstances, { mode: 'router', workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 80: 18080 } } });
    const routes = c.routeConfigs.flatMap((rc) => rc.virtualHosts.flatMap((vh) => vh.routes));
    assert.deepEqual(routes.map((r) => r.match), [{ path: { prefix: '/headers' }, claims: [{ path: ['groups'], match: { exact: 'group1' } }] }]);
    const jwt = securityFiltersOf(c.listeners.find((l) => l.direction === 'gateway')).find((f) => f.name === 'sinew.filters.http.jwt_authn')!;
    assert.equal(jwt.config.clearRouteCache, true);
  });

  test('a sidecar\'s jwt_authn does not route again (Istio clears the route cache at gateways only)', () => {
    const sidecarAuthn = parse(`apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: foo}\nspec:\n  selector: {matchLabels: {app: httpbin}}\n  jwtRules: [{issuer: testing@secure.istio.io, jwksUri: "http://127.0.0.1:1/jwks.json"}]\n`);
    const c = compile([...parse(HTTPBIN), httpbinWorkload, ...sidecarAuthn], httpbinInstances, httpbinProxy);
    const jwt = securityFiltersOf(c.listeners.find((l) => l.direction === 'inbound')).find((f) => f.name === 'sinew.filters.http.jwt_authn')!;
    assert.equal(jwt.config.clearRouteCache, undefined);
  });
});
