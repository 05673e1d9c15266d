/**
 * The console port is a control-plane port: it refuses clients without the mesh's token,
 * turns the login link into an HttpOnly, SameSite=Strict cookie, and checks Origin and Host on
 * writes made with the cookie. Over real sockets against the real daemon
 * (startControlPlane with a console port of 0) and against the console server with a static
 * directory of its own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { MetricsScraper } from '../../src/controlplane/console/scraper.js';
import { startConsoleServer, type ConsoleServer } from '../../src/controlplane/console/server.js';
import { systemClock } from '../../src/core/clock.js';
import { TraceStore } from '../../src/telemetry/trace-store.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request as the console's page sends it: YAML bodies say so (the API refuses other media types, 415). */
function call(address: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const [host, port] = address.split(':');
  if (body !== undefined && path.startsWith('/api/v1/')) headers = { 'content-type': 'application/yaml', ...headers };
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), method, path, headers: { host: address, ...headers }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const VS = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n';

describe('the console port on the control plane', () => {
  let cp: ControlPlane;
  let stateDir: string;
  let address: string;
  let token: string;

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'sinew-console-'));
    cp = await startControlPlane({ stateDir, apiPort: 0, pushPort: 0, monitoringPort: 0, consolePort: 0 });
    address = cp.addresses.console!;
    token = cp.console!.token;
  });
  after(async () => {
    await cp?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('the token lives in the state directory, readable by its owner only; status names the console', () => {
    const file = join(stateDir, 'api-token');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal(cp.status().controlPlane.console, address);
  });

  test('no credential, or a wrong one: 401 with what to do, for pages and APIs alike', async () => {
    const page = await call(address, 'GET', '/');
    assert.equal(page.status, 401);
    assert.match(page.body, /open the console URL that "sinew up" printed/);
    for (const path of ['/console/api/v1/overview', '/api/v1/status', '/api/v1/resources']) {
      const api = await call(address, 'GET', path);
      assert.equal(api.status, 401, path);
      assert.equal(api.headers['www-authenticate'], 'Bearer realm="sinew"');
      assert.match(JSON.parse(api.body).error, /no credential/);
    }
    assert.equal((await call(address, 'GET', '/console/api/v1/overview', { authorization: `Bearer ${'0'.repeat(64)}` })).status, 401);
    assert.equal((await call(address, 'GET', '/console/api/v1/overview', { cookie: 'sinew_console=forged' })).status, 401);
    assert.equal((await call(address, 'GET', `/?token=${'1'.repeat(64)}`)).status, 401);
  });

  test('the bearer token opens the JSON API, writes included (the CLI sends no Origin)', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const overview = await call(address, 'GET', '/console/api/v1/overview', auth);
    assert.equal(overview.status, 200);
    assert.equal(JSON.parse(overview.body).configRevision, 0);
    const applied = await call(address, 'POST', '/api/v1/apply', auth, VS);
    assert.equal(applied.status, 200, applied.body);
    assert.ok(cp.store.get('VirtualService', 'default', 'reviews'));
    const graph = await call(address, 'GET', '/console/api/v1/graph?type=app&window=5m', auth);
    assert.equal(graph.status, 200);
    assert.equal((await call(address, 'GET', '/console/api/v1/graph?type=nope', auth)).status, 400);
    assert.equal((await call(address, 'GET', '/console/api/v1/graph?window=2h', auth)).status, 400);
  });

  test('the login link sets an HttpOnly, SameSite=Strict cookie and redirects to the URL without the token', async () => {
    const login = await call(address, 'GET', `/?token=${token}&x=1#/graph`);
    assert.equal(login.status, 303);
    assert.equal(login.headers.location, '/?x=1');
    const cookie = String(login.headers['set-cookie']);
    assert.match(cookie, /^sinew_console=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/$/);
    assert.ok(!cookie.includes(token), 'the cookie is not the token itself');
    const session = cookie.split(';')[0];
    const status = await call(address, 'GET', '/api/v1/status', { cookie: session });
    assert.equal(status.status, 200);
    assert.equal(JSON.parse(status.body).controlPlane.console, address);
  });

  test('writes with the cookie need the console\'s own Origin and Host', async () => {
    const session = String((await call(address, 'GET', `/?token=${token}`)).headers['set-cookie']).split(';')[0];
    const revision = cp.store.revision;
    const vs2 = VS.replace('name: reviews,', 'name: reviews2,');
    const noOrigin = await call(address, 'POST', '/api/v1/apply', { cookie: session }, vs2);
    assert.equal(noOrigin.status, 403);
    assert.match(JSON.parse(noOrigin.body).error, /Origin missing/);
    assert.equal((await call(address, 'POST', '/api/v1/apply', { cookie: session, origin: 'http://evil.example' }, vs2)).status, 403);
    // A DNS-rebound page: right cookie jar (it is not), wrong Host.
    assert.equal((await call(address, 'POST', '/api/v1/apply', { cookie: session, host: `evil.example:${address.split(':')[1]}`, origin: `http://evil.example:${address.split(':')[1]}` }, vs2)).status, 403);
    assert.equal(cp.store.revision, revision, 'nothing was written');
    const ok = await call(address, 'POST', '/api/v1/apply', { cookie: session, origin: `http://${address}` }, vs2);
    assert.equal(ok.status, 200, ok.body);
    const viaLocalhost = `localhost:${address.split(':')[1]}`;
    const ok2 = await call(address, 'POST', '/console/api/v1/validate', { cookie: session, host: viaLocalhost, origin: `http://${viaLocalhost}` }, VS);
    assert.equal(ok2.status, 200);
  });

  test('an invalid apply through the console port is refused with every diagnostic and changes nothing', async () => {
    const revision = cp.store.revision;
    const bad = await call(address, 'POST', '/api/v1/apply', { authorization: `Bearer ${token}`, 'x-sinew-source': '<console>' }, VS.replace('host: reviews}', 'host: reviews}\n      weight: -1\n    - destination: {host: ratings, subsett: v1}'));
    assert.equal(bad.status, 422);
    const body = JSON.parse(bad.body) as { error: string; diagnostics: { code: string; source?: { file: string; line: number } }[] };
    assert.match(body.error, /nothing was applied/);
    assert.ok(body.diagnostics.length >= 2, JSON.stringify(body.diagnostics));
    assert.ok(body.diagnostics.every((d) => d.source?.file === '<console>' && d.source.line > 0));
    assert.equal(cp.store.revision, revision);
  });
});

