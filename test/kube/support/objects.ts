/**
 * Test objects in a real cluster: Bookinfo's Services and pods (pods get their IP and Ready
 * condition patched into status, as a kubelet would: the test cluster has none), applying
 * YAML like kubectl (with the built kubectl when there is one, else through the API), and a
 * TCP relay in front of the API server whose connections a test can cut.
 */
import net from 'node:net';
import { createPrivateKey, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeApiError, KubeClient, loadKubeConfig } from '../../../src/kube/api.js';
import { GATEWAY_API_KINDS, ISTIO_KINDS } from '../../../src/kube/objects.js';
import { installObjects, installValues } from '../../../src/kube/install.js';
import type { TestCluster } from './cluster.js';

export function clientFor(cluster: TestCluster): KubeClient {
  return new KubeClient(loadKubeConfig({ kubeconfig: cluster.kubeconfig }));
}

const CORE: Record<string, string> = { Namespace: 'namespaces', Service: 'services', Pod: 'pods', Node: 'nodes', Endpoints: 'endpoints', ServiceAccount: 'serviceaccounts', Secret: 'secrets' };

/** The REST collection path of an object. */
export function collectionPath(obj: { apiVersion: string; kind: string; metadata?: { namespace?: string } }, namespace = obj.metadata?.namespace ?? 'default'): string {
  const custom = [...ISTIO_KINDS, ...GATEWAY_API_KINDS].find((k) => k.kind === obj.kind && obj.apiVersion.startsWith(k.group + '/'));
  if (custom) return custom.namespaced ? `/apis/${obj.apiVersion}/namespaces/${namespace}/${custom.plural}` : `/apis/${obj.apiVersion}/${custom.plural}`;
  if (obj.kind === 'EndpointSlice') return `/apis/${obj.apiVersion}/namespaces/${namespace}/endpointslices`;
  const plural = CORE[obj.kind];
  if (!plural) throw new Error(`collectionPath: add ${obj.kind}`);
  return obj.kind === 'Namespace' || obj.kind === 'Node' ? `/api/v1/${plural}` : `/api/v1/namespaces/${namespace}/${plural}`;
}

/** Creates or replaces each object (kubectl apply's outcome, without its bookkeeping). */
export async function applyObjects(client: KubeClient, objects: readonly any[]): Promise<void> {
  for (const obj of objects) {
    const path = collectionPath(obj);
    try {
      await client.request('POST', path, { body: obj });
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
      const current = await client.get<any>(`${path}/${obj.metadata.name}`);
      await client.request('PUT', `${path}/${obj.metadata.name}`, { body: { ...obj, metadata: { ...obj.metadata, resourceVersion: current.metadata.resourceVersion } } });
    }
  }
}

export async function yamlObjects(file: string): Promise<any[]> {
  return parseAllDocuments(await readFile(file, 'utf8')).map((d) => d.toJSON()).filter(Boolean);
}

/** `kubectl apply -f file` with the built kubectl, else the same objects through the API. */
export async function kubectlApply(cluster: TestCluster, file: string): Promise<void> {
  try {
    await cluster.kubectl(['apply', '-f', file]);
  } catch (err) {
    if (!/no kubectl/.test((err as Error).message)) throw err;
    await applyObjects(clientFor(cluster), await yamlObjects(file));
  }
}

/** The CRDs of `sinew install`, created and Established, and its namespace (where the control plane keeps the mesh key). */
export async function installCrds(client: KubeClient): Promise<void> {
  await client.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sinew-system' } } }).catch((err) => {
    if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
  });
  const crds = (await installObjects(installValues([]))).filter((o) => o.kind === 'CustomResourceDefinition');
  for (const crd of crds) {
    await client.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: crd }).catch((err) => {
      if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
    });
  }
  for (const crd of crds) {
    const name = (crd.metadata as { name: string }).name;
    await until(async () => {
      const got = await client.get<any>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      return (got.status?.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True');
    }, 30_000, `CRD ${name} established`);
  }
}

/**
 * CRDs serving the Gateway API kinds at the versions Sinew reads. The Gateway API project's own
 * CRDs carry full schemas with CEL rules (x-kubernetes-validations), which this v1.20 server
 * does not run; these serve the same groups, kinds and versions with the schema left open, as a
 * cluster that has them installed does to a reader (Sinew validates what it reads itself).
 */
export async function installGatewayApiCrds(client: KubeClient): Promise<void> {
  const crds = GATEWAY_API_KINDS.map((kind) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    // *.k8s.io groups are protected: the Gateway API's CRDs carry the approval (its KEP's PR).
    metadata: { name: `${kind.plural}.${kind.group}`, annotations: { 'api-approved.kubernetes.io': 'https://github.com/kubernetes-sigs/gateway-api/pull/2466' } },
    spec: {
      group: kind.group,
      names: { kind: kind.kind, listKind: `${kind.kind}List`, plural: kind.plural, singular: kind.kind.toLowerCase() },
      scope: kind.namespaced ? 'Namespaced' : 'Cluster',
      versions: kind.versions.map((v, i) => ({
        name: v,
        served: true,
        storage: i === 0,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } },
      })),
    },
  }));
  for (const crd of crds) {
    await client.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: crd }).catch((err) => {
      if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
    });
  }
  for (const crd of crds) {
    await until(async () => {
      const got = await client.get<any>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      return (got.status?.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True');
    }, 30_000, `CRD ${crd.metadata.name} established`);
  }
}

