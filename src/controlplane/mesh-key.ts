/**
 * The mesh key: 32 random bytes the control plane generates once and gives every proxy
 * (MeshSettings.meshKey -> ProxyConfig.peerMetadataKey), with which sidecars prove their
 * metadata-exchange headers to each other until mutual TLS carries workload identity
 * (src/proxy/peer-identity.ts). It lives in the state directory, readable by its owner only,
 * so that proxies keep trusting each other across control-plane restarts; without a state
 * directory it lives as long as the process.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { SinewError } from '../core/errors.js';

export const MESH_KEY_FILE = 'mesh-key';
const KEY_BYTES = 32;

/** The mesh key of `stateDir` (base64), made and written there the first time. */
export async function loadMeshKey(stateDir?: string): Promise<string> {
  if (stateDir === undefined) return randomBytes(KEY_BYTES).toString('base64');
  const file = join(stateDir, MESH_KEY_FILE);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const key = text.trim();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, 'base64').length !== KEY_BYTES) {
      throw new SinewError(
        'SNW_ERR_MESH_KEY_INVALID',
        `${file} does not hold a mesh key (${KEY_BYTES} bytes, base64); remove it to have a new one made (every proxy then gets the new key)`,
      );
    }
    // Owner-only, whatever it was left with.
    await chmod(file, 0o600);
    return key;
  }
  const key = randomBytes(KEY_BYTES).toString('base64');
  await mkdir(stateDir, { recursive: true });
  // Written whole under a temporary name, then renamed: a crash never leaves half a key.
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${key}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  return key;
}
