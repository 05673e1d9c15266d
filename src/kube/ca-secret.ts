/**
 * Where the mesh CA's signing material lives in a cluster, as istiod keeps it: Istio's
 * plug-in Secret `cacerts` when the operator made one (ca-cert.pem, ca-key.pem, root-cert.pem,
 * cert-chain.pem — "Plug in CA certificates" on istio.io), else the self-signed
 * `istio-ca-secret` that the first replica makes (kube/shared-secret.ts) and every replica and
 * restart reads, so that all replicas sign under one root and a restart changes nothing a
 * proxy holds. Without it, each replica made a root of its own.
 *
 * This module only moves the four files between the cluster and the caller; the CA (src/ca)
 * checks them, as it checks plug-in files on disk.
 */
import { SinewError } from '../core/errors.js';
import type { KubeClient } from './api.js';
import { readSecretData, sharedSecret } from './shared-secret.js';

/** Istio's names (security/pkg/pki/ca/ca.go: CACertsSecret, CASecret). */
export const PLUGIN_CA_SECRET = 'cacerts';
export const SELF_SIGNED_CA_SECRET = 'istio-ca-secret';

/** The four files of Istio's CA Secrets, by their keys in the Secret (and names on disk). */
export interface CaSecretFiles {
  'ca-cert.pem': string;
  'ca-key.pem': string;
  'cert-chain.pem'?: string;
  'root-cert.pem': string;
}

export interface ClusterCa {
  files: CaSecretFiles;
  /** Which Secret holds them. */
  secret: string;
  /** Whether this replica made `istio-ca-secret`. */
  created: boolean;
}

const REQUIRED = ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem'] as const;

function filesOf(namespace: string, name: string, data: Record<string, string>): CaSecretFiles {
  const text = (key: string) => (data[key] === undefined ? undefined : Buffer.from(data[key]!, 'base64').toString('utf8'));
  const missing = REQUIRED.filter((k) => !text(k));
  if (missing.length) {
    throw new SinewError('SNW_ERR_CA_SECRET_INVALID', `the Secret ${namespace}/${name} lacks ${missing.join(', ')}: it must hold Istio's CA files (ca-cert.pem, ca-key.pem, root-cert.pem, and cert-chain.pem for an intermediate); fix it, or delete ${name === SELF_SIGNED_CA_SECRET ? 'it to have a new root made (every workload certificate then changes)' : 'it to use a self-signed root'}`);
  }
  const chain = text('cert-chain.pem');
  return { 'ca-cert.pem': text('ca-cert.pem')!, 'ca-key.pem': text('ca-key.pem')!, 'root-cert.pem': text('root-cert.pem')!, ...(chain ? { 'cert-chain.pem': chain } : {}) };
}

/** The CA files for a control plane in `namespace`: `cacerts` if present, else `istio-ca-secret`, made with `generate` the first time. */
export async function clusterCaFiles(client: KubeClient, namespace: string, generate: () => Promise<CaSecretFiles>): Promise<ClusterCa> {
  const plugin = await readSecretData(client, namespace, PLUGIN_CA_SECRET);
  if (plugin) return { files: filesOf(namespace, PLUGIN_CA_SECRET, plugin), secret: PLUGIN_CA_SECRET, created: false };
  const shared = await sharedSecret(client, {
    namespace,
    name: SELF_SIGNED_CA_SECRET,
    // istiod's istio-ca-secret has this type.
    type: 'istio.io/ca-root',
    parse: (data) => filesOf(namespace, SELF_SIGNED_CA_SECRET, data),
    async make() {
      const files = await generate();
      return { value: files, data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v as string).toString('base64')])) };
    },
  });
  return { files: shared.value, secret: SELF_SIGNED_CA_SECRET, created: shared.created };
}
