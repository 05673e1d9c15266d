/**
 * CUSTOM authorization against a real HTTP authorizer, one that behaves as Istio's ext-authz
 * sample (samples/extauthz: allows a request whose `x-ext-authz` header is `allow`, answers
 * 403 otherwise, and says which in `x-ext-authz-check-result`), configured the way istio.io's
 * authz-custom task configures it (meshConfig extensionProviders envoyExtAuthzHttp).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExtensionProvider } from '../../src/api/mesh-config.js';
import { directCheck } from '../../src/proxy/http/filters/ext-authz/index.js';
import { securityFilterFactories } from '../../src/proxy/http/filters/security-chain.js';
import { compile, parse, workload } from '../compiler/support/mesh.js';
import { compileHttpFilters, securityFiltersOf, through } from './chain-support.js';

class Authorizer {
  checks: { method: string; url: string; headers: IncomingMessage['headers'] }[] = [];
  hang = false;
  readonly server: Server = createServer((req, res) => {
    this.checks.push({ method: req.method!, url: req.url!, headers: req.headers });
    if (this.hang) return;
    if (req.headers['x-ext-authz'] === 'allow') {
      res.writeHead(200, { 'x-ext-authz-check-result': 'allowed', 'x-ext-authz-additional-header-override': 'from-authorizer', 'x-other': 'not-copied' }).end();
    } else {
      res.writeHead(403, { 'x-ext-authz-check-result': 'denied', 'content-type': 'text/plain' }).end('denied by ext_authz for not found header `x-ext-authz: allow` in the request');
    }
  });
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }
  start = () => new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  stop = () => {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  };
}

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext-authz, namespace: foo}
spec:
  selector: {app: ext-authz}
  ports: [{name: http, port: 8000, targetPort: 8000}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: CUSTOM
  provider: {name: sample-ext-authz-http}
  rules:
  - to:
    - operation:
        paths: ["/headers"]
`;

const provider = (over: Record<string, unknown> = {}): ExtensionProvider => ({
  name: 'sample-ext-authz-http',
  envoyExtAuthzHttp: {
    service: 'ext-authz.foo.svc.cluster.local',
    port: 8000,
    timeout: '2s',
    pathPrefix: '/check',
    includeRequestHeadersInCheck: ['x-ext-authz'],
    headersToUpstreamOnAllow: ['x-ext-authz-check-result', 'x-ext-authz-additional-*'],
    headersToDownstreamOnDeny: ['x-ext-authz-check-result', 'content-type'],
    ...over,
  },
});

describe('CUSTOM authorization with an HTTP authorizer (envoyExtAuthzHttp)', () => {
  const authorizer = new Authorizer();
  before(() => authorizer.start());
  after(() => authorizer.stop());

  /** httpbin's inbound filters, the authorizer's cluster resolved to the running server. */
  function httpbin(providers: ExtensionProvider[], port = () => authorizer.port) {
    const resources = [...parse(MESH), workload('httpbin', { namespace: 'foo', labels: { app: 'httpbin' }, ports: [{ name: 'http', containerPort: 80 }] })];
    const config = compile(resources, new Map([['foo/httpbin', [{ name: 'httpbin-0', address: '127.0.0.1', ports: { 80: 28000 } }]]]), {
      workload: 'httpbin',
      namespace: 'foo',
      labels: { app: 'httpbin' },
      ports: { inbound: [{ containerPort: 80, listen: { host: '127.0.0.1', port: 28000 }, app: { host: '127.0.0.1', port: 38000 } }] },
      mesh: { meshTelemetry: { extensionProviders: providers } },
    });
    const list = securityFiltersOf(config.listeners.find((l) => l.direction === 'inbound'));
    const check = directCheck((cluster) => (cluster === 'outbound|8000||ext-authz.foo.svc.cluster.local' ? { host: '127.0.0.1', port: port() } : undefined));
    return { list, filters: compileHttpFilters(list, securityFilterFactories({ jwt: { fetchJwks: () => Promise.reject(new Error('unused')), now: Date.now }, extAuthz: { check } })) };
  }

  test('allowed: the request goes on with the headers the provider copies upstream', async () => {
    const { filters } = httpbin([provider()]);
    const out = await through(filters, { method: 'GET', path: '/headers?a=1', headers: { 'x-ext-authz': 'allow', 'x-secret': 's', authorization: 'Basic abc' } });
    assert.equal(out.status, 200);
    assert.equal(out.upstreamHeaders['x-ext-authz-check-result'], 'allowed');
    assert.equal(out.upstreamHeaders['x-ext-authz-additional-header-override'], 'from-authorizer');
    assert.equal(out.upstreamHeaders['x-other'], undefined);
    const check = authorizer.checks.at(-1)!;
    assert.equal(check.method, 'GET');
    assert.equal(check.url, '/check/headers?a=1');
    assert.equal(check.headers['x-ext-authz'], 'allow');
    assert.equal(check.headers.authorization, 'Basic abc', 'Authorization is always sent');
    assert.equal(check.headers['x-secret'], undefined, 'headers not included are not sent');
  });

  test("denied: the authorizer's status, body and the headers the provider passes down", async () => {
    const { filters } = httpbin([provider()]);
    const out = await through(filters, { path: '/headers', headers: { 'x-ext-authz': 'deny' } });
    assert.equal(out.status, 403);
    assert.equal(out.body, 'denied by ext_authz for not found header `x-ext-authz: allow` in the request');
    assert.equal(out.details, 'ext_authz_denied');
    assert.equal(out.responseHeaders['x-ext-authz-check-result'], 'denied');
  });

  test('a request no CUSTOM policy covers is not checked', async () => {
    const { filters } = httpbin([provider()]);
    const before = authorizer.checks.length;
    assert.equal((await through(filters, { path: '/ip', headers: { 'x-ext-authz': 'deny' } })).status, 200);
    assert.equal(authorizer.checks.length, before);
  });

  test('an authorizer that is down: 403 ext_authz_error, or through with failOpen', async () => {
    const down = new Authorizer();
    await down.start();
    const port = down.port;
    await down.stop();
    const closed = httpbin([provider()], () => port);
    const out = await through(closed.filters, { path: '/headers', headers: { 'x-ext-authz': 'allow' } });
    assert.deepEqual([out.status, out.details], [403, 'ext_authz_error']);
    const open = httpbin([provider({ failOpen: true })], () => port);
    assert.equal((await through(open.filters, { path: '/headers' })).status, 200);
    const custom = httpbin([provider({ statusOnError: '503' })], () => port);
    assert.equal((await through(custom.filters, { path: '/headers' })).status, 503);
  });

  test('an authorizer that does not answer: given up after the timeout', async () => {
    authorizer.hang = true;
    try {
      const { filters } = httpbin([provider({ timeout: '0.2s' })]);
      const started = performance.now();
      const out = await through(filters, { path: '/headers', headers: { 'x-ext-authz': 'allow' } });
      assert.deepEqual([out.status, out.details], [403, 'ext_authz_error']);
      assert.ok(performance.now() - started < 5_000);
    } finally {
      authorizer.hang = false;
    }
  });

  test('a CUSTOM policy whose provider is not configured fails closed', async () => {
    const { list, filters } = httpbin([]);
    assert.deepEqual(list.map((f) => f.name), ['sinew.filters.http.rbac']);
    const out = await through(filters, { path: '/headers', headers: { 'x-ext-authz': 'allow' } });
    assert.deepEqual([out.status, out.body], [403, 'RBAC: access denied']);
    assert.equal((await through(filters, { path: '/ip' })).status, 200);
  });
});
