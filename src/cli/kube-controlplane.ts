/**
 * `sinew controlplane --kubernetes`: the control plane with its config and workloads taken
 * from a cluster (src/kube/source.ts) instead of `sinew up`. It lists everything before it
 * opens its ports, so a restarted control plane pushes nothing that did not change.
 */
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../controlplane/daemon.js';
import { ServiceRegistry } from '../registry/index.js';
import { KubeClient, loadKubeConfig, type KubeConfigOptions } from '../kube/api.js';
import { KubeSource, type KubeSourceOptions } from '../kube/source.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningFiles } from '../ca/authority.js';
import { ensurePrivateDir, writePrivateFile } from '../ca/state-dir.js';
import { systemClock } from '../core/clock.js';
import { clusterCaFiles } from '../kube/ca-secret.js';
import { CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, ROOT_CERT_FILE } from '../ca/signing-bundle.js';
import type { AddressInfo } from 'node:net';
import { startWebhookServer, type WebhookServer } from '../kube/webhook.js';
import { DEFAULT_CONTROL_PLANE_ADDRESS, DEFAULT_IMAGE, SYSTEM_NAMESPACE } from '../kube/defaults.js';
import { sharedMeshKey } from '../kube/mesh-key.js';
import type { InjectSettings } from '../kube/inject.js';
import { LeaderElector, type LeaderElectionOptions } from '../kube/leader.js';
import { StatusWriter } from '../kube/status.js';
import { TokenReviewer, type TokenReviewerOptions } from '../kube/token-review.js';

export interface KubeControlPlaneOptions extends Omit<ControlPlaneOptions, 'source' | 'stateDir'>, KubeConfigOptions {
  endpointsApi?: KubeSourceOptions['endpointsApi'];
  backoff?: KubeSourceOptions['backoff'];
  pageSize?: KubeSourceOptions['pageSize'];
  /** An already configured client (tests); otherwise one from `kubeconfig`. */
  client?: KubeClient;
  /** The injection and validation webhooks: their port and TLS (a directory with tls.crt and tls.key, or PEM). */
  webhook?: { port: number; host?: string; certDir?: string; certPem?: string; keyPem?: string; inject?: Partial<InjectSettings> };
  /**
   * The Lease that picks the one replica that writes status; without it this control plane
   * writes status itself (a single replica).
   */
  leaderElection?: Omit<LeaderElectionOptions, 'client' | 'clock' | 'logger'>;
  /** Where the Secret holding the mesh key is kept (default: the Lease's namespace, else sinew-system). */
  meshKeyNamespace?: string;
  /** How proxies' service-account tokens are reviewed (cache times); the client and clock are this control plane's. */
  tokenReview?: Omit<TokenReviewerOptions, 'client' | 'clock' | 'logger'>;
}

export interface KubeControlPlane {
  controlPlane: ControlPlane;
  source: KubeSource;
  client: KubeClient;
  webhook?: WebhookServer;
  webhookAddress?: string;
  status: StatusWriter;
  leader?: LeaderElector;
  /** Reviews the service-account tokens proxies in pods present. */
  tokens: TokenReviewer;
  close(): Promise<void>;
}

/** Injection settings for this cluster: native sidecars from Kubernetes 1.29 (SidecarContainers on by default). */
export async function clusterInjectSettings(client: KubeClient, given: Partial<InjectSettings> = {}): Promise<InjectSettings> {
  let native = given.nativeSidecars;
  if (native === undefined) {
    const version = await client.get<{ major?: string; minor?: string }>('/version');
    native = Number(version.major) > 1 || (Number(version.major) === 1 && parseInt(version.minor ?? '0', 10) >= 29);
  }
  return { image: given.image ?? DEFAULT_IMAGE, controlPlane: given.controlPlane ?? DEFAULT_CONTROL_PLANE_ADDRESS, ...given, nativeSidecars: native };
}

