/**
 * AuthorizationPolicy and RequestAuthentication enforced by a running proxy, from the YAML of
 * istio.io's security tasks (test/fixtures/istio/data/istio.io/security, verbatim; see its
 * README) with the results the tasks print: each proxy runs the config the compiler makes for
 * the workload (its inbound or gateway listeners), in front of a real echo server, and every
 * request goes over a real socket.
 *
 * Principals need mutual TLS between sidecars: here the inbound listener terminates
 * ISTIO_MUTUAL (permissive, so plaintext is served beside it) with certificates minted by
 * openssl for the test, and callers present a certificate carrying their SPIFFE ID. Tokens
 * are signed by a key made for the test and served as a JWKS by a local HTTP server; the
 * CUSTOM provider is a local HTTP authorizer shaped like Istio's sample ext-authz.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { ExtensionProvider } from '../../src/api/mesh-config.js';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import type { WorkloadInstance } from '../../src/registry/registry.js';
import { channels, type RequestEvent } from '../../src/proxy/events.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { bookinfo, compile, parse, repoRoot, workload, type ProxyOptions } from '../compiler/support/mesh.js';
import { startEcho, type EchoServer } from './support/echo.js';

const TASKS = path.join(repoRoot, 'test/fixtures/istio/data/istio.io/security');
/** The JWKS URL the istio.io tasks name; the tests serve their own key set instead. */
const ISTIO_SAMPLE_JWKS = 'https://raw.githubusercontent.com/istio/istio/master/security/tools/jwt/samples/jwks.json';

function task(file: string, replace: Record<string, string> = {}): Resource[] {
  let text = readFileSync(path.join(TASKS, file), 'utf8');
  for (const [from, to] of Object.entries(replace)) text = text.replaceAll(from, to);
  return parse(text, file);
}

// === a running proxy for one workload ===

interface Running {
  readonly port: number;
  readonly proxy: Proxy;
  close(): Promise<void>;
}

/** Starts a proxy with `config`'s listeners of `direction` only (port 0), its clusters as compiled. */
async function run(config: ProxyConfig, direction: 'inbound' | 'gateway', edit: (c: ProxyConfig) => ProxyConfig = (c) => c): Promise<Running> {
  const listeners = config.listeners.filter((l) => l.direction === direction).map((l) => ({ ...l, address: { host: '127.0.0.1', port: 0 } }));
  assert.ok(listeners.length > 0, `the config has ${direction} listeners`);
  const proxy = createProxy({ config: edit({ ...config, listeners }), telemetry: false });
  try {
    await proxy.start();
  } catch (e) {
    await proxy.close({ drainMs: 0 });
    throw e;
  }
  return { proxy, port: proxy.listenerAddresses()[listeners[0].name].port, close: () => proxy.close({ drainMs: 0 }) };
}

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function request(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; tls?: { ca: string; cert?: string; key?: string } } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const common = { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: { host: 'httpbin.foo:8000', ...opts.headers }, agent: false };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    };
    const req = opts.tls
      ? // The mesh checks the server's SPIFFE ID, not a host name.
        https.request({ ...common, ca: opts.tls.ca, cert: opts.tls.cert, key: opts.tls.key, checkServerIdentity: () => undefined }, onResponse)
      : http.request(common, onResponse);
    req.on('error', reject);
    req.end();
  });
}

/** Status and body (the proxy's local replies end their text with a newline). */
const denied = (r: Reply) => [r.status, r.body.trimEnd()];
const RBAC_DENIED = [403, 'RBAC: access denied'];

// === authz-deny on httpbin ===