/** Polls `check` until it is true or the deadline passes (then throws, naming what). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface PodSpec {
  name: string;
  workload: string;
  labels: Record<string, string>;
  ip: string;
  serviceAccount?: string;
  nodeName?: string;
  ready?: boolean;
  port?: number;
}

/** A Deployment's pod as the ReplicaSet controller makes it (owner and pod-template-hash), then running. */
export async function createPod(client: KubeClient, namespace: string, p: PodSpec): Promise<void> {
  const hash = '7d9c8b5f4';
  await client.request('POST', `/api/v1/namespaces/${namespace}/pods`, {
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: p.name,
        labels: { ...p.labels, 'pod-template-hash': hash },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${p.workload}-${hash}`, uid: '00000000-0000-0000-0000-000000000001', controller: true }],
      },
      spec: {
        serviceAccountName: p.serviceAccount ?? 'default',
        ...(p.nodeName ? { nodeName: p.nodeName } : {}),
        containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: p.port ?? 9080 }] }],
      },
    },
  });
  await setPodStatus(client, namespace, p.name, p.ip, p.ready ?? true);
}

export async function setPodStatus(client: KubeClient, namespace: string, name: string, ip: string, ready: boolean): Promise<void> {
  await client.request('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
    contentType: 'application/merge-patch+json',
    body: { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } },
  });
}

/** Bookinfo's four Services and six pods in `namespace` (on `nodeName` when given). */
export async function createBookinfo(client: KubeClient, namespace: string, nodeName?: string): Promise<void> {
  for (const app of ['productpage', 'reviews', 'ratings', 'details']) {
    await client.request('POST', `/api/v1/namespaces/${namespace}/services`, {
      body: { apiVersion: 'v1', kind: 'Service', metadata: { name: app, labels: { app, service: app } }, spec: { selector: { app }, ports: [{ name: 'http', port: 9080 }] } },
    });
  }
  const pods: [string, string, string][] = [
    ['productpage', 'v1', '10.244.0.10'],
    ['details', 'v1', '10.244.0.11'],
    ['ratings', 'v1', '10.244.0.12'],
    ['reviews', 'v1', '10.244.0.13'],
    ['reviews', 'v2', '10.244.0.14'],
    ['reviews', 'v3', '10.244.0.15'],
  ];
  for (const [app, version, ip] of pods) {
    await createPod(client, namespace, { name: `${app}-${version}-7d9c8b5f4-abcde`, workload: `${app}-${version}`, labels: { app, version }, ip, serviceAccount: `bookinfo-${app}`, nodeName });
  }
  for (const app of ['productpage', 'reviews', 'ratings', 'details']) await createServiceAccount(client, namespace, `bookinfo-${app}`);
}

/** A ServiceAccount (the test server runs without the ServiceAccount admission plugin, which would need one first); its uid. */
export async function createServiceAccount(client: KubeClient, namespace: string, name: string): Promise<string> {
  const created = await client.request<{ metadata: { uid: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } } });
  return created.metadata.uid;
}

/**
 * A service-account token from the API server's TokenRequest API (what kubelet asks for a
 * projected `serviceAccountToken` volume): for the audience `istio-ca` unless told, bound to
 * `pod` when given, as kubelet binds the tokens it mounts.
 */
export async function requestServiceAccountToken(client: KubeClient, namespace: string, serviceAccount: string, options: { audience?: string; pod?: string } = {}): Promise<string> {
  let boundObjectRef;
  if (options.pod) {
    const pod = await client.get<{ metadata: { uid: string } }>(`/api/v1/namespaces/${namespace}/pods/${options.pod}`);
    boundObjectRef = { apiVersion: 'v1', kind: 'Pod', name: options.pod, uid: pod.metadata.uid };
  }
  const answer = await client.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [options.audience ?? 'istio-ca'], expirationSeconds: 3600, ...(boundObjectRef ? { boundObjectRef } : {}) } },
  });
  return answer.status.token;
}

/**
 * A service-account token that expired an hour ago, signed with the test server's own
 * service-account key (pki/sa.key), in the claims the TokenRequest API gives: the TokenRequest
 * API refuses lifetimes under ten minutes, so an expired token cannot be asked for.
 */
export async function expiredServiceAccountToken(cluster: TestCluster, namespace: string, serviceAccount: string, uid: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const claims = {
    aud: ['istio-ca'],
    exp: now - 3600,
    iat: now - 7200,
    nbf: now - 7200,
    iss: 'https://kubernetes.default.svc.cluster.local',
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid } },
  };
  const unsigned = `${b64({ alg: 'RS256' })}.${b64(claims)}`;
  const key = createPrivateKey(await readFile(join(cluster.pki, 'sa.key'), 'utf8'));
  return `${unsigned}.${sign('sha256', Buffer.from(unsigned), key).toString('base64url')}`;
}

/** A TCP relay to `target` whose connections can be cut (and refused) and restored. */
export async function startRelay(targetPort: number): Promise<{ port: number; cut(): void; restore(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let refusing = false;
  const server = net.createServer((client) => {
    client.on('error', () => {});
    if (refusing) return client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    sockets.add(client);
    sockets.add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
