/** `sinew analyze` as a user runs it, on Istio's own Bookinfo samples. */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtures } from '../support/reference-corpus.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bookinfo = join(fixtures.samples, 'bookinfo');
const rel = (path: string) => relative(repoRoot, path);
const services = rel(join(bookinfo, 'platform/kube/bookinfo.yaml'));
const allV1 = rel(join(bookinfo, 'networking/virtual-service-all-v1.yaml'));
const destinationRules = rel(join(bookinfo, 'networking/destination-rule-all.yaml'));
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-cli-analyze-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs the real command, `input` on its stdin; asynchronous so that the tests below can run side
 * by side. Its state directory is the test's own, which holds no mesh: a mesh someone runs from
 * the repository must not change what these file-only analyses find.
 */
function sinewWithInput(input: string | undefined, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const env = { ...process.env, SINEW_STATE_DIR: join(dir, 'no-mesh') };
    const child = execFile(process.execPath, ['bin/sinew.js', ...args], { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      done({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}
const sinew = (...args: string[]) => sinewWithInput(undefined, ...args);

describe('sinew analyze', { concurrency: true }, () => {
  test('Bookinfo routes to v1 without their DestinationRules: every missing subset is an error, exit 1', async () => {
    const run = await sinew('analyze', '-f', allV1, '-f', services);
    assert.equal(run.status, 1, run.stdout + run.stderr);
    const subsetErrors = run.stderr.split('\n').filter((l) => l.startsWith('error [SNW1001]'));
    const hosts = subsetErrors.map((l) => /\(VirtualService default\/(\w+)\)/.exec(l)?.[1]).sort();
    assert.deepEqual(hosts, ['details', 'productpage', 'ratings', 'reviews']);
    // Each names the file, the line and column of the `subset:` field, and the host.
    assert.ok(
      subsetErrors.includes(
        `error [SNW1001] (VirtualService default/reviews) ${allV1}:25:17 spec.http[0].route[0].destination.subset: subset "v1" of host reviews.default.svc.cluster.local is not defined: no DestinationRule applies to that host; requests on this route fail with 503 until one defines it`,
      ),
      run.stderr,
    );
    // The hosts themselves exist: bookinfo.yaml defines their Services.
    assert.doesNotMatch(run.stderr, /SNW1002/);
    assert.match(run.stderr, /✘ 4 errors, \d+ warnings; 8 resources analyzed/);
  });

  test('with destination-rule-all.yaml the subsets resolve: no subset errors, exit 0', async () => {
    const run = await sinew('analyze', '-f', allV1, '-f', services, '-f', destinationRules, '-o', 'json');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.valid, true);
    assert.equal(report.errors, 0);
    assert.equal(report.resources.length, 12);
    assert.ok(report.resources.some((r: { kind: string; name: string }) => r.kind === 'DestinationRule' && r.name === 'reviews'));
    assert.deepEqual(report.diagnostics.filter((d: { code: string }) => d.code.startsWith('SNW1')), []);
  });

  test('validation errors are printed and count, and the rest is still analyzed', async () => {
    const file = join(dir, 'mixed.yaml');
    writeFileSync(
      file,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {hosts: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  gateways: [no-such-gateway]
  http:
  - route: [{destination: {host: ratings}}]
`,
    );
    const run = await sinew('analyze', '-f', rel(file), '-f', services);
    assert.equal(run.status, 1);
    assert.match(run.stderr, new RegExp(`^error \\[SNW0104\\] \\(VirtualService default/broken\\) ${rel(file).replace(/[.]/g, '\\.')}:7:28 spec\\.http\\[0\\]\\.route\\[0\\]\\.destination\\.hosts: unknown field "hosts"; did you mean "host"\\?$`, 'm'));
    assert.match(run.stderr, new RegExp(`^error \\[SNW1003\\] \\(VirtualService default/ratings\\) ${rel(file).replace(/[.]/g, '\\.')}:14:14 spec\\.gateways\\[0\\]: gateway "no-such-gateway"`, 'm'));
    assert.match(run.stderr, /\(\d+ from validation; resources with errors are left out of the analysis\)/);
  });

  test('reads stdin (-) like validate does', async () => {
    const yaml = `apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: lonely, labels: {app: lonely}}
spec:
  command: [node, lonely.js]
`;
    const run = await sinewWithInput(yaml, 'analyze', '-f', '-');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /^warning \[SNW1009\] \(Workload default\/lonely\) <stdin>:3:\d+ metadata\.labels: no Service in namespace default selects this Workload/m);
    assert.match(run.stdout, /✔ 1 resource analyzed: 0 errors, 1 warning/);
  });

  test('usage errors exit 2, nothing to analyze exits 3, and the help documents the exit codes', async () => {
    const unknown = await sinew('analyze', '--bogus');
    assert.equal(unknown.status, 2);
    const localAlone = await sinew('analyze', '--local');
    assert.equal(localAlone.status, 2);
    assert.match(localAlone.stderr, /--local analyzes files alone: name them with -f/);
    // No -f and no mesh: the config in force is what it would analyze, and there is none.
    const nothing = await sinew('analyze');
    assert.equal(nothing.status, 3, nothing.stderr);
    assert.match(nothing.stderr, /✘ nothing to analyze: no running mesh found .*start one with "sinew up".*or name files with -f/);
    const help = await sinew('analyze', '--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Exit codes:\n {2}0 {2}no errors \(warnings allowed\)\n {2}1 {2}at least one error/);
  });
});