const HTTPBIN = `
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
`;
const httpbinWorkload = workload('httpbin', { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' }, ports: [{ name: 'http', containerPort: 80 }] });

/** httpbin's sidecar, its app the echo server. */
function httpbinSidecar(app: EchoServer, resources: Resource[], more: { instances?: [string, WorkloadInstance[]][]; providers?: ExtensionProvider[] } = {}): ProxyConfig {
  return compile([...parse(HTTPBIN), httpbinWorkload, ...resources], new Map([['foo/httpbin', [{ name: 'httpbin-0', address: '127.0.0.1', ports: { 80: app.port } }]], ...(more.instances ?? [])]), {
    workload: 'httpbin',
    namespace: 'foo',
    labels: { app: 'httpbin', version: 'v1' },
    ports: { inbound: [{ containerPort: 80, listen: { host: '127.0.0.1', port: 0 }, app: { host: '127.0.0.1', port: app.port } }] },
    ...(more.providers ? { mesh: { meshTelemetry: { extensionProviders: more.providers } } } : {}),
  });
}

describe('a running sidecar enforces AuthorizationPolicy (istio.io authz-deny)', () => {
  let app: EchoServer;
  before(async () => {
    app = await startEcho('httpbin');
  });
  after(() => app.close());

  test('regression: an ALLOW policy without rules (`spec: {}`) was accepted and every request passed', async () => {
    const allowNothing = parse('apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: foo}\nspec: {}\n');
    const sidecar = await run(httpbinSidecar(app, allowNothing), 'inbound');
    try {
      const seen = app.seen.length;
      const r = await request(sidecar.port, { path: '/headers' });
      assert.deepEqual(denied(r), RBAC_DENIED);
      assert.equal(r.headers['x-sinew-response-flags'], 'RBAC');
      assert.equal(r.headers['x-sinew-response-details'], 'rbac_access_denied_matched_policy[none]');
      assert.equal(app.seen.length, seen, 'the app never saw the request');
    } finally {
      await sidecar.close();
    }
  });

  test('deny-method-get: GET 403, POST 200', async () => {
    const sidecar = await run(httpbinSidecar(app, task('authorization/authz-deny/snip_explicitly_deny_a_request_1.yaml')), 'inbound');
    try {
      const get = await request(sidecar.port, { path: '/get' });
      assert.deepEqual(denied(get), RBAC_DENIED);
      assert.equal(get.headers['x-sinew-response-details'], 'rbac_access_denied_matched_policy[ns[foo]-policy[deny-method-get]]');
      assert.equal((await request(sidecar.port, { method: 'POST', path: '/post' })).status, 200);
    } finally {
      await sidecar.close();
    }
  });

  test('deny-method-get unless x-token: admin; then allow-path-ip beside it', async () => {
    const denyUnlessAdmin = task('authorization/authz-deny/snip_explicitly_deny_a_request_4.yaml');
    let sidecar = await run(httpbinSidecar(app, denyUnlessAdmin), 'inbound');
    try {
      assert.equal((await request(sidecar.port, { path: '/get', headers: { 'x-token': 'admin' } })).status, 200);
      assert.deepEqual(denied(await request(sidecar.port, { path: '/get', headers: { 'x-token': 'guest' } })), RBAC_DENIED);
    } finally {
      await sidecar.close();
    }
    sidecar = await run(httpbinSidecar(app, [...denyUnlessAdmin, ...task('authorization/authz-deny/snip_explicitly_deny_a_request_7.yaml')]), 'inbound');
    try {
      assert.equal((await request(sidecar.port, { path: '/ip', headers: { 'x-token': 'admin' } })).status, 200);
      assert.deepEqual(denied(await request(sidecar.port, { path: '/get', headers: { 'x-token': 'admin' } })), RBAC_DENIED);
    } finally {
      await sidecar.close();
    }
  });

  test('dry-run: the DENY is evaluated and recorded, never applied', async () => {
    const dryRun = task('authorization/authz-deny/snip_explicitly_deny_a_request_1.yaml').map((r) => ({ ...r, metadata: { ...r.metadata, annotations: { 'istio.io/dry-run': 'true' } } }));
    const sidecar = await run(httpbinSidecar(app, dryRun), 'inbound');
    const events: RequestEvent[] = [];
    const listen = (e: unknown) => events.push(e as RequestEvent);
    channels.request.subscribe(listen);
    try {
      assert.equal((await request(sidecar.port, { path: '/get' })).status, 200);
      assert.equal(sidecar.proxy.stats.get('http.rbac.shadow_denied'), 1);
      const event = events.find((e) => e.path === '/get');
      assert.equal(event?.dynamicMetadata?.['envoy.filters.http.rbac:istio_dry_run_shadow_engine_result'], 'denied');
    } finally {
      channels.request.unsubscribe(listen);
      await sidecar.close();
    }
  });

  test('a lower-case method is refused (400) before it can slip past `methods: ["GET"]`', async () => {
    const sidecar = await run(httpbinSidecar(app, task('authorization/authz-deny/snip_explicitly_deny_a_request_1.yaml')), 'inbound');
    try {
      const socket = net.connect(sidecar.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => {});
      try {
        await once(socket, 'connect');
        socket.write('get /get HTTP/1.1\r\nHost: httpbin.foo:8000\r\nConnection: close\r\n\r\n');
        await once(socket, 'close');
      } finally {
        socket.destroy();
      }
      assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 400 /);
    } finally {
      await sidecar.close();
    }
  });
});

// === CUSTOM: an HTTP authorizer (istio.io ext-authz task's sample) ===

describe('a running sidecar calls the CUSTOM provider (envoyExtAuthzHttp)', () => {
  let app: EchoServer;
  const checks: http.IncomingHttpHeaders[] = [];
  // Istio's samples/extauthz HTTP authorizer: allows requests with `x-ext-authz: allow`.
  const authorizer = http.createServer((req, res) => {
    checks.push(req.headers);
    if (req.headers['x-ext-authz'] === 'allow') res.writeHead(200, { 'x-ext-authz-check-result': 'allowed' }).end();
    else res.writeHead(403, { 'x-ext-authz-check-result': 'denied', 'content-type': 'text/plain' }).end('denied by ext_authz for not found header `x-ext-authz: allow` in the request');
  });
  before(async () => {
    app = await startEcho('httpbin');
    await new Promise<void>((r) => authorizer.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    authorizer.closeAllConnections();
    await new Promise<void>((r) => authorizer.close(() => r()));
    await app.close();
  });

  const EXT_AUTHZ = `
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

  test('/headers is checked: allowed with the header, denied with the authorizer\'s reply without; /ip is not checked', async () => {
    const providers: ExtensionProvider[] = [
      { name: 'sample-ext-authz-http', envoyExtAuthzHttp: { service: 'ext-authz.foo.svc.cluster.local', port: 8000, includeRequestHeadersInCheck: ['x-ext-authz'], headersToUpstreamOnAllow: ['x-ext-authz-check-result'], headersToDownstreamOnDeny: ['x-ext-authz-check-result', 'content-type'] } },
    ];
    const port = (authorizer.address() as AddressInfo).port;
    const resources = [...parse(EXT_AUTHZ), workload('ext-authz', { namespace: 'foo', labels: { app: 'ext-authz' }, ports: [{ name: 'http', containerPort: 8000 }] })];
    const config = httpbinSidecar(app, resources, { providers, instances: [['foo/ext-authz', [{ name: 'ext-authz-0', address: '127.0.0.1', ports: { 8000: port } }]]] });
    const sidecar = await run(config, 'inbound');
    try {
      const allowed = await request(sidecar.port, { path: '/headers', headers: { 'x-ext-authz': 'allow' } });
      assert.equal(allowed.status, 200);
      assert.equal((JSON.parse(allowed.body) as { headers: Record<string, string> }).headers['x-ext-authz-check-result'], 'allowed', 'the authorizer\'s header reached the app');
      const deniedReply = await request(sidecar.port, { path: '/headers', headers: { 'x-ext-authz': 'deny' } });
      assert.deepEqual([deniedReply.status, deniedReply.body.trimEnd(), deniedReply.headers['x-ext-authz-check-result']], [403, 'denied by ext_authz for not found header `x-ext-authz: allow` in the request', 'denied']);
      assert.equal(deniedReply.headers['x-sinew-response-flags'], 'UAEX');
      const before = checks.length;
      assert.equal((await request(sidecar.port, { path: '/ip', headers: { 'x-ext-authz': 'deny' } })).status, 200);
      assert.equal(checks.length, before, '/ip is not sent to the authorizer');
    } finally {
      await sidecar.close();
    }
  });
});

// === end-user authentication: RequestAuthentication with a JWKS served locally ===

interface Issuer {
  readonly jwksUri: string;
  fetches: number;
  /** `expiresIn`: a duration (`1h`) or a time in epoch seconds. */
  token(claims: Record<string, unknown>, opts?: { expiresIn?: string | number; key?: 'rogue' }): Promise<string>;
  close(): Promise<void>;
}

async function startIssuer(): Promise<Issuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const rogue = await generateKeyPair('RS256');
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }] });
  const issuer = { fetches: 0 } as Issuer & { fetches: number };
  const server = http.createServer((req, res) => {
    issuer.fetches++;
    if (req.url !== '/jwks.json') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sign = (key: CryptoKey, claims: Record<string, unknown>, expiresIn: string | number) =>
    new SignJWT({ iss: 'testing@secure.istio.io', sub: 'testing@secure.istio.io', ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'JWT' }).setIssuedAt().setExpirationTime(expiresIn).sign(key);
  return Object.assign(issuer, {
    jwksUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    token: (claims: Record<string, unknown>, opts: { expiresIn?: string | number; key?: 'rogue' } = {}) => sign(opts.key === 'rogue' ? rogue.privateKey : privateKey, claims, opts.expiresIn ?? '1h'),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  });
}

describe('a running sidecar validates JWTs (istio.io authz-jwt)', () => {
  let app: EchoServer;
  let issuer: Issuer;
  before(async () => {
    app = await startEcho('httpbin');
    issuer = await startIssuer();
  });
  after(async () => {
    await issuer.close();
    await app.close();
  });
  const jwt = () => task('authorization/authz-jwt/snip_allow_requests_with_valid_jwt_and_listtyped_claims_1.yaml', { [ISTIO_SAMPLE_JWKS]: issuer.jwksUri });

  test('an invalid token is 401 with a challenge; no token passes with no identity; a valid one passes', async () => {
    const sidecar = await run(httpbinSidecar(app, jwt()), 'inbound');
    try {
      const bad = await request(sidecar.port, { path: '/headers', headers: { authorization: 'Bearer invalidToken' } });
      assert.deepEqual(denied(bad), [401, 'Jwt is not in the form of Header.Payload.Signature']);
      assert.match(String(bad.headers['www-authenticate']), /^Bearer realm="http:\/\/httpbin\.foo:8000\/headers", error="invalid_token"$/);
      const forged = await request(sidecar.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({}, { key: 'rogue' })}` } });
      assert.deepEqual(denied(forged), [401, 'Jwt verification fails']);
      const expired = await request(sidecar.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({}, { expiresIn: Math.floor(Date.now() / 1000) - 3600 })}` } });
      assert.deepEqual(denied(expired), [401, 'Jwt is expired']);
      assert.equal((await request(sidecar.port, { path: '/headers' })).status, 200);
      assert.equal((await request(sidecar.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({})}` } })).status, 200);
      assert.ok(issuer.fetches >= 1, 'the JWKS was fetched from jwksUri');
    } finally {
      await sidecar.close();
    }
  });

  test('require-jwt: no token 403; a valid token 200; then the groups claim must hold group1', async () => {
    let sidecar = await run(httpbinSidecar(app, [...jwt(), ...task('authorization/authz-jwt/snip_allow_requests_with_valid_jwt_and_listtyped_claims_4.yaml')]), 'inbound');
    try {
      assert.deepEqual(denied(await request(sidecar.port, { path: '/headers' })), RBAC_DENIED);
      assert.equal((await request(sidecar.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({})}` } })).status, 200);
    } finally {
      await sidecar.close();
    }
    sidecar = await run(httpbinSidecar(app, [...jwt(), ...task('authorization/authz-jwt/snip_allow_requests_with_valid_jwt_and_listtyped_claims_8.yaml')]), 'inbound');
    try {
      assert.equal((await request(sidecar.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({ groups: ['group1', 'group2'] })}` } })).status, 200);
      assert.deepEqual(denied(await request(sidecar.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({ groups: ['group2'] })}` } })), RBAC_DENIED);
      assert.deepEqual(denied(await request(sidecar.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({})}` } })), RBAC_DENIED);
    } finally {
      await sidecar.close();
    }
  });
});

