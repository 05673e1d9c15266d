/**
 * Workloads with several replicas start every time, also on a machine whose every core is
 * busy. Regression: both replicas of a two-replica Workload published their workload's
 * registration built from the replicas that had finished starting, so the second PUT dropped
 * the first replica, whose sidecar never got a config ("no registered replica for proxy
 * sidecar~echo-v1-0.default"), and after 30 s `sinew up` exited, taking the mesh with it (3 of 3
 * starts). The topology (fixtures/echo/replicas.yaml) has a two-replica and a three-replica
 * workload behind one Service; each start must bring every replica up and reach each one
 * through the ingress gateway.
 *
 * SINEW_TEST_STARTS and SINEW_TEST_LOADED_STARTS set how many starts each test makes (CI: 3 and
 * 2; `SINEW_TEST_STARTS=20 SINEW_TEST_LOADED_STARTS=20` for the twenty-in-a-row run). Each test
 * reports every start's time as a diagnostic.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { get, processesMentioning, repo, startMesh, until } from './support.js';

const topology = join(repo, 'test/mesh/fixtures/echo/replicas.yaml');
const starts = Number(process.env.SINEW_TEST_STARTS ?? 3);
const loadedStarts = Number(process.env.SINEW_TEST_LOADED_STARTS ?? 2);

/** One start: every replica ready, each reached through the gateway, then stopped with nothing left. */
async function startOnce(): Promise<number> {
  const began = Date.now();
  const mesh = await startMesh([topology], { timeoutMs: 180_000 });
  const upAfter = Date.now() - began;
  try {
    assert.doesNotMatch(mesh.log(), /no registered replica/);
    const status = await mesh.status();
    const replicas = status.workloads.flatMap((w) => w.replicas.map((r) => ({ workload: w.name, ...r })));
    assert.deepEqual(replicas.map((r) => r.id).sort(), ['echo-v1-0', 'echo-v1-1', 'echo-v2-0', 'echo-v2-1', 'echo-v2-2']);
    for (const r of replicas) {
      assert.equal(r.ready, true, `${r.id} ready (${r.reason})`);
      assert.equal(r.proxy.sync, 'SYNCED', `${r.id}'s sidecar holds its config`);
    }
    // Each replica answers with its own port: through the gateway, every one of them is reached.
    const gateway = status.gateways[0].replicas[0].proxy.inbound!;
    const byPort = new Map(replicas.map((r) => [Number(r.app!.split(':')[1]), r.id]));
    const seen = new Set<string>();
    await until(`every replica answering through the gateway (seen: ${[...seen].join(', ')})`, async () => {
      const reply = await get(`http://${gateway}/`);
      assert.equal(reply.status, 200, reply.body);
      seen.add(byPort.get((JSON.parse(reply.body) as { port: number }).port) ?? 'unknown');
      return seen.size === replicas.length ? true : undefined;
    }, 30_000);
    assert.deepEqual([...seen].sort(), [...byPort.values()].sort());
  } finally {
    await mesh.stop();
  }
  assert.deepEqual(processesMentioning(mesh.stateDir), [], 'nothing left running');
  return upAfter;
}

/** A busy loop on every core, as a loaded laptop or CI runner has; stopped in `finally`. */
function loadEveryCore(): ChildProcess[] {
  return Array.from({ length: availableParallelism() }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

describe('multi-replica workloads start every time', { timeout: 900_000 }, () => {
  test(`regression: workloads with 2 and 3 replicas start (${starts} times in a row)`, async (t) => {
    const times: number[] = [];
    for (let i = 0; i < starts; i++) times.push(await startOnce());
    t.diagnostic(`up after (ms): ${times.join(', ')}`);
  });

  test(`and with a busy loop on every core (${loadedStarts} times in a row)`, async (t) => {
    const burners = loadEveryCore();
    try {
      const times: number[] = [];
      for (let i = 0; i < loadedStarts; i++) times.push(await startOnce());
      t.diagnostic(`up after (ms), ${burners.length} cores busy: ${times.join(', ')}`);
    } finally {
      for (const b of burners) b.kill('SIGKILL');
    }
  });
});
