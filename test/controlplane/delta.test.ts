/**
 * The daemon's pushes after the first are deltas: a VirtualService change reaches a
 * sidecar as a small delta, and what the sidecar rebuilds equals a whole compile of the
 * same config, registry and registrations.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { WorkloadRegistration } from '../../src/api/mesh-status.js';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { ProxyConfigBuilder } from '../../src/controlplane/compile.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import type { PushClient } from '../../src/xds/client.js';
import { OperatorApi, proxyClient } from './helpers.js';

const repo = resolve(import.meta.dirname, '../..');
const samples = resolve(repo, 'samples/bookinfo/networking');
const bookinfo = readFileSync(resolve(repo, 'examples/bookinfo/bookinfo.yaml'), 'utf8');

const node: ProxyNode = { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'bookinfo-productpage' };

function registration(name: string, labels: Record<string, string>, port: number): WorkloadRegistration {
  return {
    kind: 'workload',
    name,
    namespace: 'default',
    labels,
    replicas: [{ id: `${name}-0`, app: `127.0.0.1:${port + 1}`, host: '127.0.0.1', ports: { '9080': { inbound: port, app: port + 1 } }, ready: true, restarts: 0, proxy: { inbound: `127.0.0.1:${port}`, outbound: `127.0.0.1:${port + 2}`, admin: `127.0.0.1:${port + 3}` } }],
  } as WorkloadRegistration;
}

describe('control plane deltas', () => {
  let cp: ControlPlane | undefined;
  let client: PushClient | undefined;
  after(async () => {
    await client?.close();
    await cp?.close();
  });

  test('a VirtualService change is pushed as a small delta that rebuilds the whole compiled config', async () => {
    // A known mesh key, so that the whole compile below can be compared with what was pushed.
    const meshKey = Buffer.alloc(32, 3).toString('base64');
    cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5, collectTraces: false, mesh: { meshKey } });
    const api = new OperatorApi(cp);
    const destinationRules = readFileSync(resolve(samples, 'destination-rule-all.yaml'), 'utf8');
    assert.equal((await api.apply(bookinfo + '\n---\n' + destinationRules)).status, 200);
    const registrations = new Map<string, WorkloadRegistration>();
    for (const [name, labels, port] of [
      ['productpage-v1', { app: 'productpage', version: 'v1' }, 20000],
      ['reviews-v1', { app: 'reviews', version: 'v1' }, 20010],
      ['reviews-v2', { app: 'reviews', version: 'v2' }, 20020],
    ] as const) {
      const r = registration(name, labels, port);
      registrations.set(`workload/default/${name}`, r);
      assert.equal((await api.register(r)).status, 200);
    }
    client = proxyClient(cp, node);
    const first = once(client, 'config');
    client.start();
    await first;
    const whole = cp.push.status()[0]!;
    assert.equal(whole.sentKind, 'full');

    const routed = once(client, 'config');
    assert.equal((await api.apply(readFileSync(resolve(samples, 'virtual-service-reviews-v3.yaml'), 'utf8'))).status, 200);
    const [config] = (await routed) as [ProxyConfig];
    const status = cp.push.status()[0]!;
    assert.equal(status.sentKind, 'delta');
    assert.ok(status.sentBytes! * 5 < whole.sentBytes!, `delta of ${status.sentBytes} bytes vs a whole config of ${whole.sentBytes}`);

    // The control plane adds its CA's secrets (ROOTCA, default) to what the compiler builds.
    const compiled = cp.ca!.withSecrets(node, new ProxyConfigBuilder({ meshKey, mtls: true }).build(node, [...cp.store.list()], cp.registry.snapshot(), registrations, 'x'));
    assert.deepEqual(JSON.parse(JSON.stringify(config)), JSON.parse(JSON.stringify({ ...compiled, version: config.version })));
  });
});