// === authn-policy at the ingress gateway: per-path tokens ===

/** httpbin's Gateway (port 80, every host), as istio.io's ingress tasks make it. */
const HTTPBIN_GATEWAY = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: httpbin-gateway, namespace: foo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
`;

/** A VirtualService routing everything at httpbin-gateway to httpbin. */
const HTTPBIN_ROUTE_ALL = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: foo}
spec:
  hosts: ["*"]
  gateways: [httpbin-gateway]
  http:
  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
`;

/** The ingress gateway's config (istio-system, `istio: ingressgateway`) with httpbin behind it. */
function ingressGateway(app: EchoServer, resources: Resource[], mesh?: ProxyOptions['mesh']): ProxyConfig {
  return compile([...parse(HTTPBIN), httpbinWorkload, ...resources], new Map([['foo/httpbin', [{ name: 'httpbin-0', address: '127.0.0.1', ports: { 80: app.port } }]]]), {
    mode: 'router',
    workload: 'istio-ingressgateway',
    namespace: 'istio-system',
    labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
    ports: { gateway: { 80: 0 } },
    ...(mesh ? { mesh } : {}),
  });
}

describe('a running ingress gateway authenticates end users (istio.io authn-policy: end-user, require a valid token, per path)', () => {
  let app: EchoServer;
  let issuer: Issuer;
  before(async () => {
    app = await startEcho('httpbin');
    issuer = await startIssuer();
  });
  after(async () => {
    await issuer.close();
    await app.close();
  });

  test('end-user authentication: an invalid token 401, none or a valid one 200; then require-a-valid-token: none 403 (DENY notRequestPrincipals)', async () => {
    const authn = task('authentication/authn-policy/snip_enduser_authentication_5.yaml', { [ISTIO_SAMPLE_JWKS]: issuer.jwksUri });
    const routes = parse(HTTPBIN_GATEWAY + '---' + HTTPBIN_ROUTE_ALL);
    const token = await issuer.token({});
    let gateway = await run(ingressGateway(app, [...routes, ...authn]), 'gateway');
    try {
      assert.deepEqual(denied(await request(gateway.port, { path: '/headers', headers: { authorization: 'Bearer deadbeef' } })), [401, 'Jwt is not in the form of Header.Payload.Signature']);
      assert.equal((await request(gateway.port, { path: '/headers' })).status, 200);
      assert.equal((await request(gateway.port, { path: '/headers', headers: { authorization: `Bearer ${token}` } })).status, 200);
    } finally {
      await gateway.close();
    }
    gateway = await run(ingressGateway(app, [...routes, ...authn, ...task('authentication/authn-policy/snip_require_a_valid_token_1.yaml')]), 'gateway');
    try {
      assert.deepEqual(denied(await request(gateway.port, { path: '/headers' })), RBAC_DENIED);
      assert.equal((await request(gateway.port, { path: '/headers', headers: { authorization: `Bearer ${token}` } })).status, 200);
      assert.equal((await request(gateway.port, { path: '/headers', headers: { authorization: 'Bearer deadbeef' } })).status, 401);
    } finally {
      await gateway.close();
    }
  });

  test('frontend-ingress: /headers without a token 403, with one 200; /ip 200 either way; a bad token 401 everywhere', async () => {
    const config = ingressGateway(app, [
      ...parse(HTTPBIN_GATEWAY + '---' + HTTPBIN_ROUTE_ALL),
      ...task('authentication/authn-policy/snip_enduser_authentication_5.yaml', { [ISTIO_SAMPLE_JWKS]: issuer.jwksUri }),
      ...task('authentication/authn-policy/snip_require_valid_tokens_perpath_1.yaml'),
    ]);
    const gateway = await run(config, 'gateway');
    try {
      const token = await issuer.token({});
      assert.deepEqual(denied(await request(gateway.port, { path: '/headers' })), RBAC_DENIED);
      assert.equal((await request(gateway.port, { path: '/headers', headers: { authorization: `Bearer ${token}` } })).status, 200);
      assert.equal((await request(gateway.port, { path: '/ip' })).status, 200);
      assert.equal((await request(gateway.port, { path: '/ip', headers: { authorization: 'Bearer deadbeef' } })).status, 401);
      assert.equal((await request(gateway.port, { path: '/headers', headers: { authorization: 'Bearer deadbeef' } })).status, 401);
    } finally {
      await gateway.close();
    }
  });
});

