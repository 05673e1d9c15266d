/**
 * A Secret that every replica of the control plane must agree on, made once: the first replica
 * to start creates it, and one whose create loses the race (409 Conflict) reads the winner's.
 * Creating is atomic in the API server, so no leader is needed — the way istiod makes
 * `istio-ca-secret`. Used for the mesh key and the CA's signing material.
 */
import { SinewError } from '../core/errors.js';
import { KubeApiError, type KubeClient } from './api.js';

export interface SharedSecretSpec<T> {
  namespace: string;
  name: string;
  /** Reads the value from the Secret's data (base64 values), or throws a coded error saying what to do. */
  parse(data: Record<string, string>): T;
  /** A new value, with the Secret data (base64 values) that holds it. */
  make(): Promise<{ value: T; data: Record<string, string> }>;
  /** The Secret's type (default Opaque). */
  type?: string;
}

export interface SharedSecret<T> {
  value: T;
  /** Whether this replica made it. */
  created: boolean;
}

/** Reads `<namespace>/<name>`, or undefined when it does not exist. */
export async function readSecretData(client: KubeClient, namespace: string, name: string): Promise<Record<string, string> | undefined> {
  try {
    const secret = await client.get<{ data?: Record<string, string> }>(secretPath(namespace, name));
    return secret.data ?? {};
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) return undefined;
    throw err;
  }
}

export async function sharedSecret<T>(client: KubeClient, spec: SharedSecretSpec<T>): Promise<SharedSecret<T>> {
  const existing = await readSecretData(client, spec.namespace, spec.name);
  if (existing) return { value: spec.parse(existing), created: false };
  const made = await spec.make();
  try {
    await client.request('POST', secretPath(spec.namespace), {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: spec.name, labels: { app: 'sinew' } }, type: spec.type ?? 'Opaque', data: made.data },
    });
    return { value: made.value, created: true };
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) {
      throw new SinewError('SNW_ERR_CONTROL_PLANE_NAMESPACE', `the control plane keeps the Secret ${spec.name} in the namespace ${spec.namespace}, which does not exist: create it (kubectl create namespace ${spec.namespace}; sinew install does) or name another with POD_NAMESPACE`, { cause: err });
    }
    if (!(err instanceof KubeApiError && err.status === 409)) throw err;
  }
  // Another replica created it first.
  const theirs = await readSecretData(client, spec.namespace, spec.name);
  if (!theirs) throw new SinewError('SNW_ERR_CONTROL_PLANE_SECRET', `the Secret ${spec.namespace}/${spec.name} was created and removed while this control plane started; start it again`);
  return { value: spec.parse(theirs), created: false };
}

function secretPath(namespace: string, name?: string): string {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}
