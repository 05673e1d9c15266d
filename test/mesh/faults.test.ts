/**
 * One late part must not take the mesh down. fixtures/echo/late.yaml runs a healthy two-replica
 * workload beside an app that never passes its readiness probe (broken-v1) and one that exits at
 * once (crashy-v1), with `--ready-timeout 4`. Each late part must be reported — what, why, and
 * the log lines that explain it — retried with a growing backoff, shown as not ready in
 * `sinew status`, while the healthy workload keeps serving through the gateway and `sinew up`
 * keeps running. Then a sidecar that dies and cannot start again (its admin port taken) is
 * reported the same way and comes back once it can.
 *
 * Regression: a part not ready within 30 s ended `sinew up` ("not every replica became ready"),
 * stopping the control plane and every workload with it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { MeshStatus, ReplicaStatus } from '../../src/api/mesh-status.js';
import { get, processesMentioning, repo, sinew, startMesh, until, type Mesh } from './support.js';

const READY_TIMEOUT_S = 4;

describe('a late part is reported, retried and shown; the rest of the mesh serves', { timeout: 240_000 }, () => {
  let mesh: Mesh;
  let gateway: string;

  const replica = (status: MeshStatus, id: string): ReplicaStatus => {
    const found = [...status.workloads, ...status.gateways].flatMap((w) => w.replicas).find((r) => r.id === id);
    return found ?? assert.fail(`no replica ${id} in ${JSON.stringify(status)}`);
  };
  /** `n` requests through the gateway to the healthy workload: all must answer 200. */
  const serves = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const reply = await get(`http://${gateway}/`);
      assert.equal(reply.status, 200, `request ${i}: ${reply.status} ${reply.body}`);
      assert.equal((JSON.parse(reply.body) as { workload: string }).workload, 'echo-v1');
    }
  };

  before(async () => {
    mesh = await startMesh([join(repo, 'test/mesh/fixtures/echo/late.yaml')], { allowNotReady: true, args: ['--ready-timeout', String(READY_TIMEOUT_S)] });
    gateway = (await mesh.status()).gateways[0].replicas[0].proxy.inbound!;
  });

  after(async () => {
    await mesh?.stop();
  });

  test('regression: sinew up keeps running and the healthy workload serves through the gateway', async () => {
    // The two broken parts at least; on a loaded machine a healthy sidecar can be late at first
    // too (reported and retried the same way), and is then waited for below.
    assert.match(mesh.log(), /^⚠ the mesh is up, but [2-5] of 5 replicas are not ready \(retrying; the rest serves\)/m);
    assert.equal(mesh.process.exitCode, null, 'sinew up still runs');
    await until('the healthy replicas and the gateway to be ready', async () => {
      const status = await mesh.status();
      return ['echo-v1-0', 'echo-v1-1', 'istio-ingressgateway'].every((id) => replica(status, id).ready) ? true : undefined;
    }, 120_000);
    await serves(10);
  });

  test('an app that never gets ready is reported with why and its log lines, then restarted with a growing backoff', async () => {
    // What, why, and the lines it printed. On a loaded machine the sidecar itself may be the
    // late part first (reported the same way), so the app's report can come after start-up.
    await until("the report on broken-v1-0's app", async () => (/✘ broken-v1-0's app is not ready after/.test(mesh.log()) ? true : undefined), 60_000);
    assert.match(mesh.log(), /✘ broken-v1-0's app is not ready after [\d.]+s: GET http:\/\/127\.0\.0\.1:\d+\/health answered 503; restarting it in 1\.0s, with 8\.0s to get ready \(the rest of the mesh keeps serving\)\n {4}its last 2 lines:\n {6}waiting for the database at db\.internal:5432\n {6}listening on \d+/);
    // The retry is no better, and the next one waits twice as long.
    await until('the second report on broken-v1-0', async () => (/✘ broken-v1-0's app is still not ready after [\d.]+s: GET \S+ answered 503; restarting it in 2\.0s, with 16s to get ready/.test(mesh.log()) ? true : undefined), 60_000);
    assert.ok(replica(await mesh.status(), 'broken-v1-0').restarts >= 1);
  });

  test('an app that exits at once is reported with its last lines while its supervisor restarts it', async () => {
    await until('the report on crashy-v1-0', async () => (/✘ crashy-v1-0's app is not ready after/.test(mesh.log()) ? true : undefined), 60_000);
    assert.match(mesh.log(), /✘ crashy-v1-0's app is not ready after [\d.]+s: exited \(code 1\); it starts again in [\d.]+s \(the rest of the mesh keeps serving\)\n {4}its last (\d+ lines|line):\n( {6}cannot open \/etc\/echo\/config\.yaml: no such file\n)+/);
    assert.doesNotMatch(mesh.log(), /crashy-v1-0's app is ready/, 'a process that exits at once never counts as ready');
  });

  test('sinew status shows the late replicas not ready, with the reason', async () => {
    const status = await mesh.status();
    const broken = replica(status, 'broken-v1-0');
    assert.equal(broken.ready, false);
    assert.match(broken.reason ?? '', /^app: (GET \S+ answered 503|exited \(signal SIGTERM\)|GET \S+: connection refused)$/);
    const crashy = replica(status, 'crashy-v1-0');
    assert.equal(crashy.ready, false);
    assert.match(crashy.reason ?? '', /^app: (exited \(code 1\)|just started \(no readinessProbe\))$/);
    for (const id of ['echo-v1-0', 'echo-v1-1', 'istio-ingressgateway']) assert.equal(replica(status, id).ready, true, id);
    const text = await sinew(mesh.stateDir, 'status');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /broken-v1-0\s+not ready\s+\d+/);
    assert.match(text.stdout, /\nnot ready:\n {2}broken-v1-0: app: .*\n {2}crashy-v1-0: app: /);
  });

  test('a sidecar that dies and cannot start again is reported with its log lines, shown not ready, and back once it can', async () => {
    const before = await mesh.status();
    const admin = Number(replica(before, 'echo-v1-0').proxy.admin.split(':')[1]);
    const record = JSON.parse(readFileSync(join(mesh.stateDir, 'processes', 'echo-v1-0_proxy.json'), 'utf8')) as { pid: number };
    // What the runner says from the kill on: on a loaded machine the same sidecar may have been
    // reported late at start-up already (with no log lines), which is not this report.
    const from = mesh.log().length;
    const since = () => mesh.log().slice(from);
    // Kill it and take its admin port before its supervisor starts it again (1 s of backoff).
    process.kill(record.pid, 'SIGKILL');
    // It accepts and drops connections (the runner's readiness checks knock on the port meanwhile).
    const squatter: Server = createServer((socket) => socket.destroy());
    await until('the admin port to be free', () => new Promise<true | undefined>((resolve) => {
      squatter.once('error', () => resolve(undefined));
      squatter.listen(admin, '127.0.0.1', () => resolve(true));
    }), 10_000);
    try {
      // The report is several lines, which may reach the runner's output in more than one
      // piece: wait for all of it, its last lines included.
      await until('the report on echo-v1-0\'s sidecar, with its last log lines', async () => {
        assert.match(since(), /✘ echo-v1-0's sidecar is not ready after [\d.]+s: .*\n( {4}.*\n)* {4}its last \d+ lines:\n( {6}.*\n)*.*EADDRINUSE/);
        return true;
      }, 60_000);
      const status = await mesh.status();
      assert.equal(replica(status, 'echo-v1-0').ready, false);
      assert.match(replica(status, 'echo-v1-0').reason ?? '', /^sidecar: /);
      // Its sibling serves meanwhile.
      await until('the gateway to hold echo-v1-0 as unhealthy', async () => ((await mesh.status()).gateways[0].replicas[0].proxy.sync === 'SYNCED' ? true : undefined));
      await serves(10);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    await until('echo-v1-0 ready again', async () => (replica(await mesh.status(), 'echo-v1-0').ready ? true : undefined), 90_000);
    assert.match(since(), /✔ echo-v1-0's sidecar is ready \(after [\d.]+s not ready, \d+ restarts?\)/);
    await serves(5);
  });

  test('stopping it still stops everything', async () => {
    await mesh.stop();
    assert.equal(mesh.process.exitCode, 0);
    assert.deepEqual(processesMentioning(mesh.stateDir), []);
  });
});
