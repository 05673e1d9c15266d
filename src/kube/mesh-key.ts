/**
 * The mesh key (controlplane/mesh-key.ts: the secret every proxy proves its metadata exchange
 * with) of a control plane in a cluster. There it has no state directory, and its replicas
 * must give every proxy the same key, across restarts too, or sidecars served by two replicas
 * would not believe each other and every restart would push every proxy a new config. So it is
 * kept in a Secret of the control plane's namespace, made once (kube/shared-secret.ts).
 */
import { randomBytes } from 'node:crypto';
import { SinewError } from '../core/errors.js';
import type { KubeClient } from './api.js';
import { sharedSecret } from './shared-secret.js';

export const MESH_KEY_SECRET = 'sinew-mesh-key';
const KEY_FIELD = 'mesh-key';
const KEY_BYTES = 32;

/** The mesh key held in `<namespace>/<name>` (base64), made there the first time. */
export async function sharedMeshKey(client: KubeClient, namespace: string, name = MESH_KEY_SECRET): Promise<string> {
  const shared = await sharedSecret(client, {
    namespace,
    name,
    parse(data) {
      const key = Buffer.from(data[KEY_FIELD] ?? '', 'base64').toString('utf8').trim();
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, 'base64').length !== KEY_BYTES) {
        throw new SinewError('SNW_ERR_MESH_KEY_INVALID', `the Secret ${namespace}/${name} does not hold a mesh key (${KEY_BYTES} bytes, base64, in "${KEY_FIELD}"); delete it to have a new one made (every proxy then gets the new key)`);
      }
      return key;
    },
    async make() {
      const key = randomBytes(KEY_BYTES).toString('base64');
      return { value: key, data: { [KEY_FIELD]: Buffer.from(key).toString('base64') } };
    },
  });
  return shared.value;
}
