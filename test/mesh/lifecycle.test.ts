/**
 * `sinew up` and `sinew down` on every way a run can end: a signal while the mesh is still
 * starting, a runner killed with kill -9 (before and after the mesh is up), a control plane that
 * cannot start, and a second run on the state directory of a first (the config it left).
 * After each, no process of the mesh may be left running: every process `sinew up` starts
 * carries the state directory in its environment (SINEW_STATE_DIR), which is how
 * `processesMentioning` finds them.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, get, processesMentioning, repo, sinew, startMesh, until } from './support.js';

const fixtures = join(repo, 'test/mesh/fixtures/echo');
const one = join(fixtures, 'one.yaml');
const replicas = join(fixtures, 'replicas.yaml');

/** `sinew up` as a user runs it, in `stateDir`; the caller stops it. */
function runUp(stateDir: string, paths: string[], ...args: string[]) {
  const child = spawn(process.execPath, [bin, 'up', ...paths, '--state-dir', stateDir, '--gateway-port', '0', ...args], {
    cwd: repo,
    env: { ...process.env, SINEW_STATE_DIR: stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, log: () => log, exited };
}

/** Last resort for a failed test: stop whatever the state directory still lists, then remove it. */
async function cleanUp(stateDir: string): Promise<void> {
  if (existsSync(join(stateDir, 'mesh.json')) || existsSync(join(stateDir, 'processes'))) await sinew(stateDir, 'down');
  for (const pid of processesMentioning(stateDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
  rmSync(stateDir, { recursive: true, force: true });
}

const freshStateDir = () => mkdtempSync(join(tmpdir(), 'sinew-life-'));

describe('sinew up / sinew down: every way out stops everything', { timeout: 300_000 }, () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`regression: ${signal} while the mesh is starting stops everything started so far`, async () => {
      const stateDir = freshStateDir();
      try {
        const up = runUp(stateDir, [replicas]);
        // The control plane, the gateway and the sidecars run; no app has started yet.
        await until('the sidecars to be starting', async () => (/starting echo-v2-2: sidecar/.test(up.log()) ? true : up.child.exitCode !== null ? Promise.reject(new Error(up.log())) : undefined));
        assert.doesNotMatch(up.log(), /the mesh is up/);
        assert.ok(processesMentioning(stateDir).length >= 3, 'the control plane, the gateway and sidecars run');
        up.child.kill(signal);
        const { code } = await up.exited;
        assert.equal(code, 0, up.log());
        assert.deepEqual(processesMentioning(stateDir), [], `nothing left running:\n${up.log()}`);
        assert.equal(existsSync(join(stateDir, 'mesh.json')), false, 'mesh.json removed');
        assert.equal(existsSync(join(stateDir, 'processes')), false, 'the process records removed');
      } finally {
        await cleanUp(stateDir);
      }
    });
  }

  test('regression: sinew down stops what a runner killed with kill -9 left, and the mesh served until then', async () => {
    const mesh = await startMesh([one], { removeStateDir: false });
    try {
      const status = await mesh.status();
      const gateway = status.gateways[0].replicas[0].proxy.inbound!;
      mesh.process.kill('SIGKILL');
      await new Promise((r) => mesh.process.once('exit', r));
      // The parts outlive their runner (and its closed output pipes) and keep serving.
      for (let i = 0; i < 5; i++) assert.equal((await get(`http://${gateway}/`)).status, 200);
      assert.equal(processesMentioning(mesh.stateDir).length, 4, 'control plane, gateway, sidecar and app still run');
      const down = await sinew(mesh.stateDir, 'down');
      assert.equal(down.status, 0, down.stderr);
      assert.match(down.stdout, /is not running, but 4 processes it started are \(.*control-plane.*\); stopping them/);
      assert.match(down.stdout, /✔ mesh stopped/);
      assert.deepEqual(processesMentioning(mesh.stateDir), []);
      assert.equal((await sinew(mesh.stateDir, 'down')).stdout, 'no mesh is running here (nothing to stop)\n');
    } finally {
      await cleanUp(mesh.stateDir);
    }
  });

  test('sinew down stops what a runner killed with kill -9 during start-up left', async () => {
    const stateDir = freshStateDir();
    try {
      const up = runUp(stateDir, [replicas]);
      await until('the sidecars to be starting', async () => (/starting echo-v2-2: sidecar/.test(up.log()) ? true : up.child.exitCode !== null ? Promise.reject(new Error(up.log())) : undefined));
      up.child.kill('SIGKILL');
      await up.exited;
      assert.ok(processesMentioning(stateDir).length >= 3);
      const down = await sinew(stateDir, 'down');
      assert.equal(down.status, 0, down.stderr);
      assert.deepEqual(processesMentioning(stateDir), []);
    } finally {
      await cleanUp(stateDir);
    }
  });

  test('config from the last run: a new run stops what a dead one left, says what is still in force, and --fresh starts clean', async () => {
    const stateDir = freshStateDir();
    try {
      // Run 1: a VirtualService applied by hand, then the runner dies.
      const first = await startMesh([one], { stateDir, removeStateDir: false });
      const applied = await sinew(stateDir, 'apply', '-f', join(fixtures, 'extra-route.yaml'));
      assert.equal(applied.status, 0, applied.stderr);
      first.process.kill('SIGKILL');
      await new Promise((r) => first.process.once('exit', r));

      // Run 2: same state directory. The leftovers are stopped; the extra VirtualService is named.
      const second = await startMesh([one], { stateDir, removeStateDir: false });
      assert.match(second.log(), /an earlier "sinew up" from .* is gone but left 4 processes running; stopping them/);
      assert.match(second.log(), /• applying 4 resources\n• 1 resource from the last run is still in force \(VirtualService default\/extra-route\); "sinew up --fresh" starts clean/);
      assert.equal((await sinew(stateDir, 'get', 'virtualservice', 'extra-route')).status, 0, 'still in force');
      await second.stop();
      assert.equal(second.process.exitCode, 0);

      // Run 3: --fresh drops it, and keeps the mesh CA (its root is what proxies and operators trust).
      const root = readFileSync(join(stateDir, 'control-plane', 'ca', 'root-cert.pem'), 'utf8');
      const third = await startMesh([one], { stateDir, removeStateDir: false, args: ['--fresh'] });
      assert.doesNotMatch(third.log(), /from the last run/);
      assert.equal(readFileSync(join(stateDir, 'control-plane', 'ca', 'root-cert.pem'), 'utf8'), root, 'the same root after --fresh');
      const got = await sinew(stateDir, 'get', 'virtualservice', 'extra-route');
      assert.notEqual(got.status, 0, got.stdout);
      assert.match(got.stderr, /not found/);
      await third.stop();
      assert.deepEqual(processesMentioning(stateDir), []);
    } finally {
      await cleanUp(stateDir);
    }
  });

  test('regression: sinew up with no path starts again in the same directory (its state directory is no manifest)', async () => {
    const dir = freshStateDir();
    try {
      copyFileSync(one, join(dir, 'mesh.yaml'));
      copyFileSync(join(fixtures, 'echo.mjs'), join(dir, 'echo.mjs'));
      const env = { ...process.env };
      delete env.SINEW_STATE_DIR;
      for (const run of [1, 2]) {
        // As a user runs it: in the manifests' directory, no path, the default state directory (.sinew).
        const child = spawn(process.execPath, [bin, 'up', '--gateway-port', '0'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let log = '';
        child.stdout.on('data', (c: Buffer) => (log += c.toString()));
        child.stderr.on('data', (c: Buffer) => (log += c.toString()));
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        try {
          await until(`run ${run} to come up`, async () => (/^✔ the mesh is up/m.test(log) ? true : child.exitCode !== null ? Promise.reject(new Error(log)) : undefined), 120_000);
        } finally {
          child.kill('SIGTERM');
        }
        assert.equal(await exited, 0, log);
        assert.ok(existsSync(join(dir, '.sinew', 'control-plane')), 'the state directory is .sinew beside the manifests');
      }
      assert.deepEqual(processesMentioning(dir), []);
    } finally {
      await cleanUp(join(dir, '.sinew'));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('only a control plane that cannot start makes sinew up give up: exit 1, its log lines, nothing left', async () => {
    const stateDir = freshStateDir();
    try {
      // The config the control plane keeps in the state directory, damaged (a disk that filled up).
      mkdirSync(join(stateDir, 'control-plane', 'config'), { recursive: true });
      writeFileSync(join(stateDir, 'control-plane', 'config', 'resources.json'), '{"revision": 3, "resources": [');
      const up = runUp(stateDir, [one]);
      const { code } = await up.exited;
      assert.equal(code, 1);
      assert.match(up.log(), /✘ the control plane could not start: it exited \(code 1\); nothing else was started/);
      assert.match(up.log(), /its last lines:\n(.*\n)*.*JSON/);
      assert.deepEqual(processesMentioning(stateDir), []);
      assert.deepEqual(readdirSync(stateDir).sort(), ['control-plane'], 'no mesh.json or process records left');
    } finally {
      await cleanUp(stateDir);
    }
  });

  test('a state directory that cannot be used is refused before anything starts', async () => {
    const stateDir = freshStateDir();
    try {
      writeFileSync(join(stateDir, 'control-plane'), 'not a directory\n');
      const up = runUp(stateDir, [one]);
      const { code } = await up.exited;
      assert.equal(code, 1);
      assert.match(up.log(), /✘ cannot prepare the state directory .*ENOTDIR/);
      assert.deepEqual(processesMentioning(stateDir), []);
    } finally {
      await cleanUp(stateDir);
    }
  });
});
