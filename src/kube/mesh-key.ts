/**
 * The mesh key (controlplane/mesh-key.ts: the secret every proxy proves its metadata exchange
 * with) of a control plane in a cluster. There it has no state directory, and its replicas
 * must give every proxy the same key, across restarts too, or sidecars served by two replicas
 * would not believe each other and every restart would push every proxy a new config. So it is
 * kept in a Secret of the control plane's namespace, as istiod keeps its CA key in
 * `istio-ca-secret`: the first replica to start creates it, and a create that loses the race
 * (409 Conflict) reads the winner's. Creating is atomic in the API server, so no leader is needed.
 */
import { randomBytes } from 'node:crypto';
import { SinewError } from '../core/errors.js';
import { KubeApiError, type KubeClient } from './api.js';

export const MESH_KEY_SECRET = 'sinew-mesh-key';
const KEY_FIELD = 'mesh-key';
const KEY_BYTES = 32;

/** The mesh key held in `<namespace>/<name>` (base64), made there the first time. */
export async function sharedMeshKey(client: KubeClient, namespace: string, name = MESH_KEY_SECRET): Promise<string> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const read = async (): Promise<string | undefined> => {
    try {
      const secret = await client.get<{ data?: Record<string, string> }>(`${path}/${encodeURIComponent(name)}`);
      const key = Buffer.from(secret.data?.[KEY_FIELD] ?? '', 'base64').toString('utf8').trim();
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, 'base64').length !== KEY_BYTES) {
        throw new SinewError('SNW_ERR_MESH_KEY_INVALID', `the Secret ${namespace}/${name} does not hold a mesh key (${KEY_BYTES} bytes, base64, in "${KEY_FIELD}"); delete it to have a new one made (every proxy then gets the new key)`);
      }
      return key;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  };
  const existing = await read();
  if (existing) return existing;
  const key = randomBytes(KEY_BYTES).toString('base64');
  try {
    await client.request('POST', path, {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, labels: { app: 'sinew' } }, type: 'Opaque', data: { [KEY_FIELD]: Buffer.from(key).toString('base64') } },
    });
    return key;
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) {
      throw new SinewError('SNW_ERR_MESH_KEY_NAMESPACE', `the control plane keeps the mesh key in a Secret of the namespace ${namespace}, which does not exist: create it (kubectl create namespace ${namespace}; sinew install does) or name another with POD_NAMESPACE`, { cause: err });
    }
    if (!(err instanceof KubeApiError && err.status === 409)) throw err;
  }
  // Another replica created it first.
  const theirs = await read();
  if (!theirs) throw new SinewError('SNW_ERR_MESH_KEY_INVALID', `the Secret ${namespace}/${name} was created and removed while this control plane started; start it again`);
  return theirs;
}