describe('the console server\'s static files', () => {
  let server: ConsoleServer;
  let dir: string;
  let address: string;
  const token = 'a'.repeat(64);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sinew-console-static-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(join(dir, 'assets', 'app-1.js'), 'console.log(1)');
    writeFileSync(join(dir, '..', 'secret.txt'), 'not for the browser');
    server = await startConsoleServer({
      host: '127.0.0.1',
      port: 0,
      token,
      clock: systemClock,
      scraper: new MetricsScraper({ clock: systemClock, targets: () => [] }),
      inventory: () => ({ services: [], workloads: [], resources: [], configRevision: 0 }),
      traces: new TraceStore(),
      controlPlaneApi: (_req, res) => res.writeHead(418).end(),
      staticDir: dir,
    });
    address = `127.0.0.1:${server.address.port}`;
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(dir, '..', 'secret.txt'), { force: true });
  });

  test('index.html for pages, hashed assets cached for good, security headers on both', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const index = await call(address, 'GET', '/', auth);
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(index.headers['cache-control'], 'no-cache');
    assert.match(String(index.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(index.headers['x-frame-options'], 'DENY');
    const asset = await call(address, 'GET', '/assets/app-1.js', auth);
    assert.equal(asset.body, 'console.log(1)');
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal((await call(address, 'GET', '/assets/none.js', auth)).status, 404);
  });

  test('no way out of the static directory', async () => {
    const auth = { authorization: `Bearer ${token}` };
    for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e%2f%2e%2e%2fsecret.txt']) {
      const r = await call(address, 'GET', path, auth);
      assert.notEqual(r.body, 'not for the browser', path);
      assert.ok(r.status === 404 || r.status === 200, `${path}: ${r.status}`);
    }
  });

  test('the control plane API is mounted under /api/v1 behind the same check', async () => {
    assert.equal((await call(address, 'GET', '/api/v1/status', { authorization: `Bearer ${token}` })).status, 418);
    assert.equal((await call(address, 'GET', '/api/v1/status')).status, 401);
  });
});
