/**
 * Every command handles a closed stdout quietly (`sinew status | head -2`): it finishes as it
 * would have, with the same exit code, and prints no stack trace. Regression: Node reports a
 * closed pipe as an EPIPE 'error' event on process.stdout; nobody listened, so `sinew status`
 * piped into `head -2` crashed with "Error: write EPIPE" about one run in three (whenever head
 * had exited before the last write).
 *
 * Each command runs twice against a real control plane: once with its output read, once with
 * the reading end closed before it writes a byte (which makes the EPIPE certain, not one in three).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { OperatorApi } from '../controlplane/helpers.js';

const repo = resolve(import.meta.dirname, '../..');
const bin = join(repo, 'bin/sinew.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runRead(args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [bin, ...args], { cwd: repo, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

/** Runs the command with the reading end of its stdout closed from the start. */
function runClosed(args: string[]): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout: '', stderr });
    });
  });
}

describe('a closed stdout ends the output quietly', { timeout: 240_000 }, () => {
  let cp: ControlPlane;
  let server: string;

  before(async () => {
    cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: true });
    server = cp.addresses.api;
    // Some config in force, so that `get` has rows to print.
    const body = readFileSync(join(repo, 'examples/bookinfo/bookinfo-gateway.yaml'), 'utf8');
    const res = await new OperatorApi(cp).apply(body);
    assert.equal(res.status, 200, await res.text());
  });

  after(async () => {
    await cp?.close();
  });

  const commands: [string, () => string[]][] = [
    ['status', () => ['status', '--server', server, '--token', cp.credentials.apiToken]],
    ['status -o json', () => ['status', '--server', server, '-o', 'json', '--token', cp.credentials.apiToken]],
    ['proxy-status', () => ['proxy-status', '--server', server, '--token', cp.credentials.apiToken]],
    ['get', () => ['get', 'virtualservices', '-A', '--server', server, '-o', 'yaml', '--token', cp.credentials.apiToken]],
    ['traces', () => ['traces', '--server', server, '--token', cp.credentials.apiToken]],
    ['validate', () => ['validate', '-f', 'examples/bookinfo', '-o', 'json']],
    ['analyze', () => ['analyze', '-f', 'examples/bookinfo']],
    ['--help', () => ['--help']],
  ];

  for (const [name, args] of commands) {
    test(`regression: sinew ${name} with its stdout closed exits as it would, without a stack trace`, async () => {
      const read = await runRead(args());
      assert.notEqual(read.stdout, '', 'the command prints something when its output is read');
      const closed = await runClosed(args());
      assert.doesNotMatch(closed.stderr, /EPIPE|Error|    at /, closed.stderr);
      assert.equal(closed.stderr, read.stderr, 'stderr is what it is when stdout is read');
      assert.equal(closed.code, read.code, `exit code: ${closed.stderr}`);
    });
  }

  test('sinew status | head -2 in a shell, five times over', async () => {
    for (let i = 0; i < 5; i++) {
      const run = await new Promise<Run>((done) => {
        execFile('bash', ['-c', `set -o pipefail; "${process.execPath}" "${bin}" status --server ${server} | head -2`], { cwd: repo, env: { ...process.env, SINEW_TOKEN: cp.credentials.apiToken }, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
          done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
        });
      });
      assert.equal(run.stderr, '', `run ${i}`);
      assert.equal(run.code, 0, `run ${i}`);
      assert.equal(run.stdout.split('\n').length, 3, run.stdout);
    }
  });
});
