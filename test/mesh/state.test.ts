/**
 * The state directory's process records (src/mesh/state.ts), with real processes: what a runner
 * that died left is found and stopped — its recorded process groups, a descendant that left its
 * group, a process started in the instant before its pid was written down — and a recorded pid
 * that now belongs to someone else is left alone.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLeftovers, isAlive, liveRunnerPid, MESH_RUN_ENV, ProcessRegistry, readRecordedProcesses, stopLeftovers, writeMeshFile, processStartTime } from '../../src/mesh/state.js';
import { Supervisor } from '../../src/mesh/supervisor.js';

const node = process.execPath;
const linux = process.platform === 'linux';

function kill(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
}

describe('the state directory', () => {
  test('stopLeftovers stops what a dead runner left: its process groups and a descendant that left its group', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sinew-state-'));
    const strays: number[] = [];
    let sup: Supervisor | undefined;
    try {
      const runId = 'run-dead';
      // A supervisor that is never stopped: its runner "died".
      sup = new Supervisor({ output: () => undefined, recorder: new ProcessRegistry(stateDir, runId) });
      const env = { [MESH_RUN_ENV]: runId, PATH: process.env.PATH ?? '' };
      // The app starts a grandchild in a session of its own (setsid), out of reach of a group kill.
      const script = `const { spawn } = require('node:child_process'); const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' }); console.log('grandchild ' + g.pid); setInterval(() => {}, 1000);`;
      const app = sup.start({ id: 'app-0', command: node, args: ['-e', script], cwd: process.cwd(), env });
      const proxy = sup.start({ id: 'app-0/proxy', command: node, args: ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'], cwd: process.cwd(), env });
      const grandchild = await new Promise<number>((resolve) => {
        const check = () => {
          const line = app.recentLines.find((l) => l.startsWith('grandchild '));
          if (line) resolve(Number(line.split(' ')[1]));
          else setTimeout(check, 10);
        };
        check();
      });
      strays.push(app.pid!, proxy.pid!, grandchild);
      assert.deepEqual(readRecordedProcesses(stateDir).map((r) => r.id).sort(), ['app-0', 'app-0/proxy']);

      const found = findLeftovers(stateDir);
      assert.deepEqual(found.alive, linux ? [app.pid!, proxy.pid!, grandchild].sort((a, b) => a - b) : [app.pid!, proxy.pid!].sort((a, b) => a - b));
      // The proxy ignores SIGTERM: the grace period ends with SIGKILL.
      await stopLeftovers(stateDir, { graceMs: 300 });
      assert.equal(isAlive(app.pid!), false, 'the app');
      assert.equal(isAlive(proxy.pid!), false, 'the proxy that ignored SIGTERM');
      if (linux) assert.equal(isAlive(grandchild), false, 'the grandchild found by its marker');
      assert.deepEqual(readRecordedProcesses(stateDir), []);
    } finally {
      kill(strays);
      // Its processes are gone; stop it too, so it does not restart them after the test.
      await sup?.stopAll();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('a process spawned just before its pid was written down is found by its marker (Linux)', { skip: linux ? false : 'finding processes by their environment needs /proc' }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sinew-state-'));
    let child: ChildProcess | undefined;
    try {
      // The record as the runner writes it before the spawn: no pid yet.
      mkdirSync(join(stateDir, 'processes'));
      writeFileSync(join(stateDir, 'processes', 'app-0.json'), JSON.stringify({ id: 'app-0', runId: 'run-x', command: node, args: [], launchedAt: new Date().toISOString() }));
      child = spawn(node, ['-e', 'setInterval(() => {}, 1000)'], { env: { [MESH_RUN_ENV]: 'run-x' }, stdio: 'ignore' });
      await new Promise((r) => child!.once('spawn', r));
      assert.deepEqual(findLeftovers(stateDir).alive, [child.pid]);
      await stopLeftovers(stateDir, { graceMs: 1000 });
      await new Promise((r) => (child!.exitCode !== null || child!.signalCode !== null ? r(undefined) : child!.once('exit', r)));
      assert.equal(child.signalCode, 'SIGTERM');
    } finally {
      child?.kill('SIGKILL');
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('a recorded pid that now belongs to another process is left alone (Linux)', { skip: linux ? false : 'telling a reused pid apart needs /proc' }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sinew-state-'));
    // Someone else's process, without the run's marker, holding a pid the state directory names.
    const other = spawn(node, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => other.once('spawn', r));
      mkdirSync(join(stateDir, 'processes'));
      writeFileSync(join(stateDir, 'processes', 'app-0.json'), JSON.stringify({ id: 'app-0', runId: 'run-old', pid: other.pid, command: node, args: [], launchedAt: new Date().toISOString() }));
      assert.deepEqual(findLeftovers(stateDir).alive, []);
      await stopLeftovers(stateDir, { graceMs: 200 });
      assert.equal(isAlive(other.pid!), true);
      // Likewise a runner pid in mesh.json: a live process that started at another time is not the runner.
      writeMeshFile(stateDir, { pid: other.pid!, pidStartTime: '1', runId: 'run-old', startedAt: new Date().toISOString(), controlPlane: { api: '127.0.0.1:1', push: '127.0.0.1:2' } });
      assert.equal(liveRunnerPid(stateDir), undefined);
      writeMeshFile(stateDir, { pid: other.pid!, pidStartTime: processStartTime(other.pid!), runId: 'run-old', startedAt: new Date().toISOString(), controlPlane: { api: '127.0.0.1:1', push: '127.0.0.1:2' } });
      assert.equal(liveRunnerPid(stateDir), other.pid);
      assert.match(readFileSync(join(stateDir, 'mesh.json'), 'utf8'), /"runId": "run-old"/);
    } finally {
      other.kill('SIGKILL');
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