// === authz-ingress: IP-based allow and deny lists at the ingress gateway ===

describe('a running ingress gateway applies IP allow and deny lists (istio.io authz-ingress)', () => {
  let app: EchoServer;
  before(async () => {
    app = await startEcho('httpbin');
  });
  after(async () => {
    await app.close();
  });
  /** The gateway with httpbin routed and the task's policy, `$CLIENT_IP` replaced by `client`. */
  const gatewayWith = (snip: number, client: string, mesh?: ProxyOptions['mesh']) =>
    ingressGateway(app, [...parse(HTTPBIN_GATEWAY + '---' + HTTPBIN_ROUTE_ALL), ...task(`authorization/authz-ingress/snip_ipbased_allow_list_and_deny_list_${snip}.yaml`, { $CLIENT_IP: client })], mesh);
  const statusVia = async (config: ProxyConfig, xff?: string) => {
    const gateway = await run(config, 'gateway');
    try {
      return denied(await request(gateway.port, { path: '/headers', headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }));
    } finally {
      await gateway.close();
    }
  };

  test('ipBlocks (a load balancer that keeps the client address): 403 without the client, 200 with it; the DENY form 403', async () => {
    // The test's client connects from 127.0.0.1: that is the gateway's peer (`source.ip`).
    assert.deepEqual(await statusVia(gatewayWith(1, '127.0.0.1')), RBAC_DENIED);
    assert.equal((await statusVia(gatewayWith(10, '127.0.0.1')))[0], 200);
    assert.deepEqual(await statusVia(gatewayWith(15, '127.0.0.1')), RBAC_DENIED);
    // ipBlocks never read X-Forwarded-For, trusted hops or not.
    assert.deepEqual(await statusVia(gatewayWith(1, '127.0.0.1', { gatewayNumTrustedProxies: 1 }), '5.6.7.8'), RBAC_DENIED);
  });

  test('regression: remoteIpBlocks behind an HTTP load balancer (numTrustedProxies: 1) ignored meshConfig\'s gatewayTopology', async () => {
    const lb = { gatewayNumTrustedProxies: 1 };
    // The load balancer appends the client it saw: 10.0.0.9.
    assert.deepEqual(await statusVia(gatewayWith(2, '10.0.0.9', lb), '10.0.0.9'), RBAC_DENIED);
    assert.equal((await statusVia(gatewayWith(11, '10.0.0.9', lb), '10.0.0.9'))[0], 200);
    assert.equal((await statusVia(gatewayWith(11, '10.0.0.9', lb), '1.1.1.1, 10.0.0.9'))[0], 200, 'only the trusted hop counts');
    assert.deepEqual(await statusVia(gatewayWith(11, '10.0.0.9', lb), '10.0.0.9, 1.1.1.1'), RBAC_DENIED);
    assert.deepEqual(await statusVia(gatewayWith(11, '10.0.0.9', lb)), RBAC_DENIED, 'no X-Forwarded-For: the peer is the client');
    assert.deepEqual(await statusVia(gatewayWith(16, '10.0.0.9', lb), '10.0.0.9'), RBAC_DENIED);
    assert.equal((await statusVia(gatewayWith(16, '10.0.0.9', lb), '10.0.0.8'))[0], 200);
  });

  test('without trusted proxies a client\'s own X-Forwarded-For is not believed', async () => {
    assert.deepEqual(await statusVia(gatewayWith(11, '10.0.0.9'), '10.0.0.9'), RBAC_DENIED);
    assert.equal((await statusVia(gatewayWith(16, '10.0.0.9'), '10.0.0.9'))[0], 200);
  });
});

