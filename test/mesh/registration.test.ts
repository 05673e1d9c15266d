/**
 * The runner's registrations (src/mesh/registration.ts) against a real control plane: a
 * workload's registration always holds every planned replica, the last change wins however
 * the changes race, and a change made while the control plane is away lands once it is back.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ReplicaRegistration, WorkloadRegistration } from '../../src/api/mesh-status.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../../src/controlplane/daemon.js';
import { ControlPlaneClient } from '../../src/mesh/control-plane-client.js';
import { API_TOKEN_FILE } from '../../src/controlplane/credentials.js';
import { RegistrationPublisher } from '../../src/mesh/registration.js';
import { allocatePort } from '../../src/mesh/supervisor.js';

const replica = (id: string, port: number): ReplicaRegistration => ({
  id,
  host: '127.0.0.1',
  app: `127.0.0.1:${port}`,
  ports: { '9080': { inbound: port + 1, app: port } },
  ready: false,
  reason: 'starting',
  restarts: 0,
  proxy: { admin: `127.0.0.1:${port + 2}` },
});
const workload = (replicas: ReplicaRegistration[]): WorkloadRegistration => ({ kind: 'workload', name: 'echo-v1', namespace: 'default', labels: { app: 'echo' }, replicas });
const key = { kind: 'workload' as const, namespace: 'default', name: 'echo-v1' };

describe('registrations', () => {
  test('regression: replicas changing at once never drop one another, and the last change wins', async () => {
    // The runner reads the control plane's API token from its state directory (every call carries it).
    const stateDir = mkdtempSync(join(tmpdir(), 'sinew-registration-'));
    const cp = await startControlPlane({ stateDir, apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: false });
    try {
      const publisher = new RegistrationPublisher(new ControlPlaneClient(cp.addresses.api, { tokenFile: join(stateDir, API_TOKEN_FILE) }), () => undefined);
      publisher.add(workload([replica('echo-v1-0', 20000), replica('echo-v1-1', 20010), replica('echo-v1-2', 20020)]));
      await publisher.publishAll();
      // Every replica registered from the start, before any of them is ready.
      assert.deepEqual(cp.status().workloads[0].replicas.map((r) => r.id), ['echo-v1-0', 'echo-v1-1', 'echo-v1-2']);
      // Each replica flips its readiness many times, interleaved, without waiting for the PUTs.
      for (let round = 0; round < 20; round++) for (const id of ['echo-v1-2', 'echo-v1-0', 'echo-v1-1']) publisher.update(key, id, { ready: round % 2 === 0, reason: round % 2 === 0 ? undefined : `round ${round}`, restarts: round });
      publisher.update(key, 'echo-v1-1', { ready: true, reason: undefined, restarts: 42 });
      await publisher.flush();
      const held = cp.status().workloads[0].replicas.map((r) => [r.id, r.ready, r.reason, r.restarts]);
      assert.deepEqual(held, [
        ['echo-v1-0', false, 'round 19', 19],
        ['echo-v1-1', true, undefined, 42],
        ['echo-v1-2', false, 'round 19', 19],
      ]);
    } finally {
      await cp.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('a change made while the control plane is away lands once it is back', async () => {
    const port = await allocatePort();
    const lines: string[] = [];
    // The token file appears when the control plane first starts.
    const stateDir = mkdtempSync(join(tmpdir(), 'sinew-registration-'));
    const publisher = new RegistrationPublisher(new ControlPlaneClient(`127.0.0.1:${port}`, { tokenFile: join(stateDir, API_TOKEN_FILE) }), (l) => lines.push(l), () => 20);
    publisher.add(workload([replica('echo-v1-0', 20000)]));
    publisher.update(key, 'echo-v1-0', { ready: true, reason: undefined });
    const landed = publisher.flush();
    // Nothing listens yet: the PUT fails, is reported once, and is retried.
    await new Promise<void>((resolve) => {
      const check = () => (lines.length ? resolve() : setTimeout(check, 10));
      check();
    });
    assert.match(lines[0], /could not update default\/echo-v1 in the control plane .*; retrying/);
    const cp = await startControlPlane({ stateDir, apiPort: port, pushPort: 0, monitoringPort: 0, collectTraces: false });
    try {
      await landed;
      assert.equal(cp.status().workloads[0].replicas[0].ready, true);
      assert.equal(lines.length, 2, lines.join('\n'));
      assert.match(lines[1], /took the registrations again/);
    } finally {
      publisher.close();
      await cp.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
