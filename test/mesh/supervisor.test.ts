import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { ManualClock } from '../../src/core/clock.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessRegistry, readRecordedProcesses } from '../../src/mesh/state.js';
import { Supervisor, SupervisorClosedError, allocatePort, type ManagedProcess } from '../../src/mesh/supervisor.js';

const node = process.execPath;

function waitForState(p: ManagedProcess, state: string): Promise<void> {
  if (p.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    const on = (s: string) => {
      if (s === state) {
        p.off('state', on);
        resolve();
      }
    };
    p.on('state', on);
  });
}

/** Alive and not a zombie (an orphan reparented to a PID 1 that does not reap stays a zombie). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('supervisor', () => {
  test('prefixes every output line with the replica name', async () => {
    const lines: string[] = [];
    const sup = new Supervisor({ output: (l) => lines.push(l) });
    const p = sup.start({ id: 'ratings-v1-0', command: node, args: ['-e', 'console.log("one"); console.error("two")'], cwd: process.cwd(), env: { PATH: process.env.PATH ?? '' } });
    await once(p, 'exit');
    await sup.stopAll();
    assert.ok(lines.includes('[ratings-v1-0] one'), lines.join('\n'));
    assert.ok(lines.includes('[ratings-v1-0] two'), lines.join('\n'));
  });

  test('restarts a crashed process with doubling backoff (manual clock)', async () => {
    const clock = new ManualClock();
    const lines: string[] = [];
    const sup = new Supervisor({ clock, output: (l) => lines.push(l), initialBackoffMs: 1000 });
    const p = sup.start({ id: 'crash', command: node, args: ['-e', 'process.exit(3)'], cwd: process.cwd(), env: {} });
    await waitForState(p, 'backoff');
    assert.equal(p.restarts, 0);
    clock.advance(999);
    assert.equal(p.state, 'backoff', 'not restarted before the backoff elapsed');
    clock.advance(1);
    await waitForState(p, 'backoff'); // crashed again
    assert.equal(p.restarts, 1);
    clock.advance(1999);
    assert.equal(p.restarts, 1, 'second backoff is twice as long');
    clock.advance(1);
    assert.equal(p.restarts, 2);
    await sup.stopAll();
    assert.equal(p.state, 'stopped');
    assert.ok(lines.some((l) => l.includes('exited (code 3); restarting in 1.0s')), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('exited (code 3); restarting in 2.0s')), lines.join('\n'));
  });

  test('stop kills the whole process group: no orphaned grandchild', async () => {
    const lines: string[] = [];
    const sup = new Supervisor({ output: (l) => lines.push(l), stopGraceMs: 2000 });
    // The child starts a grandchild that ignores SIGTERM, prints its pid, and waits.
    const script = `
      const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      console.log('grandchild ' + g.pid);
      setInterval(() => {}, 1000);
    `;
    const p = sup.start({ id: 'tree', command: node, args: ['-e', script], cwd: process.cwd(), env: {} });
    const grandchild = await new Promise<number>((resolve) => {
      const check = () => {
        const line = lines.find((l) => l.startsWith('[tree] grandchild '));
        if (line) resolve(Number(line.split(' ').pop()));
        else setImmediate(check);
      };
      check();
    });
    assert.ok(isAlive(grandchild));
    await sup.stopAll();
    assert.equal(p.state, 'stopped');
    // The SIGKILL is sent before stopAll() resolves, but the killed process must still be
    // scheduled to exit, which on a loaded machine takes longer than a few event-loop turns.
    const deadline = Date.now() + 5000;
    while (isAlive(grandchild) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(isAlive(grandchild), false, 'grandchild was killed with its group');
  });

  test('every process is written down before it starts, with its pid once spawned, and struck off once stopped', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sinew-sup-'));
    try {
      const lines: string[] = [];
      const sup = new Supervisor({ output: (l) => lines.push(l), recorder: new ProcessRegistry(stateDir, 'run-1') });
      // The child itself looks for its record: it must exist before the process runs.
      const script = `const fs = require('node:fs'); console.log(fs.existsSync(${JSON.stringify(join(stateDir, 'processes', 'app-0.json'))}) ? 'recorded' : 'missing'); setInterval(() => {}, 1000);`;
      const p = sup.start({ id: 'app-0', command: node, args: ['-e', script], cwd: process.cwd(), env: {} });
      assert.deepEqual(readRecordedProcesses(stateDir).map((r) => [r.id, r.runId, r.pid]), [['app-0', 'run-1', p.pid]]);
      await new Promise<void>((resolve) => {
        const check = () => (lines.length ? resolve() : setImmediate(check));
        check();
      });
      assert.deepEqual(lines, ['[app-0] recorded']);
      assert.deepEqual(p.recentLines, ['recorded']);
      await sup.stopAll();
      assert.deepEqual(readRecordedProcesses(stateDir), []);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('restart() stops a running process and its backoff keeps growing, even after a long run (manual clock)', async () => {
    const clock = new ManualClock();
    const lines: string[] = [];
    const sup = new Supervisor({ clock, output: (l) => lines.push(l), initialBackoffMs: 1000, stableAfterMs: 10_000 });
    const p = sup.start({ id: 'slow', command: node, args: ['-e', 'setInterval(() => {}, 1000)'], cwd: process.cwd(), env: {} });
    for (const expected of [1000, 2000, 4000]) {
      await waitForState(p, 'running');
      // Longer than stableAfterMs: a crash now would start the backoff over; a forced restart does not.
      clock.advance(20_000);
      assert.equal(p.nextBackoffMs, expected);
      p.restart();
      await waitForState(p, 'backoff');
      clock.advance(expected - 1);
      assert.equal(p.state, 'backoff', `not restarted before ${expected} ms`);
      clock.advance(1);
    }
    await waitForState(p, 'running');
    assert.equal(p.restarts, 3);
    assert.ok(!lines.some((l) => l.includes('exited')), 'a forced restart is not reported as a crash');
    await sup.stopAll();
  });

  test('nothing starts once stopAll() has begun', async () => {
    const sup = new Supervisor({ output: () => undefined });
    await sup.stopAll();
    assert.throws(() => sup.start({ id: 'late', command: node, args: ['-e', ''], cwd: process.cwd(), env: {} }), SupervisorClosedError);
  });

  test('allocatePort never hands out the same port twice (regression: two replicas got one port)', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await allocatePort());
    assert.ok(ports.every((p) => p > 0));
    assert.equal(new Set(ports).size, ports.length);
  });
});