// === jwt-route: routing on JWT claims at the ingress gateway ===

/** Sends `head` as written (a header name no HTTP client would send) and returns the status line's code. */
async function rawStatus(port: number, head: string): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  try {
    socket.setEncoding('latin1');
    let got = '';
    socket.on('data', (c: string) => (got += c));
    socket.on('error', () => undefined);
    socket.write(head);
    while (!/^HTTP\/1\.1 \d{3}/.test(got)) await once(socket, 'data');
    return Number(got.slice(9, 12));
  } finally {
    socket.destroy();
  }
}

describe('a running ingress gateway routes on JWT claims (istio.io jwt-route)', () => {
  let app: EchoServer;
  let issuer: Issuer;
  before(async () => {
    app = await startEcho('httpbin');
    issuer = await startIssuer();
  });
  after(async () => {
    await issuer.close();
    await app.close();
  });
  const jwtRoute = () =>
    ingressGateway(app, [
      ...parse(HTTPBIN_GATEWAY),
      ...task('authentication/jwt-route/snip_configuring_ingress_routing_based_on_jwt_claims_1.yaml', { [ISTIO_SAMPLE_JWKS]: issuer.jwksUri }),
      ...task('authentication/jwt-route/snip_configuring_ingress_routing_based_on_jwt_claims_2.yaml'),
    ]);

  test('regression: no token 404; groups holding group1 200; a token without it 404; an invalid token 401 (the claim route never matched)', async () => {
    const gateway = await run(jwtRoute(), 'gateway');
    try {
      const none = await request(gateway.port, { path: '/headers' });
      assert.deepEqual([none.status, none.headers['x-sinew-response-flags']], [404, 'NR']);
      const group1 = await request(gateway.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({ groups: ['group1', 'group2'] })}` } });
      assert.equal(group1.status, 200);
      assert.equal((JSON.parse(group1.body) as { path: string }).path, '/headers', 'the backend answered');
      assert.equal((await request(gateway.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({})}` } })).status, 404);
      assert.equal((await request(gateway.port, { path: '/headers', headers: { authorization: `Bearer ${await issuer.token({ groups: ['group2'] })}` } })).status, 404);
      assert.equal((await request(gateway.port, { path: '/headers', headers: { authorization: 'Bearer some.invalid.token' } })).status, 401);
      // The claim condition is ANDed with the uri prefix of the same match.
      assert.equal((await request(gateway.port, { path: '/ip', headers: { authorization: `Bearer ${await issuer.token({ groups: ['group1'] })}` } })).status, 404);
    } finally {
      await gateway.close();
    }
  });

  test('the route chosen after the token is verified brings its own filters: a fault on the claim route aborts, the catch-all passes', async () => {
    const config = ingressGateway(app, [
      ...parse(HTTPBIN_GATEWAY),
      ...task('authentication/jwt-route/snip_configuring_ingress_routing_based_on_jwt_claims_1.yaml', { [ISTIO_SAMPLE_JWKS]: issuer.jwksUri }),
      ...parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: foo}
spec:
  hosts: ["*"]
  gateways: [httpbin-gateway]
  http:
  - match: [{headers: {"@request.auth.claims[team]": {exact: blue}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: httpbin, port: {number: 8000}}}]
  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
`),
    ]);
    const gateway = await run(config, 'gateway');
    try {
      assert.equal((await request(gateway.port, { path: '/get' })).status, 200);
      assert.equal((await request(gateway.port, { path: '/get', headers: { authorization: `Bearer ${await issuer.token({ team: 'red' })}` } })).status, 200);
      const blue = await request(gateway.port, { path: '/get', headers: { authorization: `Bearer ${await issuer.token({ team: 'blue' })}` } });
      assert.deepEqual([blue.status, blue.headers['x-sinew-response-flags']], [418, 'FI']);
    } finally {
      await gateway.close();
    }
  });

  test('a header named @request.auth.claims.groups from the client never satisfies the claim match', async () => {
    const gateway = await run(jwtRoute(), 'gateway');
    try {
      const reached = app.seen.length;
      const forged = (extra: string) => `GET /headers HTTP/1.1\r\nhost: httpbin.foo:8000\r\n@request.auth.claims.groups: group1\r\n${extra}connection: close\r\n\r\n`;
      // `@` is not a token character (RFC 9110 5.1): the codec refuses the request outright, and
      // the route's claim condition reads only the verified token in any case (route-match.test.ts).
      assert.equal(await rawStatus(gateway.port, forged('')), 400);
      assert.equal(await rawStatus(gateway.port, forged(`authorization: Bearer ${await issuer.token({ groups: ['group2'] })}\r\n`)), 400);
      assert.equal(app.seen.length, reached, 'nothing reached httpbin');
    } finally {
      await gateway.close();
    }
  });
});

// === principals over mutual TLS (istio.io authz-http on Bookinfo) ===

interface Pki {
  dir: string;
  ca: string;
  /** Certificates carrying each service account's SPIFFE ID, by service account. */
  leaf(serviceAccount: string): { cert: string; key: string };
}

function makePki(): Pki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sinew-authz-pki-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/O=cluster.local');
  const made = new Map<string, { cert: string; key: string }>();
  return {
    dir,
    ca: readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    leaf(sa) {
      let pair = made.get(sa);
      if (pair === undefined) {
        writeFileSync(path.join(dir, `${sa}.ext`), `subjectAltName=URI:spiffe://cluster.local/ns/default/sa/${sa}\n`);
        openssl('req', ...ec, '-keyout', `${sa}.key`, '-out', `${sa}.csr`, '-subj', `/O=${sa}`);
        openssl('x509', '-req', '-in', `${sa}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${sa}.pem`, '-days', '1', '-extfile', `${sa}.ext`);
        pair = { cert: readFileSync(path.join(dir, `${sa}.pem`), 'utf8'), key: readFileSync(path.join(dir, `${sa}.key`), 'utf8') };
        made.set(sa, pair);
      }
      return pair;
    },
  };
}

