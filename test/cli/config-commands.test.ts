/**
 * `sinew apply`, `get` and `analyze` against a real control plane (its HTTP API and push server
 * on ephemeral ports), run through the CLI's own entry point as a user types them.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { main } from '../../src/cli/main.js';
import { pointAtInput } from '../../src/cli/config-commands.js';
import { validateText } from '../../src/config/validate.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { OperatorApi, proxyClient, writeMeshState } from '../controlplane/helpers.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../compiler/fixtures', name), 'utf8');

let cp: ControlPlane;
let dir: string;
/** A state directory whose mesh.json names the control plane, as `sinew up` writes it. */
let stateDir: string;

before(async () => {
  cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5, collectTraces: false });
  dir = mkdtempSync(join(tmpdir(), 'sinew-cli-config-'));
  stateDir = join(dir, '.sinew');
  mkdirSync(stateDir);
  writeMeshState(cp, stateDir);
});
after(async () => {
  await cp.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `sinew <args>` in this process against the mesh of `stateDir`; returns the exit code and output. */
async function sinew(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const offline = args[0] === 'validate' || args.includes('--state-dir') || args.includes('--server');
  const withState = offline ? args : [...args, '--state-dir', stateDir];
  const status = await main(['node', 'sinew', ...withState], { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { status, stdout, stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const reviewsVs = (subset: string, name = 'reviews') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: ${subset}}
`;

const reviewsService = `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
`;

describe('sinew apply -f a -f b', () => {
  // Regression: both files went to the control plane as one request, which refused the pair as
  // "defined again in the same file" at <request>:17. kubectl applies the files in order.
  test('the same resource in two files: the files apply in order and the last one wins', async () => {
    const a = file('a.yaml', reviewsVs('v1'));
    const b = file('b.yaml', reviewsVs('v2'));
    const run = await sinew('apply', '-f', a, '-f', b);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'virtualservice.networking.istio.io/reviews created\n');
    const shown = parseYaml((await sinew('get', 'vs', 'reviews', '-o', 'yaml')).stdout) as { spec: { http: { route: { destination: { subset: string } }[] }[] } };
    assert.equal(shown.spec.http[0].route[0].destination.subset, 'v2');
  });

  test('a resource twice in one file is still refused against that file and its lines, and nothing is applied', async () => {
    const dup = file('dup.yaml', `${reviewsVs('v1', 'twice')}---\n${reviewsVs('v2', 'twice')}`);
    const other = file('other.yaml', reviewsVs('v3', 'untouched'));
    const run = await sinew('apply', '-f', other, '-f', dup);
    assert.equal(run.status, 1);
    assert.match(run.stderr, new RegExp(`error \\[SNW0013\\] \\(VirtualService default/twice\\) ${dup.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:11:1 VirtualService default/twice is defined again in the same file \\(first at line 1\\)`));
    assert.doesNotMatch(run.stderr, /<request>/);
    assert.equal((await sinew('get', 'vs', 'untouched')).status, 1, 'all or nothing: the valid file was not applied either');
  });
});

describe('findings the control plane returns', () => {
  test('point at the document the resource was read from, not at the request the CLI built', () => {
    const sent = validateText('/work/routes/b.yaml', `${reviewsService}---\n${reviewsVs('v2')}`).resources;
    const fromServer = { level: 'error' as const, code: 'SNW0201', message: 'refused', resource: { kind: 'VirtualService', namespace: 'default', name: 'reviews' }, source: { file: '<request>', line: 17, column: 3 } };
    assert.deepEqual(pointAtInput(fromServer, sent).source, { file: '/work/routes/b.yaml', line: 8, column: 1 });
    const unknown = { ...fromServer, resource: { kind: 'VirtualService', namespace: 'default', name: 'other' } };
    assert.deepEqual(pointAtInput(unknown, sent).source, fromServer.source, 'a finding about another resource keeps its own position');
  });
});

describe('what is accepted but not enforced yet is said on apply and validate', () => {
  const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all}
spec: {}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls: {mode: STRICT}
`;

  // Regression: both were "created" without a word, and every request still passed.
  test('apply applies both, and warns about neither: both are enforced now', async () => {
    const f = file('policies.yaml', policies);
    const run = await sinew('apply', '-f', f);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'authorizationpolicy.security.istio.io/deny-all created\npeerauthentication.security.istio.io/default created\n');
    // Both are enforced now (SNW0500 and SNW0505 retired): applied without a warning.
    assert.doesNotMatch(run.stderr, /SNW05\d\d/);
    const validated = await sinew('validate', '-f', f);
    assert.equal(validated.status, 0);
    assert.doesNotMatch(validated.stderr, /SNW05\d\d/);
    assert.match(validated.stdout, /✔ 2 resources valid/);
    assert.doesNotMatch(validated.stdout, /warning/);
    assert.equal((await sinew('delete', '-f', f)).status, 0);
  });
});

describe('sinew get shows what the store stamped', () => {
  test('creationTimestamp, uid, generation and resourceVersion; an update keeps the first two and bumps generation on a spec change', async () => {
    const f = file('stamped.yaml', reviewsVs('v1', 'stamped'));
    assert.equal((await sinew('apply', '-f', f)).status, 0);
    const first = parseYaml((await sinew('get', 'virtualservices', 'stamped', '-o', 'yaml')).stdout) as { metadata: Record<string, unknown> };
    assert.match(String(first.metadata.creationTimestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.match(String(first.metadata.uid), /^[0-9a-f-]{36}$/);
    assert.equal(first.metadata.generation, 1);
    assert.equal(first.metadata.resourceVersion, String(cp.store.revision));

    assert.equal((await sinew('apply', '-f', file('stamped.yaml', reviewsVs('v3', 'stamped')))).stdout, 'virtualservice.networking.istio.io/stamped configured\n');
    const second = parseYaml((await sinew('get', 'vs', 'stamped', '-o', 'yaml')).stdout) as { metadata: Record<string, unknown> };
    assert.equal(second.metadata.creationTimestamp, first.metadata.creationTimestamp);
    assert.equal(second.metadata.uid, first.metadata.uid);
    assert.equal(second.metadata.generation, 2);
    assert.notEqual(second.metadata.resourceVersion, first.metadata.resourceVersion);

    const table = await sinew('get', 'vs');
    assert.match(table.stdout, /^NAMESPACE\s+NAME\s+HOSTS\s+AGE\n/);
    assert.match(table.stdout, /\ndefault\s+stamped\s+reviews\s+\d+s\n/);
  });
});

describe('two VirtualServices for one host through a running control plane (DESIGN.md behaviour 12)', () => {
  test('a sidecar gets the routes of the one applied first, and analyze reports the conflict naming it', async () => {
    const echo = `apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo}}]
    headers: {request: {set: {x-routed-by: echo}}}
`;
    assert.equal((await sinew('apply', '-f', file('echo.yaml', echo))).status, 0);
    const later = await sinew('apply', '-f', file('set-authority-header.yaml', fixture('set-authority-header.yaml')));
    assert.equal(later.stdout, 'virtualservice.networking.istio.io/default created\n');

    // A sidecar of a registered workload, as `sinew up` registers it, connects for its config.
    const registration = {
      kind: 'workload',
      name: 'client',
      namespace: 'default',
      labels: { app: 'client' },
      replicas: [{ id: 'client-0', host: '127.0.0.1', ports: {}, ready: true, restarts: 0, proxy: { inbound: '127.0.0.1:1', outbound: '127.0.0.1:2', admin: '127.0.0.1:3' } }],
    };
    const registered = await new OperatorApi(cp).register(registration);
    assert.equal(registered.status, 200);
    const node: ProxyNode = { id: 'sidecar~client-0.default', mode: 'sidecar', workload: 'client', namespace: 'default', labels: { app: 'client' } };
    const client = proxyClient(cp, node);
    try {
      const first = once(client, 'config', { signal: AbortSignal.timeout(20_000) });
      client.start();
      const [config] = (await first) as [ProxyConfig];
      const echoHost = config.routeConfigs.find((r) => r.name === '80')!.virtualHosts.find((h) => h.name === 'echo.default.svc.cluster.local:80')!;
      assert.deepEqual(echoHost.routes.map((r) => [r.name, r.requestHeaders]), [['default/echo/0', { set: { 'x-routed-by': 'echo' } }]]);
    } finally {
      await client.close();
    }

    const analyzed = await sinew('analyze');
    assert.equal(analyzed.status, 1, analyzed.stderr);
    const conflict = analyzed.stderr.split('\n').filter((l) => l.includes('[SNW1010]') && l.includes('host echo.default.svc.cluster.local'));
    assert.deepEqual(conflict.map((l) => /\(VirtualService (\S+)\)/.exec(l)?.[1]).sort(), ['default/default', 'default/echo']);
    assert.match(conflict.find((l) => l.includes('(VirtualService default/default)'))!, /sidecars use default\/echo, the oldest, and ignore this one for this host/);
    // Clean up for the tests below.
    assert.equal((await sinew('delete', '-f', file('set-authority-header.yaml', fixture('set-authority-header.yaml')))).status, 0);
  });
});

describe('sinew analyze reads the config in force', () => {
  const destinationRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

  before(async () => {
    const applied = await sinew('apply', '-f', file('mesh.yaml', `${reviewsService}---\n${destinationRule}`));
    assert.equal(applied.status, 0, applied.stderr);
  });

  test('a file whose subsets are defined in the mesh is not reported; with --local it is', async () => {
    const vs = file('routes.yaml', reviewsVs('v2', 'reviews-routes'));
    const layered = await sinew('analyze', '-f', vs, '-o', 'json');
    const report = JSON.parse(layered.stdout) as { inForce: { revision: number; resources: number; replaced: number }; diagnostics: { code: string; resource?: { name: string } }[] };
    assert.ok(!report.diagnostics.some((d) => d.code === 'SNW1001' && d.resource?.name === 'reviews-routes'), layered.stdout);
    assert.equal(report.inForce.revision, cp.store.revision);
    assert.equal(report.inForce.resources, cp.store.list().length);

    const local = await sinew('analyze', '-f', vs, '--local');
    assert.equal(local.status, 1);
    assert.match(local.stderr, /error \[SNW1001\] \(VirtualService default\/reviews-routes\) .*routes\.yaml:9:\d+ .*subset "v2"/);
  });

  test('a file replaces the resource in force with the same kind, namespace and name', async () => {
    // In force: `reviews` routes to subset v2 (the apply -f a -f b test above). A file that
    // renames the subset to one the DestinationRule lacks is what gets analysed.
    const broken = file('reviews-v9.yaml', reviewsVs('v9'));
    const run = await sinew('analyze', '-f', broken);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /error \[SNW1001\] \(VirtualService default\/reviews\) .*reviews-v9\.yaml:9:\d+ .*subset "v9"/);
    assert.match(run.stderr, new RegExp(`✘ .*; ${cp.store.list().length} resources analyzed \\(${cp.store.list().length} in force at revision ${cp.store.revision}, 1 from files replacing 1 of them\\)`));
  });

  test('with no file it analyses what is in force and says so', async () => {
    const run = await sinew('analyze');
    assert.match(run.stdout + run.stderr, new RegExp(`${cp.store.list().length} resources analyzed \\(${cp.store.list().length} in force at revision ${cp.store.revision}\\)`));
  });

  test('a control plane that does not answer is a clear error naming --local, exit 3', async () => {
    const port = await freePort();
    const deadState = join(dir, 'dead');
    mkdirSync(deadState, { recursive: true });
    writeFileSync(join(deadState, 'api-token'), 'f'.repeat(64) + '\n', { mode: 0o600 });
    writeFileSync(join(deadState, 'mesh.json'), JSON.stringify({ pid: 1, startedAt: new Date().toISOString(), controlPlane: { api: `127.0.0.1:${port}`, push: `127.0.0.1:${port}`, tokenFile: join(deadState, 'api-token') } }));
    const run = await sinew('analyze', '-f', file('routes.yaml', reviewsVs('v2')), '--state-dir', deadState);
    assert.equal(run.status, 3);
    assert.match(run.stderr, /✘ cannot analyze the config in force: cannot reach the control plane at http:\/\/127\.0\.0\.1:\d+.*\n {2}Add --local to analyze the files alone\./);
  });

  test('no mesh at all: files are analysed alone, with a note', async () => {
    const run = await sinew('analyze', '-f', file('routes.yaml', reviewsVs('v2')), '--state-dir', join(dir, 'nothing-here'));
    assert.match(run.stderr, /^note: no running mesh found, so the files are analyzed alone/);
    assert.match(run.stderr, /SNW1001/);
  });
});

/** A port nothing listens on: bound, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
