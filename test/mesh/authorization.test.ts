/**
 * Authorization and end-user authentication through `sinew up`: the smallest mesh
 * (fixtures/echo/one.yaml: one echo workload behind the ingress gateway) with istio.io's
 * shapes of policy. A DENY on the workload's own paths is enforced by its sidecar; the
 * gateway requires a JWT on one path (istio.io authn-policy's per-path tokens), the key set
 * served by a local HTTP server through jwksUri, tokens signed by a key made for the test; the
 * mesh config's pathNormalization (MERGE_SLASHES) reaches the proxies, so `//admin` is denied
 * too. The gateway also routes one host on the token's `groups` claim (istio.io jwt-route) and
 * denies a client by `remoteIpBlocks` behind the one trusted proxy the mesh config's
 * gatewayTopology names (istio.io authz-ingress).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { get, repo, startMesh, type Mesh } from './support.js';

const ISSUER = 'testing@secure.istio.io';

describe('sinew up enforces AuthorizationPolicy and RequestAuthentication', { timeout: 240_000 }, () => {
  let mesh: Mesh | undefined;
  let jwks: http.Server | undefined;
  let gateway: string;
  let token: string;
  let group1Token: string;
  const dir = mkdtempSync(join(tmpdir(), 'sinew-authz-mesh-'));

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const keys = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'test', alg: 'RS256', use: 'sig' }] });
    token = await new SignJWT({ iss: ISSUER, sub: ISSUER }).setProtectedHeader({ alg: 'RS256', kid: 'test' }).setIssuedAt().setExpirationTime('1h').sign(privateKey);
    group1Token = await new SignJWT({ iss: ISSUER, sub: ISSUER, groups: ['group1', 'group2'] }).setProtectedHeader({ alg: 'RS256', kid: 'test' }).setIssuedAt().setExpirationTime('1h').sign(privateKey);
    jwks = http.createServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(keys));
    await new Promise<void>((r) => jwks!.listen(0, '127.0.0.1', r));
    const jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    // istio.io authz-deny's shape on the echo workload, authn-policy's per-path tokens at the gateway.
    writeFileSync(
      join(dir, 'policies.yaml'),
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin", "/admin/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt-example, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules: [{issuer: "${ISSUER}", jwksUri: "${jwksUri}"}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: frontend-ingress, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{from: [{source: {notRequestPrincipals: ["*"]}}], to: [{operation: {paths: ["/headers"]}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo-groups}
spec:
  hosts: [groups.example]
  gateways: [echo-gateway]
  http:
  - match: [{headers: {"@request.auth.claims.groups": {exact: group1}}}]
    route: [{destination: {host: echo, port: {number: 9080}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress-policy, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{from: [{source: {remoteIpBlocks: ["10.9.9.9"]}}]}]
`,
    );
    writeFileSync(join(dir, 'mesh.yaml'), 'pathNormalization: {normalization: MERGE_SLASHES}\ndefaultConfig:\n  gatewayTopology: {numTrustedProxies: 1}\n');
    mesh = await startMesh([join(repo, 'test/mesh/fixtures/echo/one.yaml'), join(dir, 'policies.yaml')], { args: ['--mesh-config', join(dir, 'mesh.yaml')] });
    const status = await mesh.status();
    gateway = status.gateways[0].replicas[0].proxy.inbound!;
  });

  after(async () => {
    await mesh?.stop();
    jwks?.closeAllConnections();
    await new Promise<void>((r) => (jwks ? jwks.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  test("the workload's sidecar denies /admin (and //admin, merged by the mesh's path normalisation); the rest passes", async () => {
    assert.equal((await get(`http://${gateway}/`)).status, 200);
    for (const path of ['/admin', '/admin/users', '//admin', '/app/../admin']) {
      const reply = await get(`http://${gateway}${path}`);
      assert.deepEqual([reply.status, reply.body.trimEnd()], [403, 'RBAC: access denied'], path);
    }
  });

  test('the gateway: /headers needs a valid token, other paths do not; an invalid token is 401 anywhere', async () => {
    assert.deepEqual(((r) => [r.status, r.body.trimEnd()])(await get(`http://${gateway}/headers`)), [403, 'RBAC: access denied']);
    assert.equal((await get(`http://${gateway}/headers`, { authorization: `Bearer ${token}` })).status, 200);
    assert.equal((await get(`http://${gateway}/ip`)).status, 200);
    const bad = await get(`http://${gateway}/ip`, { authorization: 'Bearer invalidToken' });
    assert.equal(bad.status, 401);
    assert.match(String(bad.headers['www-authenticate']), /^Bearer realm=/);
  });

  test('the gateway routes groups.example on the token\'s groups claim: none 404, group1 200, other groups 404, invalid 401', async () => {
    const url = `http://${gateway}/get`;
    assert.equal((await get(url, { host: 'groups.example' })).status, 404);
    assert.equal((await get(url, { host: 'groups.example', authorization: `Bearer ${group1Token}` })).status, 200);
    assert.equal((await get(url, { host: 'groups.example', authorization: `Bearer ${token}` })).status, 404);
    assert.equal((await get(url, { host: 'groups.example', authorization: 'Bearer some.invalid.token' })).status, 401);
  });

  test('the gateway trusts one X-Forwarded-For hop (meshConfig gatewayTopology): remoteIpBlocks deny the client the load balancer names', async () => {
    const url = `http://${gateway}/`;
    assert.deepEqual(((r) => [r.status, r.body.trimEnd()])(await get(url, { 'x-forwarded-for': '10.9.9.9' })), [403, 'RBAC: access denied']);
    assert.equal((await get(url, { 'x-forwarded-for': '10.9.9.9, 10.0.0.1' })).status, 200, 'an entry left of the trusted hop is the client\'s own claim');
    assert.equal((await get(url)).status, 200);
  });

  // istio.io authz-http: principals come from the peer's certificate, so an ALLOW on
  // `principals: ["*"]` admits what comes over mutual TLS (the gateway's requests) and nothing
  // that comes in plaintext (a client outside the mesh calling the sidecar directly).
  test('a policy on principals admits the gateway over mutual TLS, and not a plaintext caller', async () => {
    writeFileSync(
      join(dir, 'principals.yaml'),
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: from-the-mesh}\nspec:\n  selector: {matchLabels: {app: echo}}\n  rules: [{from: [{source: {principals: ["*"]}}]}]\n',
    );
    const withPrincipals = await startMesh([join(repo, 'test/mesh/fixtures/echo/one.yaml'), join(dir, 'principals.yaml')]);
    try {
      const status = await withPrincipals.status();
      assert.equal((await get(`http://${status.gateways[0].replicas[0].proxy.inbound!}/`)).status, 200);
      const sidecar = status.workloads.find((w) => w.replicas[0]?.proxy.inbound)!.replicas[0]!.proxy.inbound!;
      const direct = await get(`http://${sidecar}/`);
      assert.equal(direct.status, 403);
      assert.equal(direct.body.trim(), 'RBAC: access denied');
    } finally {
      await withPrincipals.stop();
    }
  });
});
