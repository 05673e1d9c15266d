/**
 * Regression: a test file that left a server open on a failure path (as
 * test/telemetry/standard-metrics-regressions.test.ts did when its fixture was missing) kept its
 * process alive, and `npm test` never exited. With test/support/no-hang.ts loaded, as `npm test`
 * loads it, such a file fails, names what it left open, and its leftover child process is stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/reference-corpus.js';

const tsx = createRequire(import.meta.url).resolve('tsx/cli');
const noHang = join(repoRoot, 'test/support/no-hang.ts');

/** A test file that fails an assertion after starting a server and a child process it never stops. */
const leakingFile = `
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
test('starts a server and a child, then fails before closing them', async () => {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  console.log('LEFT ' + JSON.stringify({ port: server.address().port, pid: child.pid }));
  assert.equal(1, 2, 'a failing assertion');
  server.close();
  child.kill();
});
`;

const cleanFile = `
import { test } from 'node:test';
import net from 'node:net';
test('closes what it starts', async () => {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  await new Promise((resolve) => server.close(resolve));
});
`;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * `tsx --test --import no-hang.ts <file>` as `npm test` runs it. If it has not exited by
 * `deadlineMs`, kills its whole process group (tsx, the runner, the test file's process and
 * whatever that started: any of them would keep the output pipes, and this test, open) and rejects.
 */
function runTestFile(file: string, deadlineMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // Without NODE_TEST_CONTEXT, which marks this process as a test file's: with it, the
    // runner below would decline to run files ("run() is being called recursively").
    const { NODE_TEST_CONTEXT: _inherited, ...env } = process.env;
    const run = spawn(process.execPath, [tsx, '--test', '--import', noHang, file], {
      cwd: repoRoot,
      env: { ...env, SINEW_TEST_EXIT_GRACE_MS: '1000' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    run.stdout.on('data', (c: Buffer) => (output += c.toString()));
    run.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = setTimeout(() => {
      process.kill(-run.pid!, 'SIGKILL');
      reject(new Error(`the test run did not exit within ${deadlineMs} ms (it hangs):\n${output}`));
    }, deadlineMs);
    run.once('exit', (code) => {
      clearTimeout(deadline);
      resolve({ code, output });
    });
  });
}

test('regression: a test file that leaves a server and a child process open fails, naming them, instead of hanging', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sinew-no-hang-'));
  let leftPid: number | undefined;
  try {
    const file = join(dir, 'leaks.test.mjs');
    writeFileSync(file, leakingFile);
    const { code, output } = await runTestFile(file, 60_000);
    const left = JSON.parse(/LEFT (\{.*\})/.exec(output)?.[1] ?? 'null') as { port: number; pid: number } | null;
    assert.ok(left, output);
    leftPid = left.pid;
    assert.notEqual(code, 0, output);
    assert.match(output, /still running 1 s after its last test, so it would never exit/);
    assert.match(output, new RegExp(`server listening on 127\\.0\\.0\\.1:${left.port}`));
    assert.match(output, new RegExp(`child process ${left.pid}: `));
    // The leftover child was sent SIGTERM: poll until it is gone.
    const deadline = Date.now() + 10_000;
    while (alive(left.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(left.pid), false, `child ${left.pid} outlived the test file`);
  } finally {
    if (leftPid !== undefined && alive(leftPid)) process.kill(leftPid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a test file that closes what it starts passes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sinew-no-hang-'));
  try {
    const file = join(dir, 'clean.test.mjs');
    writeFileSync(file, cleanFile);
    const { code, output } = await runTestFile(file, 60_000);
    assert.equal(code, 0, output);
    assert.match(output, /^# pass 1$/m, output);
    assert.doesNotMatch(output, /still running/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
