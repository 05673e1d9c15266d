/**
 * The mesh key (src/controlplane/mesh-key.ts): made once, kept owner-only in the state
 * directory, the same after a restart, and given to every proxy in its config, with which
 * proxies prove their metadata exchange to each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { startControlPlane } from '../../src/controlplane/daemon.js';
import { within } from './helpers.js';
import { loadMeshKey, MESH_KEY_FILE } from '../../src/controlplane/mesh-key.js';
import { proxyClient } from './helpers.js';

const gateway: ProxyNode = { id: 'router~istio-ingressgateway.istio-system', mode: 'router', workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' } };

test('the mesh key is made once, owner-only, and kept; a damaged one is refused with what to do', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sinew-mesh-key-'));
  try {
    const key = await loadMeshKey(dir);
    assert.equal(Buffer.from(key, 'base64').length, 32);
    const file = join(dir, MESH_KEY_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(await loadMeshKey(dir), key, 'the same key after a restart');
    await chmod(file, 0o644);
    await loadMeshKey(dir);
    assert.equal((await stat(file)).mode & 0o777, 0o600, 'made owner-only again');
    assert.notEqual(await loadMeshKey(undefined), await loadMeshKey(undefined), 'without a state directory: one per process');
    await writeFile(file, 'not a key\n');
    await assert.rejects(loadMeshKey(dir), (err: Error & { code?: string }) => err.code === 'SNW_ERR_MESH_KEY_INVALID' && /remove it/.test(err.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('every proxy gets the mesh key of the state directory in its config, across restarts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sinew-mesh-key-'));
  const configOf = async (): Promise<ProxyConfig> => {
    const cp = await startControlPlane({ stateDir: dir, apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5 });
    const client = proxyClient(cp, gateway);
    try {
      // Bounded, so that a proxy the control plane refuses fails the test instead of hanging it.
      const first = once(client, 'config', { signal: AbortSignal.timeout(20_000) });
      client.start();
      return (await within(first, 30_000, 'the first config'))[0] as ProxyConfig;
    } finally {
      await client.close();
      await cp.close();
    }
  };
  try {
    const config = await configOf();
    const key = (await readFile(join(dir, MESH_KEY_FILE), 'utf8')).trim();
    assert.equal(config.peerMetadataKey, 'sinew-mesh-key');
    assert.deepEqual(config.secrets?.find((s) => s.name === config.peerMetadataKey), { name: 'sinew-mesh-key', genericSecret: key });
    const again = await configOf();
    assert.equal(again.secrets?.find((s) => s.name === 'sinew-mesh-key')?.genericSecret, key);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
