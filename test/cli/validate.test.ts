/**
 * `sinew validate` as a user runs it: the real command in a child process, its exit code,
 * what it prints, and the JSON a script would parse.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateInputs } from '../../src/config/validate.js';
import { fixtures } from '../support/reference-corpus.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bookinfoNetworking = join(fixtures.samples, 'bookinfo/networking');
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-cli-validate-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real command; asynchronous so that the tests below can run side by side. */
function sinew(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/sinew.js', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      done({ status, stdout, stderr });
    });
  });
}

/** Writes a file in the scratch folder and returns its path as the CLI will print it. */
function scratch(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return relative(repoRoot, path);
}

const goodService = `apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
`;

// The typos people really make: a misspelt API group, a plural where Istio wants a single
// host, a field one level too high, and Istio's pre-1.5 outlier field.
const typos = `apiVersion: networking.stio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - match:
    - uri:
        prefix: /reviews
    route:
      - destination:
          hosts: reviews
          subset: v1
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      maxConnection: 10
    outlierDetection:
      consecutiveErrors: 5
      interval: 5m
      baseEjectionTime: 15m
  subsets:
  - name: v1
    labels:
      version: v1
`;

/** One run of the typos file serves the tests that read its text output (each spawn costs ~2 s). */
let typosRun: Promise<{ file: string; run: Run }> | undefined;
function runTypos() {
  if (!typosRun) {
    const file = scratch('typos.yaml', typos);
    typosRun = sinew('validate', '-f', file).then((run) => ({ file, run }));
  }
  return typosRun;
}

// Each test waits on child processes; side by side they take a third of the time.
describe('sinew validate', { concurrency: true }, () => {
  test('valid input exits 0 and says so on stdout', async () => {
    const run = await sinew('validate', '-f', scratch('good.yaml', goodService));
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /✔ 1 resource valid/);
    assert.equal(run.stderr, '');
  });

  test('warnings alone still exit 0', async () => {
    const deployment = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: reviews-v1\nspec: {}\n';
    const run = await sinew('validate', '-f', scratch('with-warning.yaml', `${goodService}---\n${deployment}`));
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /^warning \[SNW0014\] .*with-warning\.yaml:13:7 /m);
    assert.match(run.stdout, /1 resource valid, 1 skipped, 1 warning/);
  });

  test('any error exits 1 with a summary that names the count', async () => {
    const run = await sinew('validate', '-f', scratch('bad.yaml', goodService.replace('name: reviews', 'name: Reviews')));
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^error \[SNW0012\] \(Service default\/Reviews\) .*bad\.yaml:4:9 metadata\.name: invalid name "Reviews"/m);
    assert.match(run.stderr, /✘ 1 error; 0 resources valid/);
  });

  test('usage errors exit 2', async () => {
    const missingFile = await sinew('validate');
    assert.equal(missingFile.status, 2);
    assert.match(missingFile.stderr, /required option '-f, --filename <path>'/);
    const [badFormat, badCommand] = await Promise.all([sinew('validate', '-f', 'x.yaml', '-o', 'xml'), sinew('no-such-command')]);
    assert.equal(badFormat.status, 2);
    assert.equal(badCommand.status, 2);
  });

  test('-o json prints parseable JSON with valid, errors, warnings and diagnostics', async () => {
    const good = await sinew('validate', '-o', 'json', '-f', scratch('good.json.yaml', goodService));
    assert.equal(good.status, 0);
    const ok = JSON.parse(good.stdout);
    assert.equal(ok.valid, true);
    assert.equal(ok.errors, 0);
    assert.equal(ok.warnings, 0);
    assert.deepEqual(ok.diagnostics, []);

    const bad = await sinew('validate', '-o', 'json', '-f', scratch('typos-json.yaml', typos));
    assert.equal(bad.status, 1);
    const report = JSON.parse(bad.stdout);
    assert.equal(report.valid, false);
    assert.equal(report.errors, report.diagnostics.filter((d: { level: string }) => d.level === 'error').length);
    assert.ok(report.errors >= 3);
    const apiVersion = report.diagnostics.find((d: { code: string }) => d.code === 'SNW0009');
    assert.deepEqual(apiVersion.resource, { kind: 'VirtualService', namespace: 'default', name: 'reviews' });
    assert.deepEqual(apiVersion.source, { file: relative(repoRoot, join(dir, 'typos-json.yaml')), line: 1, column: 13 });
    assert.equal(apiVersion.path, 'apiVersion');
  });

  test('the typos file: every error with file:line:col and a "did you mean"', async () => {
    const { file, run } = await runTypos();
    assert.equal(run.status, 1);
    const lines = run.stderr.split('\n');
    const expect = (pattern: string) =>
      assert.ok(lines.some((l) => l.startsWith(pattern)), `no line starting with:\n  ${pattern}\nin:\n${run.stderr}`);
    expect(
      `error [SNW0009] (VirtualService default/reviews) ${file}:1:13 apiVersion: unknown apiVersion "networking.stio.io/v1alpha3" for VirtualService; did you mean "networking.istio.io/v1alpha3"?`,
    );
    expect(
      `error [SNW0104] (VirtualService default/reviews) ${file}:14:11 spec.http[0].route[0].destination.hosts: unknown field "hosts"; did you mean "host"?`,
    );
    // Every finding names its resource, file, line and column.
    const findings = lines.filter((l) => /^(error|warning) \[/.test(l));
    assert.ok(findings.length >= 4, run.stderr);
    for (const l of findings) assert.match(l, new RegExp(`^(error|warning) \\[SNW\\d{4}\\] \\((VirtualService|DestinationRule) default/reviews\\) ${escape(file)}:\\d+:\\d+ `));
  });

  test('the typos file: DestinationRule fields one level too high or out of date', async () => {
    const { file, run } = await runTypos();
    assert.equal(run.status, 1);
    // connectionPool takes tcp/http sub-messages: the hint points one level down.
    assert.match(
      run.stderr,
      new RegExp(`^error \\[SNW0104\\] \\(DestinationRule default/reviews\\) ${escape(file)}:25:7 spec\\.trafficPolicy\\.connectionPool\\.maxConnection: unknown field "maxConnection"; did you mean "tcp\\.maxConnections"\\?$`, 'm'),
    );
    // consecutiveErrors was replaced by consecutive5xxErrors / consecutiveGatewayErrors in Istio 1.5.
    assert.match(run.stderr, new RegExp(`\\(DestinationRule default/reviews\\) ${escape(file)}:27:\\d+ spec\\.trafficPolicy\\.outlierDetection\\.consecutiveErrors: .*consecutive(5xx|Gateway)Errors`, 'm'));
    // Valid durations are not flagged.
    assert.doesNotMatch(run.stderr, /interval|baseEjectionTime/);
  });

  test("every file in Istio's bookinfo networking samples validates on its own", async () => {
    const files = readdirSync(bookinfoNetworking).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length > 15);
    for (const f of files) {
      const result = await validateInputs([join(bookinfoNetworking, f)]);
      const errors = result.diagnostics.filter((d) => d.level === 'error');
      assert.deepEqual(errors, [], f);
      assert.ok(result.resources.length > 0, f);
    }
  });

  test('sinew validate -f <bookinfo networking samples folder> prints success', async () => {
    const run = await sinew('validate', '-f', 'samples/bookinfo/networking');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /✔ \d+ resources valid/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