export async function startKubeControlPlane(options: KubeControlPlaneOptions): Promise<KubeControlPlane> {
  const client = options.client ?? new KubeClient(loadKubeConfig(options));
  const registry = new ServiceRegistry();
  const source = new KubeSource({ client, registry, clock: options.clock, logger: options.logger?.child('kubernetes'), endpointsApi: options.endpointsApi, backoff: options.backoff, pageSize: options.pageSize });
  try {
    await source.start();
  } catch (err) {
    await source.stop();
    throw err;
  }
  const tokens = new TokenReviewer({ ...options.tokenReview, client, clock: options.clock, logger: options.logger?.child('tokenreview') });
  let controlPlane: ControlPlane;
  let caFilesDir: string | undefined;
  try {
    const namespace = options.meshKeyNamespace ?? options.leaderElection?.namespace ?? SYSTEM_NAMESPACE;
    // One mesh key for every replica and restart (kube/mesh-key.ts).
    const meshKey = options.mesh?.meshKey ?? (await sharedMeshKey(client, namespace));
    // One CA root for every replica and restart: its files live in a Secret (kube/ca-secret.ts)
    // and reach the CA as Istio plug-in files, from a private directory of this process.
    if (options.ca !== false) {
      const now = (options.clock ?? systemClock).now();
      const clusterCa = await clusterCaFiles(client, namespace, async () => {
        const f = await generateSigningFiles(now);
        return { [CA_CERT_FILE]: f.caCertPem, [CA_KEY_FILE]: f.caKeyPem, [ROOT_CERT_FILE]: f.rootCertPem, ...(f.certChainPem ? { [CERT_CHAIN_FILE]: f.certChainPem } : {}) };
      });
      caFilesDir = await mkdtemp(join(tmpdir(), 'sinew-ca-files-'));
      await ensurePrivateDir(caFilesDir);
      for (const [file, pem] of Object.entries(clusterCa.files)) await writePrivateFile(join(caFilesDir, file), pem as string);
      options.logger?.info(clusterCa.created ? 'made the mesh CA root' : 'signing with the mesh CA from the cluster', { secret: `${namespace}/${clusterCa.secret}` });
    }
    controlPlane = await startControlPlane({
      ...options,
      mesh: { ...options.mesh, meshKey },
      source: { store: source.store, registry, registrations: source.registrations },
      ca: caFilesDir ? { ...(options.ca || {}), pluginDir: caFilesDir } : false,
      // Proxies in pods have no runner to get them a push credential: they present their
      // projected service-account token, which the API server vouches for.
      authenticateProxy: (node, token) => tokens.authenticate(node, token),
      // And the same token with their spans to the trace collector.
      authenticateCollectorToken: (token) => tokens.serviceAccountOf(token),
    });
  } catch (err) {
    await source.stop();
    if (caFilesDir) await rm(caFilesDir, { recursive: true, force: true });
    throw err;
  }
  const unsubscribe = source.onChange((reason) => controlPlane.push.requestPush(reason));
  const status = new StatusWriter({ client, source, clock: options.clock, logger: options.logger?.child('status') });
  let leader: LeaderElector | undefined;
  if (options.leaderElection) {
    leader = new LeaderElector({ ...options.leaderElection, client, clock: options.clock, logger: options.logger?.child('leader') });
    leader.onChange((leading) => status.setLeading(leading));
    leader.start();
  } else {
    status.setLeading(true);
  }
  let webhook: WebhookServer | undefined;
  if (options.webhook) {
    const w = options.webhook;
    try {
      webhook = await startWebhookServer({
        port: w.port,
        host: w.host,
        certPem: w.certPem ?? (await readFile(join(w.certDir ?? '/etc/sinew/webhook', 'tls.crt'), 'utf8')),
        keyPem: w.keyPem ?? (await readFile(join(w.certDir ?? '/etc/sinew/webhook', 'tls.key'), 'utf8')),
        inject: await clusterInjectSettings(client, w.inject),
        namespaceLabels: async (name) => source.store.get('Namespace', '', name)?.metadata.labels ?? (await client.get<{ metadata?: { labels?: Record<string, string> } }>(`/api/v1/namespaces/${encodeURIComponent(name)}`).catch(() => undefined))?.metadata?.labels,
        logger: options.logger?.child('webhook'),
      });
    } catch (err) {
      unsubscribe();
      status.close();
      await leader?.stop();
      await source.stop();
      await controlPlane.close();
      if (caFilesDir) await rm(caFilesDir, { recursive: true, force: true });
      throw err;
    }
  }
  const address = webhook?.address() as AddressInfo | undefined;
  return {
    controlPlane,
    source,
    client,
    webhook,
    webhookAddress: address ? `${address.address}:${address.port}` : undefined,
    status,
    leader,
    tokens,
    async close() {
      unsubscribe();
      status.close();
      await leader?.stop();
      await status.idle();
      await webhook?.close();
      await source.stop();
      await controlPlane.close();
      if (caFilesDir) await rm(caFilesDir, { recursive: true, force: true });
    },
  };
}