describe('a running sidecar matches principals from the peer certificate (istio.io authz-http)', () => {
  let app: EchoServer;
  let pki: Pki;
  before(async () => {
    app = await startEcho('details');
    pki = makePki();
  });
  after(async () => {
    await app.close();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  /**
   * details' sidecar as compiled, its inbound listener terminating ISTIO_MUTUAL with plaintext
   * beside it. (Mutual TLS between sidecars is compiled from PeerAuthentication elsewhere; this
   * listener is given it by hand so that the filters see a verified peer.)
   */
  function detailsSidecar(policies: Resource[]): Promise<Running> {
    const { resources, instances } = bookinfo();
    const options: ProxyOptions = {
      workload: 'details-v1',
      labels: { app: 'details', version: 'v1' },
      ports: { inbound: [{ containerPort: 9080, listen: { host: '127.0.0.1', port: 0 }, app: { host: '127.0.0.1', port: app.port } }] },
    };
    const config = compile([...resources, ...policies], instances, options);
    const own = pki.leaf('bookinfo-details');
    return run(config, 'inbound', (c) => ({
      ...c,
      secrets: [...(c.secrets ?? []).filter((s) => s.name !== 'default' && s.name !== 'ROOTCA'), { name: 'default', certificateChainPem: own.cert, privateKeyPem: own.key }, { name: 'ROOTCA', trustedCaPem: pki.ca }],
      listeners: c.listeners.map((l) => ({ ...l, tls: { mode: 'ISTIO_MUTUAL' as const, certificate: 'default', validationContext: 'ROOTCA', permissive: true } })),
    }));
  }

  test('details-viewer: GET from the productpage service account only, and only over mTLS', async () => {
    const steps = [1, 2, 3].flatMap((n) => task(`authorization/authz-http/snip_configure_access_control_for_workloads_using_http_traffic_${n}.yaml`));
    const sidecar = await detailsSidecar(steps);
    try {
      const productpage = { ca: pki.ca, ...pki.leaf('bookinfo-productpage') };
      const sleep = { ca: pki.ca, ...pki.leaf('sleep') };
      assert.equal((await request(sidecar.port, { path: '/details/0', headers: { host: 'details:9080' }, tls: productpage })).status, 200);
      assert.deepEqual(denied(await request(sidecar.port, { method: 'POST', path: '/details/0', headers: { host: 'details:9080' }, tls: productpage })), RBAC_DENIED);
      assert.deepEqual(denied(await request(sidecar.port, { path: '/details/0', headers: { host: 'details:9080' }, tls: sleep })), RBAC_DENIED);
      // Without mutual TLS there is no principal: the ALLOW rule cannot match.
      assert.deepEqual(denied(await request(sidecar.port, { path: '/details/0', headers: { host: 'details:9080' } })), RBAC_DENIED);
    } finally {
      await sidecar.close();
    }
  });

  test('allow-nothing denies even a verified peer', async () => {
    const sidecar = await detailsSidecar(task('authorization/authz-http/snip_configure_access_control_for_workloads_using_http_traffic_1.yaml'));
    try {
      assert.deepEqual(denied(await request(sidecar.port, { path: '/details/0', headers: { host: 'details:9080' }, tls: { ca: pki.ca, ...pki.leaf('bookinfo-productpage') } })), RBAC_DENIED);
    } finally {
      await sidecar.close();
    }
  });
});

// === TCP (istio.io authz-tcp): a denied connection is closed ===

describe('a running sidecar closes TCP connections a policy denies (istio.io authz-tcp)', () => {
  const TCP_ECHO = `
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: foo}
spec:
  selector: {app: tcp-echo}
  ports: [{name: tcp, port: 9000}, {name: tcp-other, port: 9001}, {name: tcp-third, port: 9002}]
`;
  const ports = [9000, 9001, 9002];
  let echo: net.Server;
  before(async () => {
    // tcp-echo: prefixes what it reads with "hello ", as Istio's sample does.
    echo = net.createServer((s) => {
      s.on('data', (d: Buffer) => s.write(`hello ${d.toString()}`));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  });
  after(() => new Promise<void>((r) => echo.close(() => r())));

  /** What each port answers to "port N": the echo, or `closed`. */
  async function answers(policies: Resource[]): Promise<Record<number, string>> {
    const appPort = (echo.address() as AddressInfo).port;
    const config = compile(
      [...parse(TCP_ECHO), workload('tcp-echo', { namespace: 'foo', labels: { app: 'tcp-echo' }, ports: ports.map((p) => ({ name: `tcp-${p}`, containerPort: p })) }), ...policies],
      new Map([['foo/tcp-echo', [{ name: 'tcp-echo-0', address: '127.0.0.1', ports: Object.fromEntries(ports.map((p) => [p, appPort])) }]]]),
      { workload: 'tcp-echo', namespace: 'foo', labels: { app: 'tcp-echo' }, ports: { inbound: ports.map((p) => ({ containerPort: p, listen: { host: '127.0.0.1', port: 0 }, app: { host: '127.0.0.1', port: appPort }, protocol: 'tcp' as const })) } },
    );
    const listeners = config.listeners.filter((l) => l.direction === 'inbound');
    const proxy = createProxy({ config: { ...config, listeners }, telemetry: false });
    try {
      await proxy.start();
      const out: Record<number, string> = {};
      for (const [i, p] of ports.entries()) {
        const socket = net.connect(proxy.listenerAddresses()[listeners[i].name].port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => {
          chunks.push(c);
          socket.end();
        });
        socket.on('error', () => {});
        try {
          await once(socket, 'connect');
          socket.write(`port ${p}`);
          await once(socket, 'close');
        } finally {
          socket.destroy();
        }
        out[p] = chunks.length > 0 ? Buffer.concat(chunks).toString() : 'closed';
      }
      return out;
    } finally {
      await proxy.close({ drainMs: 0 });
    }
  }
  const tcpTask = (n: string) => task(`authorization/authz-tcp/snip_configure_${n}.yaml`);

  test('no policy: every port echoes', async () => {
    assert.deepEqual(await answers([]), { 9000: 'hello port 9000', 9001: 'hello port 9001', 9002: 'hello port 9002' });
  });
  test('ALLOW ports 9000 and 9001: 9002 is closed', async () => {
    assert.deepEqual(await answers(tcpTask('allow_authorization_policy_for_a_tcp_workload_1')), { 9000: 'hello port 9000', 9001: 'hello port 9001', 9002: 'closed' });
  });
  test('ALLOW with an HTTP-only field (methods): nothing is allowed', async () => {
    assert.deepEqual(await answers(tcpTask('allow_authorization_policy_for_a_tcp_workload_5')), { 9000: 'closed', 9001: 'closed', 9002: 'closed' });
  });
  test('DENY with methods on port 9000: the whole port is denied', async () => {
    assert.deepEqual(await answers(tcpTask('deny_authorization_policy_for_a_tcp_workload_4')), { 9000: 'closed', 9001: 'hello port 9001', 9002: 'hello port 9002' });
  });
});
