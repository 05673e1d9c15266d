/**
 * The Gateway API through the CLI, against a real control plane: `sinew get` shows the status
 * the API server would hold (why a route is not attached), the Gateway API's Gateway and
 * Istio's live side by side, and `sinew create secret` makes credentials that `get` never shows.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { makeCa, makeServerCertificate, type Pem } from '../support/tls.js';

import { writeMeshState } from '../controlplane/helpers.js';
let cp: ControlPlane;
let dir: string;
let stateDir: string;
let ca: Pem;
let server: Pem;

before(async () => {
  cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5, collectTraces: false });
  dir = mkdtempSync(join(tmpdir(), 'sinew-cli-gwapi-'));
  stateDir = join(dir, '.sinew');
  mkdirSync(stateDir);
  writeMeshState(cp, stateDir);
  ca = await makeCa();
  server = await makeServerCertificate(ca, ['bookinfo.example.com']);
});
after(async () => {
  await cp.close();
  rmSync(dir, { recursive: true, force: true });
});

async function sinew(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await main(['node', 'sinew', ...args, '--state-dir', stateDir], { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { status, stdout, stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const manifests = `apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: apps}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: apps}
spec:
  gatewayClassName: sinew
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}
  - {name: udp, port: 53, protocol: UDP}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: apps}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: attached, namespace: apps}
spec:
  parentRefs: [{name: edge}]
  rules: [{backendRefs: [{name: backend, port: 8080}, {name: missing, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: from-web, namespace: web}
spec:
  parentRefs: [{name: edge, namespace: apps}]
  rules: [{backendRefs: [{name: backend, namespace: apps, port: 8080}]}]
`;

type Condition = { type: string; status: string; reason: string; observedGeneration?: number };

describe('sinew get for the Gateway API', () => {
  before(async () => {
    const applied = await sinew('apply', '-f', file('gwapi.yaml', manifests));
    assert.equal(applied.status, 0, applied.stderr);
    // Two Gateways named edge, each in its group.
    assert.match(applied.stdout, /gateway\.gateway\.networking\.k8s\.io\/edge created/);
    assert.match(applied.stdout, /gateway\.networking\.istio\.io\/edge created/);
  });

  test('an HTTPRoute shows per parent why it is (or is not) attached, and what it cannot resolve', async () => {
    const attached = parseYaml((await sinew('get', 'httproute', 'attached', '-n', 'apps', '-o', 'yaml')).stdout) as { status: { parents: { parentRef: unknown; controllerName: string; conditions: Condition[] }[] } };
    const [parent] = attached.status.parents;
    assert.deepEqual(parent.parentRef, { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'apps', name: 'edge' });
    assert.equal(parent.controllerName, 'sinew.dev/gateway-controller');
    assert.deepEqual(parent.conditions.map((c) => [c.type, c.status, c.reason]), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'False', 'BackendNotFound']]);
    assert.equal(parent.conditions[0].observedGeneration, 1);

    const fromWeb = parseYaml((await sinew('get', 'httproutes', 'from-web', '-n', 'web', '-o', 'yaml')).stdout) as { status: { parents: { conditions: Condition[] }[] } };
    assert.deepEqual(fromWeb.status.parents[0].conditions.find((c) => c.type === 'Accepted'), { ...fromWeb.status.parents[0].conditions[0], type: 'Accepted', status: 'False', reason: 'NotAllowedByListeners' });
  });

  test('the table says it too', async () => {
    const table = await sinew('get', 'httproutes', '-A');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /apps\s+attached\s+\*\s+True\s+False \(BackendNotFound\)/);
    assert.match(table.stdout, /web\s+from-web\s+\*\s+False \(NotAllowedByListeners\)/);
  });

  test('a Gateway: its listeners (one not valid), the routes attached, and Programmed while no proxy runs', async () => {
    const gw = parseYaml((await sinew('get', 'gtw', 'edge', '-n', 'apps', '-o', 'yaml')).stdout) as { kind: string; apiVersion: string; status: { conditions: Condition[]; listeners: { name: string; attachedRoutes: number; supportedKinds: unknown[]; conditions: Condition[] }[] } };
    assert.equal(gw.apiVersion, 'gateway.networking.k8s.io/v1');
    const cond = (list: Condition[], type: string) => list.find((c) => c.type === type)!;
    assert.deepEqual([cond(gw.status.conditions, 'Accepted').status, cond(gw.status.conditions, 'Accepted').reason], ['True', 'ListenersNotValid']);
    assert.deepEqual([cond(gw.status.conditions, 'Programmed').status, cond(gw.status.conditions, 'Programmed').reason], ['False', 'Pending'], 'no proxy runs for it (no sinew up here)');
    const [http, udp] = gw.status.listeners;
    assert.equal(http.attachedRoutes, 1);
    assert.deepEqual(http.supportedKinds, [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }, { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' }]);
    assert.deepEqual([cond(udp.conditions, 'Accepted').status, cond(udp.conditions, 'Accepted').reason], ['False', 'UnsupportedProtocol']);
    assert.deepEqual(udp.supportedKinds, []);
    // `gateway` is Istio's Gateway, as kubectl resolves it with Istio installed; the qualified name is the Gateway API's.
    const istio = parseYaml((await sinew('get', 'gateway', 'edge', '-n', 'apps', '-o', 'yaml')).stdout) as { apiVersion: string; status?: unknown };
    assert.equal(istio.apiVersion, 'networking.istio.io/v1');
    assert.equal(istio.status, undefined);
    const qualified = parseYaml((await sinew('get', 'gateways.gateway.networking.k8s.io', 'edge', '-n', 'apps', '-o', 'yaml')).stdout) as { apiVersion: string };
    assert.equal(qualified.apiVersion, 'gateway.networking.k8s.io/v1');
  });

  test('the built-in GatewayClasses need no resource; one of another controller is left alone', async () => {
    const applied = await sinew('apply', '-f', file('classes.yaml', 'apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: other}\nspec: {controllerName: example.com/other}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: mine}\nspec: {controllerName: sinew.dev/gateway-controller}\n'));
    assert.equal(applied.status, 0, applied.stderr);
    const table = (await sinew('get', 'gatewayclasses')).stdout;
    assert.match(table, /mine\s+sinew\.dev\/gateway-controller\s+True/);
    assert.match(table, /other\s+example\.com\/other\s+-/);
  });
});

describe('sinew create secret', () => {
  test('tls: from PEM files, checked, applied; get shows sizes, never the values', async () => {
    const cert = file('server.crt', server.cert);
    const key = file('server.key', server.key);
    const caFile = file('ca.crt', ca.cert);
    const created = await sinew('create', 'secret', 'tls', 'bookinfo-credential', '--cert', cert, '--key', key, '--ca-cert', caFile, '-n', 'istio-system');
    assert.equal(created.status, 0, created.stderr);
    assert.equal(created.stdout, 'secret/bookinfo-credential created\n');
    for (const out of ['yaml', 'json']) {
      const shown = (await sinew('get', 'secret', 'bookinfo-credential', '-n', 'istio-system', '-o', out)).stdout;
      assert.ok(!shown.includes('PRIVATE KEY') && !shown.includes(Buffer.from(server.key).toString('base64').slice(0, 40)), `-o ${out} shows no value`);
      assert.match(shown, /<redacted: \d+ bytes>/);
    }
    const table = (await sinew('get', 'secrets', '-n', 'istio-system')).stdout;
    assert.match(table, /bookinfo-credential\s+kubernetes\.io\/tls\s+3/);
  });

  test('a key that is not the certificate\'s is reported; a missing file is an error that names it', async () => {
    const other = await makeServerCertificate(ca, ['other.example.com']);
    const mismatch = await sinew('create', 'secret', 'tls', 'mismatch', '--cert', file('a.crt', server.cert), '--key', file('b.key', other.key), '--dry-run');
    assert.equal(mismatch.status, 0);
    assert.match(mismatch.stderr, /warning \[SNW0611\].*does not belong/);
    const missing = await sinew('create', 'secret', 'tls', 'x', '--cert', join(dir, 'nope.crt'), '--key', file('c.key', server.key));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read .*nope\.crt \(for "tls\.crt"\): no such file/);
  });

  test('generic: Istio\'s <name>-cacert Secret from a file', async () => {
    const created = await sinew('create', 'secret', 'generic', 'bookinfo-credential-cacert', '--from-file', `cacert=${file('ca2.crt', ca.cert)}`, '-n', 'istio-system');
    assert.equal(created.status, 0, created.stderr);
    const shown = parseYaml((await sinew('get', 'secret', 'bookinfo-credential-cacert', '-n', 'istio-system', '-o', 'yaml')).stdout) as { type: string; data: Record<string, string> };
    assert.equal(shown.type, 'Opaque');
    assert.deepEqual(Object.keys(shown.data), ['cacert']);
  });
});
