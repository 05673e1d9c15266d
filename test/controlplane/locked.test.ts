/**
 * A locked control plane, tried as an attacker on the same machine would (a local process,
 * or a web page in a browser): every port refuses a client without the credential, the API
 * refuses foreign Hosts and Origins and bodies a page can send without a preflight, a
 * registration needs the runner's credential, and a proxy gets only its own config. Real
 * sockets, a real control plane; node's http client where a test must set Host itself.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync, chmodSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { API_TOKEN_FILE } from '../../src/controlplane/credentials.js';
import { PushClient } from '../../src/xds/client.js';
import { XdsErrorCode } from '../../src/xds/protocol.js';
import { OperatorApi, proxyClient, within } from './helpers.js';

const service = 'apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n';
/** The fault of the reported attack: /productpage answering 418. */
const fault = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: productpage}}]
`;

const node: ProxyNode = { id: 'sidecar~reviews-v1-0.default', mode: 'sidecar', workload: 'reviews-v1', namespace: 'default', labels: { app: 'reviews', version: 'v1' } };
const other: ProxyNode = { id: 'sidecar~ratings-v1-0.default', mode: 'sidecar', workload: 'ratings-v1', namespace: 'default', labels: { app: 'ratings', version: 'v1' } };

const registration = {
  kind: 'workload',
  name: 'reviews-v1',
  namespace: 'default',
  labels: { app: 'reviews', version: 'v1' },
  replicas: [{ id: 'reviews-v1-0', host: '127.0.0.1', ports: { '9080': { inbound: 23000, app: 23001 } }, ready: true, restarts: 0, proxy: { inbound: '127.0.0.1:23000', outbound: '127.0.0.1:23002', admin: '127.0.0.1:23003' } }],
};

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: () => Record<string, unknown>;
}

/** One request with exactly these headers (node's client lets a test set Host). */
function raw(address: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawAnswer> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: Number(port), method, path, headers: { host: address, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, body: text, json: () => JSON.parse(text) as Record<string, unknown> });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a locked control plane', () => {
  let cp: ControlPlane;
  let api: OperatorApi;
  let stateDir: string;
  const bearer = () => ({ authorization: `Bearer ${cp.credentials.apiToken}` });

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'sinew-locked-'));
    cp = await startControlPlane({ stateDir, apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5 });
    api = new OperatorApi(cp);
    assert.equal((await api.apply(service)).status, 200);
  });
  after(async () => {
    await cp.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  describe('the API token', () => {
    test('is 32 random bytes in hex, in the state directory, readable by its owner only', () => {
      const file = join(stateDir, API_TOKEN_FILE);
      assert.equal(cp.tokenFile, file);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.match(readFileSync(file, 'utf8').trim(), /^[0-9a-f]{64}$/);
      assert.equal(readFileSync(file, 'utf8').trim(), cp.credentials.apiToken);
    });

    test('is kept across restarts of the same state directory, and made owner-only again if opened up', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sinew-token-'));
      try {
        const first = await startControlPlane({ stateDir: dir, apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: false });
        const token = first.credentials.apiToken;
        await first.close();
        chmodSync(join(dir, API_TOKEN_FILE), 0o644);
        const second = await startControlPlane({ stateDir: dir, apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: false });
        try {
          assert.equal(second.credentials.apiToken, token);
          assert.equal(statSync(join(dir, API_TOKEN_FILE)).mode & 0o777, 0o600);
        } finally {
          await second.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('the API port', () => {
    test('regression: a write without a credential, from a foreign page, in text/plain, applied a fault; now 401 and nothing changes', async () => {
      const before = cp.store.revision;
      const res = await raw(cp.addresses.api, 'POST', '/api/v1/apply', { 'content-type': 'text/plain', origin: 'http://evil.example' }, fault);
      // The Origin is refused first (403); without it, the missing credential (401).
      assert.equal(res.status, 403);
      const bare = await raw(cp.addresses.api, 'POST', '/api/v1/apply', { 'content-type': 'application/yaml' }, fault);
      assert.equal(bare.status, 401);
      assert.match(String(bare.json().error), /credential/);
      assert.match(String(bare.headers['www-authenticate']), /^Bearer realm="sinew"/);
      assert.equal(cp.store.revision, before);
      assert.equal(cp.store.get('VirtualService', 'default', 'productpage'), undefined);
    });

    test('a DELETE without a credential is refused and the resource stays', async () => {
      const res = await raw(cp.addresses.api, 'DELETE', '/api/v1/resources/Service/default/reviews');
      assert.equal(res.status, 401);
      assert.ok(cp.store.get('Service', 'default', 'reviews'));
    });

    test('reads need the credential too; a wrong token is refused', async () => {
      for (const path of ['/api/v1/status', '/api/v1/resources', '/api/v1/proxies', '/api/v1/traces', '/api/v1/history', '/api/v1/no-such-route']) {
        assert.equal((await raw(cp.addresses.api, 'GET', path)).status, 401, path);
      }
      const wrong = await raw(cp.addresses.api, 'GET', '/api/v1/status', { authorization: `Bearer ${'0'.repeat(64)}` });
      assert.equal(wrong.status, 401);
      assert.match(String(wrong.headers['www-authenticate']), /invalid_token/);
      assert.equal((await raw(cp.addresses.api, 'GET', '/api/v1/status', bearer())).status, 200);
    });

    test('health checks answer without a credential', async () => {
      const res = await raw(cp.addresses.api, 'GET', '/healthz');
      assert.equal(res.status, 200);
      assert.equal(res.json().ok, true);
    });

    test('a Host that is not the API\'s own address is refused, even with the token (DNS rebinding)', async () => {
      const port = cp.addresses.api.split(':')[1];
      const before = cp.store.revision;
      for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, 'localhost.evil.example']) {
        const res = await raw(cp.addresses.api, 'POST', '/api/v1/apply', { ...bearer(), host, 'content-type': 'application/yaml' }, fault);
        assert.equal(res.status, 403, `Host "${host}": ${res.body}`);
        assert.match(String(res.json().error), /Host/);
      }
      assert.equal(cp.store.revision, before);
      // The loopback names of the same port are the API's own.
      assert.equal((await raw(cp.addresses.api, 'GET', '/api/v1/status', { ...bearer(), host: `localhost:${port}` })).status, 200);
    });

    test('a foreign Origin is refused, even with the token; the API\'s own origin is not', async () => {
      for (const origin of ['http://evil.example', 'null', `http://${cp.addresses.api}.evil.example`, `https://${cp.addresses.api}`]) {
        const res = await raw(cp.addresses.api, 'GET', '/api/v1/status', { ...bearer(), origin });
        assert.equal(res.status, 403, origin);
      }
      assert.equal((await raw(cp.addresses.api, 'GET', '/api/v1/status', { ...bearer(), origin: `http://${cp.addresses.api}` })).status, 200);
    });

    test('writes take application/json or application/yaml only (what a page cannot send without a preflight)', async () => {
      const before = cp.store.revision;
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/yaml; charset=latin1']) {
        const res = await raw(cp.addresses.api, 'POST', '/api/v1/apply', { ...bearer(), 'content-type': type }, fault);
        assert.equal(res.status, 415, type);
      }
      assert.equal((await raw(cp.addresses.api, 'POST', '/api/v1/apply', bearer(), fault)).status, 415, 'no Content-Type');
      assert.equal(cp.store.revision, before);
      const ok = await raw(cp.addresses.api, 'POST', '/api/v1/apply', { ...bearer(), 'content-type': 'application/yaml; charset=utf-8' }, service);
      assert.equal(ok.status, 200, ok.body);
    });

    test('a proxy\'s credential may send spans but not call the operator\'s routes', async () => {
      const credential = cp.credentials.mintProxyCredential(node);
      const res = await raw(cp.addresses.api, 'POST', '/api/v1/apply', { authorization: `Bearer ${credential}`, 'content-type': 'application/yaml' }, fault);
      assert.equal(res.status, 403);
      assert.equal((await raw(cp.addresses.api, 'GET', '/api/v1/traces', { authorization: `Bearer ${credential}` })).status, 403);
    });
  });

  describe('registrations', () => {
    test('regression: an unauthenticated PUT repointed a workload; now 401 and the registry is unchanged', async () => {
      const res = await raw(cp.addresses.api, 'PUT', '/api/v1/registrations/workload/default/reviews-v1', { 'content-type': 'application/json' }, JSON.stringify(registration));
      assert.equal(res.status, 401);
      assert.deepEqual(cp.status().workloads, []);
      const proxy = await raw(cp.addresses.api, 'PUT', '/api/v1/registrations/workload/default/reviews-v1', { authorization: `Bearer ${cp.credentials.mintProxyCredential(node)}`, 'content-type': 'application/json' }, JSON.stringify(registration));
      assert.equal(proxy.status, 403, 'a proxy cannot register, even its own workload');
      assert.deepEqual(cp.status().workloads, []);
    });

    test('regression: a registration body was trusted as it came; now every problem is a 400', async () => {
      const bad = { ...registration, replicas: [{ ...registration.replicas[0], host: 7, ports: { '9080': { inbound: 70000, app: 'x' } }, extra: true }] };
      const res = await raw(cp.addresses.api, 'PUT', '/api/v1/registrations/workload/default/reviews-v1', { ...bearer(), 'content-type': 'application/json' }, JSON.stringify(bad));
      assert.equal(res.status, 400);
      const problems = (res.json().problems as { path: string }[]).map((p) => p.path).sort();
      assert.deepEqual(problems, ['replicas[0]', 'replicas[0].host', 'replicas[0].ports.9080.app', 'replicas[0].ports.9080.inbound']);
      assert.deepEqual(cp.status().workloads, []);
      const mismatch = await raw(cp.addresses.api, 'PUT', '/api/v1/registrations/workload/default/reviews-v1', { ...bearer(), 'content-type': 'application/json' }, JSON.stringify({ ...registration, name: 'ratings-v1' }));
      assert.equal(mismatch.status, 400);
      assert.match(String(mismatch.json().error), /name "ratings-v1" is not the path's "reviews-v1"/);
      const badPath = await raw(cp.addresses.api, 'PUT', '/api/v1/registrations/workload/Default/reviews-v1', { ...bearer(), 'content-type': 'application/json' }, JSON.stringify(registration));
      assert.equal(badPath.status, 400);
    });

    test('regression: a replica\'s not-ready reason was refused as an unknown key, so sinew up could not register anything; now it is kept', async () => {
      const starting = { ...registration, replicas: [{ ...registration.replicas[0], ready: false, reason: 'sidecar: starting' }] };
      const res = await api.register(starting);
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(cp.status().workloads.find((w) => w.name === 'reviews-v1')?.replicas[0].reason, 'sidecar: starting');
    });

    test('the runner\'s credential registers', async () => {
      const res = await api.register(registration);
      assert.equal(res.status, 200, await res.clone().text());
      assert.deepEqual(cp.status().workloads.map((w) => w.name), ['reviews-v1']);
    });
  });

  describe('the push port', () => {
    test('a proxy without a credential gets a closed stream and no config', async () => {
      const [host, port] = cp.addresses.push.split(':');
      const client = new PushClient({ host: host!, port: Number(port), node, apply: () => assert.fail('no config may arrive'), backoff: { initialMs: 5_000, maxMs: 5_000 } });
      try {
        const refused = once(client, 'disconnected');
        client.start();
        const [info] = (await within(refused, 10_000, 'the refusal')) as [{ code: string }];
        assert.equal(info.code, XdsErrorCode.Unauthenticated);
        assert.equal(client.config, undefined);
      } finally {
        await client.close();
      }
    });

    test('regression: a hello as another proxy got that proxy\'s config; now it is refused', async () => {
      // The credential of `other`, presented by a peer that says it is `node`.
      const client = proxyClient(cp, node, { credential: cp.credentials.mintProxyCredential(other), apply: () => assert.fail('no config may arrive'), backoff: { initialMs: 5_000, maxMs: 5_000 } });
      try {
        const refused = once(client, 'disconnected');
        client.start();
        const [info] = (await within(refused, 10_000, 'the refusal')) as [{ code: string; reason: string }];
        assert.equal(info.code, XdsErrorCode.Unauthenticated);
        assert.match(info.reason, /issued for sidecar~ratings-v1-0\.default/);
      } finally {
        await client.close();
      }
      // Same id, other labels (claiming another workload's identity): refused as well.
      const relabelled = proxyClient(cp, { ...node, labels: { app: 'ratings' } }, { credential: cp.credentials.mintProxyCredential(node), apply: () => assert.fail('no config may arrive'), backoff: { initialMs: 5_000, maxMs: 5_000 } });
      try {
        const refused = once(relabelled, 'disconnected');
        relabelled.start();
        assert.equal(((await within(refused, 10_000, 'the refusal')) as [{ code: string }])[0].code, XdsErrorCode.Unauthenticated);
      } finally {
        await relabelled.close();
      }
    });

    test('the runner gets a credential for a proxy through the API, and the proxy gets its config with it', async () => {
      const minted = await api.fetch('/api/v1/proxy-credentials', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node }) });
      assert.equal(minted.status, 200);
      const { credential, nodeId } = (await minted.json()) as { credential: string; nodeId: string };
      assert.equal(nodeId, node.id);
      const unauthenticated = await raw(cp.addresses.api, 'POST', '/api/v1/proxy-credentials', { 'content-type': 'application/json' }, JSON.stringify({ node }));
      assert.equal(unauthenticated.status, 401);
      const malformed = await api.fetch('/api/v1/proxy-credentials', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: { ...node, mode: 'pilot' } }) });
      assert.equal(malformed.status, 400);

      const client = proxyClient(cp, node, { credential });
      try {
        const first = once(client, 'config');
        client.start();
        const [config] = (await within(first, 10_000, 'the first config')) as [ProxyConfig];
        assert.equal(config.node.id, node.id);
      } finally {
        await client.close();
      }
    });
  });

  describe('the trace collector', () => {
    const span = (service: string) => JSON.stringify([{ traceId: 'a'.repeat(32), id: 'b'.repeat(16), name: 'get /productpage', timestamp: 1_700_000_000_000_000, duration: 1000, kind: 'SERVER', localEndpoint: { serviceName: service } }]);

    test('regression: an unauthenticated Zipkin POST showed up as a productpage span; now 401 and nothing is stored', async () => {
      const res = await raw(cp.addresses.api, 'POST', '/api/v2/spans', { 'content-type': 'application/json' }, span('productpage.default'));
      assert.equal(res.status, 401);
      const otlp = await raw(cp.addresses.api, 'POST', '/v1/traces', { 'content-type': 'application/json' }, '{"resourceSpans":[]}');
      assert.equal(otlp.status, 401);
      assert.deepEqual(cp.traces.services(), []);
    });

    test('a proxy\'s credential sends spans', async () => {
      const res = await raw(cp.addresses.api, 'POST', '/api/v2/spans', { 'content-type': 'application/json', authorization: `Bearer ${cp.credentials.mintProxyCredential(node)}` }, span('reviews.default'));
      assert.equal(res.status, 202);
      assert.deepEqual(cp.traces.services(), ['reviews.default']);
    });
  });

  describe('the monitoring port', () => {
    test('needs the API token', async () => {
      const res = await raw(cp.addresses.monitoring, 'GET', '/metrics');
      assert.equal(res.status, 401);
      assert.doesNotMatch(res.body, /pilot_xds/);
      assert.equal((await raw(cp.addresses.monitoring, 'GET', '/metrics', { authorization: `Bearer ${cp.credentials.mintProxyCredential(node)}` })).status, 401);
      const ok = await raw(cp.addresses.monitoring, 'GET', '/metrics', bearer());
      assert.equal(ok.status, 200);
      assert.match(ok.body, /^sinew_xds_unauthenticated [1-9]\d*$/m);
      assert.equal((await raw(cp.addresses.monitoring, 'GET', '/metrics', { ...bearer(), host: 'evil.example' })).status, 403);
    });
  });

  test('every port refuses a client without the credential', async () => {
    const [pushHost, pushPort] = cp.addresses.push.split(':');
    const refusals: Record<string, string> = {};
    refusals.api = String((await raw(cp.addresses.api, 'GET', '/api/v1/status')).status);
    refusals.collector = String((await raw(cp.addresses.api, 'POST', '/v1/traces', { 'content-type': 'application/json' }, '{}')).status);
    refusals.monitoring = String((await raw(cp.addresses.monitoring, 'GET', '/metrics')).status);
    const socket = net.connect({ host: pushHost, port: Number(pushPort) });
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (c: Buffer) => (received += c.toString()));
    socket.write(JSON.stringify({ type: 'hello', protocol: 2, node }) + '\n');
    await within(once(socket, 'close'), 10_000, 'the push port closing the stream');
    refusals.push = (JSON.parse(received.trim().split('\n').pop()!) as { code: string }).code;
    assert.deepEqual(refusals, { api: '401', collector: '401', monitoring: '401', push: XdsErrorCode.Unauthenticated });
  });
});
