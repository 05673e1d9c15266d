/**
 * RequestAuthentication with tokens signed by a test key whose JWKS a real local HTTP server
 * serves, time from a manual clock. The config comes from istio.io's authz-jwt task (its
 * jwksUri is reached through the injected fetch, as the proxy reaches it through the mesh).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ManualClock } from '../../src/core/clock.js';
import { createJwtAuthenticator } from '../../src/security/jwt.js';
import { createJwtAuthnFilterFactory, fetchJwksDirectly } from '../../src/proxy/http/filters/jwt-authn/index.js';
import { securityFilterFactories } from '../../src/proxy/http/filters/security-chain.js';
import { compile, parse, repoRoot, workload } from '../compiler/support/mesh.js';
import { compileHttpFilters, securityFiltersOf, through } from './chain-support.js';

const ISSUER = 'testing@secure.istio.io';
const NOW = Date.parse('2026-01-01T00:00:00Z');

interface Key {
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

function sign(key: Key, claims: Record<string, unknown>, opts: { iat?: number; exp?: number; nbf?: number } = {}): Promise<string> {
  const iat = opts.iat ?? Math.floor(NOW / 1000);
  const jwt = new SignJWT({ iss: ISSUER, sub: ISSUER, ...claims }).setProtectedHeader({ alg: 'RS256', kid: key.jwk.kid }).setIssuedAt(iat);
  jwt.setExpirationTime(opts.exp ?? iat + 3600);
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(key.privateKey);
}

/** The issuer's JWKS endpoint: serves `keys`, counts fetches, can fail or hang. */
class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  mode: 'serve' | 'fail' | 'hang' = 'serve';
  readonly server: Server = createServer((req, res) => {
    this.fetches++;
    if (this.mode === 'hang') return; // never answers; closed by closeAllConnections
    if (this.mode === 'fail') return void res.writeHead(503).end('down');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
  });
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks.json`;
  }
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const headers = (init: Record<string, string> = {}) => {
  const map = new Map(Object.entries(init));
  return { map, access: { get: (n: string) => map.get(n), set: (n: string, v: string) => void map.set(n, v), remove: (n: string) => void map.delete(n) } };
};

describe('JWT validation (RequestAuthentication)', () => {
  const jwks = new JwksServer();
  let key: Key;
  let otherKey: Key;
  const clock = new ManualClock(NOW);
  before(async () => {
    await jwks.start();
    key = await newKey('k1');
    otherKey = await newKey('k2');
    jwks.keys = [key.jwk];
  });
  after(() => jwks.stop());

  /** The issuer's real URI is fetched from the local server, as the proxy fetches it through the mesh. */
  const viaLocalServer = (uri: string, signal: AbortSignal) => fetchJwksDirectly(uri.startsWith('https://raw.githubusercontent.com/') ? jwks.url : uri, signal);
  const authenticator = (provider: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    createJwtAuthenticator(
      { providers: [{ issuer: ISSUER, fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }], fromParams: ['access_token'], fromCookies: [], jwks: JSON.stringify({ keys: [key.jwk] }), ...provider }], ...extra },
      { fetchJwks: viaLocalServer, now: () => clock.now() },
    );

  test('a valid token gives the identity, and is not forwarded', async () => {
    const h = headers({ authorization: `Bearer ${await sign(key, { groups: ['group1'] })}` });
    const out = await authenticator({}).authenticate({ headers: h.access, path: '/headers' });
    assert.ok(out.ok);
    assert.equal(out.auth?.principal, `${ISSUER}/${ISSUER}`);
    assert.deepEqual(out.auth?.claims.groups, ['group1']);
    assert.equal(h.map.has('authorization'), false);
  });

  test('no token: passes with no identity (DESIGN behaviour 9)', async () => {
    assert.deepEqual(await authenticator({}).authenticate({ headers: headers().access, path: '/' }), { ok: true });
  });

  const failures: [string, () => Promise<string>, Record<string, unknown>, string][] = [
    ['expired past the clock skew', () => sign(key, {}, { iat: NOW / 1000 - 7200, exp: NOW / 1000 - 61 }), {}, 'Jwt is expired'],
    ['not yet valid past the clock skew', () => sign(key, {}, { nbf: NOW / 1000 + 120 }), {}, 'Jwt not yet valid'],
    ['signed by another key', () => sign(otherKey, {}), {}, 'Jwt verification fails'],
    ['from an issuer with no rule', () => sign(key, { iss: 'someone@else' }), {}, 'Jwt issuer is not configured'],
    ['for another audience', () => sign(key, { aud: 'other' }), { audiences: ['httpbin'] }, 'Audiences in Jwt are not allowed'],
    ['not a JWT', async () => 'not.a.jwt', {}, 'Jwt is not in the form of Header.Payload.Signature'],
  ];
  for (const [what, token, provider, failure] of failures) {
    test(`a token ${what}: ${failure}`, async () => {
      const out = await authenticator(provider).authenticate({ headers: headers({ authorization: `Bearer ${await token()}` }).access, path: '/' });
      assert.equal(out.ok, false);
      assert.equal(!out.ok && out.failure, failure);
    });
  }

  test('clock skew: expired 30 s ago is still valid (Envoy allows 60 s)', async () => {
    const token = await sign(key, {}, { iat: NOW / 1000 - 3600, exp: NOW / 1000 - 30 });
    assert.equal((await authenticator({}).authenticate({ headers: headers({ authorization: `Bearer ${token}` }).access, path: '/' })).ok, true);
    assert.equal((await authenticator({}, { clockSkewSeconds: 0 }).authenticate({ headers: headers({ authorization: `Bearer ${token}` }).access, path: '/' })).ok, false);
  });

  test('a token verified once is refused once it expires (the verified-token cache checks time on every use)', async () => {
    const start = clock.now();
    const token = await sign(key, {}, { iat: start / 1000, exp: start / 1000 + 120 });
    const a = authenticator({});
    const use = () => a.authenticate({ headers: headers({ authorization: `Bearer ${token}` }).access, path: '/' });
    assert.equal((await use()).ok, true);
    clock.advance(150_000); // past exp, within the 60 s skew
    assert.equal((await use()).ok, true);
    clock.advance(60_000); // past exp + skew
    const out = await use();
    assert.equal(!out.ok && out.failure, 'Jwt is expired');
  });

  test('audiences: one of the token\'s is enough', async () => {
    const token = await sign(key, { aud: ['a', 'httpbin'] });
    assert.equal((await authenticator({ audiences: ['httpbin'] }).authenticate({ headers: headers({ authorization: `Bearer ${token}` }).access, path: '/' })).ok, true);
  });

  test('fromHeaders with a prefix, fromParams, fromCookies', async () => {
    const token = await sign(key, {});
    const a = authenticator({ fromHeaders: [{ name: 'x-jwt-assertion', prefix: 'Token ' }], fromParams: ['my_token'], fromCookies: ['session'] });
    const h = headers({ 'x-jwt-assertion': `Token ${token}` });
    const authOf = (o: Awaited<ReturnType<typeof a.authenticate>>) => (o.ok ? o.auth : undefined);
    assert.ok((await a.authenticate({ headers: h.access, path: '/' })).ok);
    assert.equal(h.map.has('x-jwt-assertion'), false);
    assert.ok(authOf(await a.authenticate({ headers: headers().access, path: `/x?a=1&my_token=${token}` })));
    assert.ok(authOf(await a.authenticate({ headers: headers({ cookie: `theme=dark; session=${token}` }).access, path: '/' })));
    // The default Authorization header is not looked at when locations are named.
    assert.equal(authOf(await a.authenticate({ headers: headers({ authorization: `Bearer ${token}` }).access, path: '/' })), undefined);
    // A bad token where the rule looks is refused, wherever it is.
    const bad = await sign(otherKey, {});
    assert.equal((await a.authenticate({ headers: headers({ cookie: `session=${bad}` }).access, path: '/' })).ok, false);
  });

  test('outputPayloadToHeader, outputClaimToHeaders (nested too), forwardOriginalToken', async () => {
    const token = await sign(key, { groups: ['g'], nested: { key1: 'value1' }, level: 3 });
    const h = headers({ authorization: `Bearer ${token}`, 'x-jwt-group': 'forged' });
    const a = authenticator({ outputPayloadToHeader: 'x-jwt-payload', outputClaimToHeaders: [{ header: 'x-jwt-key1', claim: 'nested.key1' }, { header: 'x-jwt-level', claim: 'level' }, { header: 'x-jwt-group', claim: 'group' }], forwardOriginalToken: true });
    assert.ok((await a.authenticate({ headers: h.access, path: '/' })).ok);
    assert.equal(h.map.get('authorization'), `Bearer ${token}`);
    assert.deepEqual(JSON.parse(Buffer.from(h.map.get('x-jwt-payload')!, 'base64url').toString()).nested, { key1: 'value1' });
    assert.equal(h.map.get('x-jwt-key1'), 'value1');
    assert.equal(h.map.get('x-jwt-level'), '3');
    assert.equal(h.map.has('x-jwt-group'), false, 'a client-sent header under an output name is not forwarded');
  });

  describe('jwksUri: fetched, cached, refreshed, with a timeout', () => {
    const remote = (extra: Record<string, unknown> = {}) => authenticator({ jwks: undefined, jwksUri: jwks.url, jwksTimeoutMs: 500, ...extra }, { jwksRefreshMs: 60_000 });

    test('fetched once, used until the refresh interval, then fetched again', async () => {
      jwks.mode = 'serve';
      jwks.keys = [key.jwk];
      const a = remote();
      const token = await sign(key, {});
      const before = jwks.fetches;
      const results = await Promise.all([1, 2, 3].map(() => a.authenticate({ headers: headers({ authorization: `Bearer ${token}` }).access, path: '/' })));
      assert.ok(results.every((r) => r.ok && r.auth !== undefined));
      assert.equal(jwks.fetches - before, 1, 'concurrent requests share one fetch');
      clock.advance(61_000);
      assert.ok((await a.authenticate({ headers: headers({ authorization: `Bearer ${token}` }).access, path: '/' })).ok);
      assert.equal(jwks.fetches - before, 2);
      // A failed refresh keeps the old keys in use.
      jwks.mode = 'fail';
      clock.advance(61_000);
      assert.ok((await a.authenticate({ headers: headers({ authorization: `Bearer ${token}` }).access, path: '/' })).ok);
      jwks.mode = 'serve';
    });

    test('a new key (rotation) is fetched when a token names it', async () => {
      jwks.keys = [key.jwk];
      const a = remote();
      assert.ok((await a.authenticate({ headers: headers({ authorization: `Bearer ${await sign(key, {})}` }).access, path: '/' })).ok);
      const rotated = await newKey('k3');
      jwks.keys = [key.jwk, rotated.jwk];
      clock.advance(31_000); // past the refetch cooldown, within the refresh interval
      assert.ok((await a.authenticate({ headers: headers({ authorization: `Bearer ${await sign(rotated, {})}` }).access, path: '/' })).ok);
    });

    test('an unreachable JWKS: 401 "Jwks remote fetch is failed"', async () => {
      jwks.mode = 'fail';
      const out = await remote().authenticate({ headers: headers({ authorization: `Bearer ${await sign(key, {})}` }).access, path: '/' });
      jwks.mode = 'serve';
      assert.equal(!out.ok && out.failure, 'Jwks remote fetch is failed');
      assert.match(!out.ok ? out.message : '', /HTTP 503/);
    });

    test('a JWKS that does not answer: given up after the timeout', async () => {
      jwks.mode = 'hang';
      const started = performance.now();
      const out = await remote({ jwksTimeoutMs: 200 }).authenticate({ headers: headers({ authorization: `Bearer ${await sign(key, {})}` }).access, path: '/' });
      jwks.mode = 'serve';
      assert.equal(!out.ok && out.failure, 'Jwks remote fetch is failed');
      assert.match(!out.ok ? out.message : '', /took more than 200 ms/);
      assert.ok(performance.now() - started < 5_000);
    });
  });

  test('the filter answers 401 with a Bearer challenge and the reason', async () => {
    const filter = createJwtAuthnFilterFactory({ fetchJwks: viaLocalServer, now: () => clock.now() }).compile({ providers: [{ issuer: ISSUER, jwks: JSON.stringify({ keys: [key.jwk] }), fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }], fromParams: [], fromCookies: [] }] });
    const out = await through([filter], { path: '/headers?x=1', headers: { authorization: `Bearer ${await sign(otherKey, {})}` } });
    assert.equal(out.status, 401);
    assert.equal(out.body, 'Jwt verification fails');
    assert.equal(out.details, 'jwt_authn_access_denied{Jwt_verification_fails}');
    assert.equal(out.responseHeaders['www-authenticate'], 'Bearer realm="http://httpbin.foo:8000/headers", error="invalid_token"');
  });

  test('a config the authenticator cannot use is refused when built', () => {
    const factory = createJwtAuthnFilterFactory({ fetchJwks: viaLocalServer, now: () => clock.now() });
    assert.throws(() => factory.compile({ providers: [{ issuer: ISSUER, jwks: '{"nokeys": 1}', fromHeaders: [], fromParams: [], fromCookies: [] }] }), /no "keys" list/);
    assert.throws(() => factory.compile({ providers: [{ issuer: ISSUER, fromHeaders: [], fromParams: [], fromCookies: [] }] }), /needs jwks or jwksUri/);
    assert.throws(() => factory.compile({ providers: [{ fromHeaders: [] }] }));
  });

  describe("istio.io's authz-jwt task on httpbin", () => {
    const fixture = (f: string) => readFileSync(path.join(repoRoot, 'test/fixtures/istio/data/istio.io/security/authorization/authz-jwt', f), 'utf8');
    const httpbin = `apiVersion: v1\nkind: Service\nmetadata: {name: httpbin, namespace: foo}\nspec:\n  selector: {app: httpbin}\n  ports: [{name: http, port: 8000, targetPort: 80}]\n`;
    const chain = (...files: string[]) => {
      const resources = [...parse([httpbin, ...files.map(fixture)].join('\n---\n')), workload('httpbin', { namespace: 'foo', labels: { app: 'httpbin' }, ports: [{ name: 'http', containerPort: 80 }] })];
      const config = compile(resources, new Map([['foo/httpbin', [{ name: 'httpbin-0', address: '127.0.0.1', ports: { 80: 28000 } }]]]), {
        workload: 'httpbin',
        namespace: 'foo',
        labels: { app: 'httpbin' },
        ports: { inbound: [{ containerPort: 80, listen: { host: '127.0.0.1', port: 28000 }, app: { host: '127.0.0.1', port: 38000 } }] },
      });
      const list = securityFiltersOf(config.listeners.find((l) => l.direction === 'inbound'));
      return compileHttpFilters(list, securityFilterFactories({ jwt: { fetchJwks: viaLocalServer, now: () => clock.now() }, extAuthz: { check: () => Promise.reject(new Error('no authorizer in this test')) } }));
    };

    test('RequestAuthentication alone: an invalid token 401, no token 200, a valid one 200', async () => {
      jwks.keys = [key.jwk];
      jwks.mode = 'serve';
      const filters = chain('snip_allow_requests_with_valid_jwt_and_listtyped_claims_1.yaml');
      assert.equal((await through(filters, { path: '/headers', headers: { authorization: 'Bearer invalidToken' } })).status, 401);
      assert.equal((await through(filters, { path: '/headers' })).status, 200);
      assert.equal((await through(filters, { path: '/headers', headers: { authorization: `Bearer ${await sign(key, {})}` } })).status, 200);
    });

    test('require-jwt: a valid token 200, no token 403 RBAC: access denied', async () => {
      const filters = chain('snip_allow_requests_with_valid_jwt_and_listtyped_claims_1.yaml', 'snip_allow_requests_with_valid_jwt_and_listtyped_claims_4.yaml');
      assert.equal((await through(filters, { path: '/headers', headers: { authorization: `Bearer ${await sign(key, {})}` } })).status, 200);
      const denied = await through(filters, { path: '/headers' });
      assert.deepEqual([denied.status, denied.body], [403, 'RBAC: access denied']);
    });

    test('groups claim: group1 200, without it 403', async () => {
      const filters = chain('snip_allow_requests_with_valid_jwt_and_listtyped_claims_1.yaml', 'snip_allow_requests_with_valid_jwt_and_listtyped_claims_8.yaml');
      assert.equal((await through(filters, { path: '/headers', headers: { authorization: `Bearer ${await sign(key, { groups: ['group1', 'group2'] })}` } })).status, 200);
      assert.equal((await through(filters, { path: '/headers', headers: { authorization: `Bearer ${await sign(key, { groups: ['group2'] })}` } })).status, 403);
    });
  });
});
