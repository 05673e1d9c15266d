/**
 * The control-plane daemon (Istio's istiod, for the embedded mesh): wires the config store,
 * the service registry, the compiler and the push server together, and serves the HTTP API.
 *
 *   config change (API)  ─┐
 *   replica registered   ─┼─> registry/store updated -> requestPush (debounced, per proxy)
 *                          └─> compile(node) for each connected proxy -> push if changed
 *
 * Ports (DESIGN.md): 15010 push, 15014 monitoring; the HTTP API (http-api.ts) has no Istio
 * counterpart and defaults to 15080. Each can be 0 (tests).
 *
 * Every port asks for a credential (credentials.ts): the API and the monitoring port the API
 * token, which the daemon creates in its state directory at start (`api-token`, mode 0600);
 * the push port each proxy's own push credential, which the runner gets for it through the
 * API; the trace collector either.
 *
 * The API server is also the mesh's trace collector (./traces.ts): unless `collectTraces` is
 * false, every proxy is told to send its spans, with its credential, to `http://<api>/v1/traces`.
 *
 * With a `consolePort`, the control plane also scrapes every proxy's metrics and serves the
 * web console on that port (DESIGN.md: 20001), behind the same API token (./console/).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { MeshStatus, ReplicaStatus, WorkloadRegistration, WorkloadStatus, ProxySync } from '../api/mesh-status.js';
import type { ProxyNode } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { FileConfigStore, MemoryConfigStore, type ConfigStore } from '../config/store.js';
import { gatewayApiStatus, gatewayRuntimeOf } from '../config/gateway-api/status.js';
import { unreadableTlsFiles } from '../config/tls-files.js';
import { ServiceRegistry } from '../registry/index.js';
import { PushServer, type PushAuthenticator } from '../xds/server.js';
import { ProxyConfigBuilder, type MeshSettings } from './compile.js';
import { ControlPlaneCredentials, loadOrCreateApiToken, newApiToken } from './credentials.js';
import { createControlPlaneApi } from './http-api.js';
import { checkHostAndOrigin, ownAuthorities } from './http-guard.js';
import { createControlPlaneMetrics } from './metrics.js';
import { Registrations } from './registrations.js';
import { OTLP_TRACES_PATH } from './traces.js';
import { TraceStore } from '../telemetry/trace-store.js';
import { loadMeshKey } from './mesh-key.js';
import { startConsole, type Console } from './console/index.js';
import { CA_DIR } from './ca-dir.js';
import { MeshCa, type MeshCaOptions } from './mesh-ca.js';

export interface ControlPlaneOptions {
  /** Where config and registrations persist; absent = memory only. */
  stateDir?: string;
  host?: string;
  apiPort?: number;
  pushPort?: number;
  monitoringPort?: number;
  mesh?: Partial<MeshSettings>;
  clock?: Clock;
  logger?: Logger;
  debounceMs?: number;
  /** Receive spans at the API port and name it as every proxy's collector (default true). */
  collectTraces?: boolean;
  /**
   * The API token. By default it is read from (or created in) `<stateDir>/api-token`; a
   * control plane without a state directory makes a random one that lives as long as it does.
   */
  apiToken?: string;
  /** Serve the web console on this port (0 = any free port); absent = no console. */
  consolePort?: number;
  /** How often the console's scraper reads every proxy's metrics (default 5 s). */
  scrapeIntervalMs?: number;
  /**
   * Config and workloads kept elsewhere (the Kubernetes source, src/kube): its store instead of
   * the state directory's, its registry, and the port layout of the proxies it knows (looked up
   * by `<kind>/<namespace>/<workload>`, as the runner's registrations are). The caller fills
   * them before the control plane starts and asks for pushes (`push.requestPush`) when what the
   * store does not show changes.
   */
  source?: { store: ConfigStore; registry: ServiceRegistry; registrations: ReadonlyMap<string, WorkloadRegistration> };
  /**
   * Another way for proxies to prove who they are, for those no runner got a push credential
   * for (in a cluster: their service-account token, checked with a TokenReview,
   * src/kube/token-review.ts). A HELLO carrying a credential this control plane minted is
   * still checked as one; any other HELLO is this authenticator's to accept or refuse.
   */
  authenticateProxy?: PushAuthenticator;
  /**
   * Who a bearer token that this control plane did not mint belongs to, for the trace
   * collector only (in a cluster: a proxy's service-account token, reviewed by the API server);
   * undefined refuses it. Without it, only minted credentials and the API token are taken.
   */
  authenticateCollectorToken?: (token: string) => Promise<string | undefined>;
  /**
   * The mesh CA (mesh-ca.ts), kept in `<stateDir>/ca` (a temporary directory without a state
   * directory): plug-in certificates, the workload certificate lifetime, how often the
   * directory is re-read. `false`: no CA (proxies get no trust bundle, certificate requests are refused).
   */
  ca?: false | Omit<MeshCaOptions, 'dir' | 'clock' | 'logger'>;
}

export interface ControlPlane {
  readonly store: ConfigStore;
  readonly registry: ServiceRegistry;
  readonly push: PushServer;
  /** Recent traces the proxies sent. */
  readonly traces: TraceStore;
  readonly addresses: { api: string; push: string; monitoring: string; console?: string };
  /** The console, when it runs (`consolePort`). */
  readonly console?: Console;
  /** Its credentials: the API token, and the minting and checking of proxies' push credentials. */
  readonly credentials: ControlPlaneCredentials;
  /** Where the API token is kept (`<stateDir>/api-token`); undefined when it lives in memory only. */
  readonly tokenFile: string | undefined;
  /** The mesh CA, unless turned off. */
  readonly ca: MeshCa | undefined;
  status(): MeshStatus;
  close(): Promise<void>;
}

/** The resource kinds ServiceRegistry builds services and endpoints from (registry.ts). */
const REGISTRY_KINDS = new Set(['Service', 'ServiceEntry', 'WorkloadEntry', 'Workload', 'EndpointSlice']);

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const store: ConfigStore = options.source?.store ?? (options.stateDir ? await FileConfigStore.open(join(options.stateDir, 'config')) : new MemoryConfigStore());
  const registry = options.source?.registry ?? new ServiceRegistry();
  const registrations = await Registrations.open(options.stateDir, logger.child('registrations'));
  // Proxies' port layouts: the source's (a cluster's pods), else the runner's registrations.
  const layouts: ReadonlyMap<string, WorkloadRegistration> = options.source?.registrations ?? registrations.map;
  const token = options.apiToken !== undefined ? { token: options.apiToken, file: undefined } : options.stateDir ? await loadOrCreateApiToken(options.stateDir, logger) : { token: newApiToken(), file: undefined };
  const credentials = new ControlPlaneCredentials(token.token);
  // Every proxy gets the mesh key they prove their metadata exchange with (mesh-key.ts).
  // With the mesh CA every proxy gets a workload certificate, so sidecars speak Istio mutual
  // TLS to one another (auto mTLS) and accept it on their inbound ports.
  const mesh: Partial<MeshSettings> = { mtls: options.ca !== false, ...options.mesh, meshKey: options.mesh?.meshKey ?? (await loadMeshKey(options.stateDir)) };
  // Replaced once the API port is bound, when the proxies' collector URL is known.
  let builder = new ProxyConfigBuilder(mesh);
  const traces = new TraceStore();

  // What the registry was last given, so that a sync sends only what changed: re-sending
  // every registration and the whole config on each of a fleet's registrations made
  // registering it quadratic (1000 workloads took half a minute).
  let syncedRevision = -1;
  let syncedSources: readonly Resource[] = [];
  const synced = new Map<string, WorkloadRegistration>();
  const syncRegistry = () =>
    registry.batch(() => {
      if (syncedRevision !== store.revision) {
        // Only the kinds the registry reads matter to it (ServiceRegistry's source kinds):
        // a VirtualService change must not rebuild the registry snapshot, or every proxy
        // would look changed to the builder and be compiled again.
        const sources = store.list().filter((r) => REGISTRY_KINDS.has(r.kind));
        if (sources.length !== syncedSources.length || sources.some((r, i) => r !== syncedSources[i])) {
          registry.setResources(sources);
          syncedSources = sources;
        }
        syncedRevision = store.revision;
      }
      for (const [key, r] of synced) {
        if (registrations.map.has(key)) continue;
        synced.delete(key);
        if (r.kind === 'workload') registry.setWorkloadInstances(`${r.namespace}/${r.name}`, []);
      }
      for (const [key, r] of registrations.map) {
        if (synced.get(key) === r) continue;
        synced.set(key, r);
        if (r.kind !== 'workload') continue;
        registry.setWorkloadInstances(
          `${r.namespace}/${r.name}`,
          r.replicas.map((rep) => ({
            name: rep.id,
            address: rep.host,
            ports: Object.fromEntries(Object.entries(rep.ports).map(([containerPort, p]) => [Number(containerPort), p.inbound])),
            health: rep.ready ? 'HEALTHY' : 'UNHEALTHY',
            // The runner starts a sidecar beside every replica it registers.
            sidecar: true,
          })),
        );
      }
    });
  syncRegistry();

  // One frozen list per config revision: every proxy of a push compiles against the same
  // snapshot object, which lets the builder share work across proxies (and saves sorting
  // thousands of resources per proxy).
  let listed: { revision: number; resources: readonly Resource[] } | undefined;
  const resources = (): readonly Resource[] => {
    if (listed?.revision !== store.revision) listed = { revision: store.revision, resources: Object.freeze([...store.list()]) };
    return listed.resources;
  };

  const ca = options.ca === false ? undefined : await MeshCa.open({ ...options.ca, dir: options.stateDir ? join(options.stateDir, CA_DIR) : undefined, clock, logger: logger.child('ca') });

  const push = new PushServer({
    // Composed (own part + class part): the push server diffs and encodes each class's part once.
    // Every proxy's own part also carries the mesh CA's trust bundle and revocations (ROOTCA).
    source: (node: ProxyNode) => {
      const built = builder.buildComposed(node, resources(), registry.snapshot(), layouts, String(store.revision));
      return ca ? ca.withSecrets(node, built) : built;
    },
    authenticate: (node, credential) =>
      options.authenticateProxy && (credential === undefined || credentials.proxyOf(credential) === undefined)
        ? options.authenticateProxy(node, credential)
        : credentials.checkProxyCredential(node, credential),
    // Signed for the node the HELLO's credential proved (mesh-ca.ts).
    ...(ca ? { issueCertificate: (node: ProxyNode, csrPem: string) => ca.issue(node, csrPem) } : {}),
    clock,
    logger: logger.child('push'),
    debounceMs: options.debounceMs,
  });

  store.watch(() => {
    syncRegistry();
    push.requestPush('config');
  });
  ca?.attach(push);
  ca?.onSecretsChanged((reason) => push.requestPush(reason));

  const status = (): MeshStatus => {
    const proxies = push.status();
    const byId = new Map(proxies.map((p) => [p.node.id, p]));
    const toStatus = (r: WorkloadRegistration): WorkloadStatus => ({
      name: r.name,
      namespace: r.namespace,
      labels: r.labels,
      replicas: r.replicas.map((rep): ReplicaStatus => {
        const proxyId = proxyIdOf(r, rep.id);
        const p = byId.get(proxyId);
        const sync: ProxySync = p ? p.state : 'DISCONNECTED';
        const issued = ca?.certificateOf(proxyId);
        const certificate = issued ? { identity: issued.identity, serial: issued.serial, notBefore: new Date(issued.notBefore).toISOString(), notAfter: new Date(issued.notAfter).toISOString(), root: issued.root } : undefined;
        return { id: rep.id, app: rep.app, ready: rep.ready, ...(rep.reason ? { reason: rep.reason } : {}), restarts: rep.restarts, proxy: { ...rep.proxy, configVersion: p?.ackedVersion, sync, ...(certificate ? { certificate } : {}) } };
      }),
    });
    const all = [...registrations.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    return {
      workloads: all.filter((r) => r.kind === 'workload').map(toStatus),
      gateways: all.filter((r) => r.kind === 'gateway').map(toStatus),
      controlPlane: { api: addresses.api, push: addresses.push, monitoring: addresses.monitoring, ...(addresses.console ? { console: addresses.console } : {}), configRevision: store.revision, proxiesConnected: push.metrics.connectedProxies },
    };
  };

  // The Gateway API's status, as its controller would write it: computed for the config in
  // force and the gateways running (src/config/gateway-api/status.ts).
  const statusFor = () => gatewayApiStatus(store.list(), gatewayRuntimeOf(status()));
  const apiHandler = createControlPlaneApi({
    credentials,
    store,
    registrations,
    push,
    traces,
    status,
    statusFor,
    // Proxies started by this machine (not Kubernetes') read certificate files from it: an
    // apply that names one it cannot read is told so.
    ...(options.source ? {} : { localDiagnostics: (resources: readonly Resource[]) => unreadableTlsFiles(resources) }),
    onRegistrationChanged: (key) => {
      syncRegistry();
      push.requestPush(`registration ${key}`);
    },
    authenticateCollectorToken: options.authenticateCollectorToken,
    logger: logger.child('api'),
  });
  const api = createServer(apiHandler);
  // 100-continue is answered by the body reader, after the gate (core/http-body.ts).
  api.on('checkContinue', apiHandler);

  const metrics = createControlPlaneMetrics(() => ({ push: push.metrics, revision: store.revision }));
  // Prometheus scrapes this port with the API token as its bearer credential
  // (scrape_config `authorization: {credentials_file: <state dir>/api-token}`).
  let monitoringIsOwn: (authority: string) => boolean = () => false;
  const monitoring = createServer((req, res) => {
    const refused = checkHostAndOrigin(req, monitoringIsOwn);
    if (refused) return sendJson(res, refused.status, { error: refused.message });
    if (credentials.authenticate(req)?.kind !== 'operator') {
      return sendJson(res, 401, { error: 'the monitoring port needs the API token as a bearer credential (Prometheus: authorization.credentials_file)' }, { 'www-authenticate': 'Bearer realm="sinew"' });
    }
    if (req.url === '/metrics' || req.url === '/stats/prometheus') {
      metrics.metrics().then((body) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(body);
      });
      return;
    }
    res.writeHead(404).end('see /metrics\n');
  });

  const listen = (server: Server, port: number) =>
    new Promise<AddressInfo>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server.address() as AddressInfo));
    });
  const apiAddr = await listen(api, options.apiPort ?? 15080);
  apiHandler.setOwnAuthorities(ownAuthorities(host, apiAddr.port));
  if (options.collectTraces !== false) {
    // Before the push port opens, so the first config of every proxy names the collector.
    const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
    // The proxies present their push credential to this collector, and to no other.
    const own = { kind: 'otlp-http' as const, url: `http://${reachable}:${apiAddr.port}${OTLP_TRACES_PATH}`, presentCredential: true };
    builder = new ProxyConfigBuilder({ ...mesh, tracingCollectors: [...(options.mesh?.tracingCollectors ?? []), own] });
  }
  const pushAddr = await push.listen(options.pushPort ?? 15010, host);
  const monAddr = await listen(monitoring, options.monitoringPort ?? 15014);
  monitoringIsOwn = ownAuthorities(host, monAddr.port);
  const addresses: ControlPlane['addresses'] = { api: `${host}:${apiAddr.port}`, push: `${pushAddr.host}:${pushAddr.port}`, monitoring: `${host}:${monAddr.port}` };
  const consoleInstance =
    options.consolePort === undefined
      ? undefined
      : await startConsole({
          host,
          port: options.consolePort,
          token: credentials.apiToken,
          clock,
          logger: logger.child('console'),
          scrapeIntervalMs: options.scrapeIntervalMs,
          traces,
          // The console checked the browser's session (or bearer token) and its origin itself.
          controlPlaneApi: apiHandler.asOperator,
          registrations: () => registrations.values(),
          proxyIdOf,
          inventory: () => {
            const s = status();
            return {
              services: registry.snapshot().services,
              workloads: [...s.gateways.map((w) => ({ ...w, kind: 'gateway' as const })), ...s.workloads.map((w) => ({ ...w, kind: 'workload' as const }))].map((w) => ({
                name: w.name,
                namespace: w.namespace,
                labels: w.labels,
                kind: w.kind,
                replicas: w.replicas.map((r) => ({ id: r.id, ready: r.ready, sync: r.proxy.sync, configVersion: r.proxy.configVersion })),
              })),
              resources: resources(),
              configRevision: store.revision,
            };
          },
        });
  if (consoleInstance) addresses.console = consoleInstance.address;
  logger.info('control plane ready', addresses);

  return {
    store,
    registry,
    push,
    traces,
    addresses,
    console: consoleInstance,
    credentials,
    tokenFile: token.file,
    ca,
    status,
    async close() {
      await consoleInstance?.close();
      await push.close();
      await ca?.close();
      await Promise.all([api, monitoring].map((s) => new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      })));
    },
  };
}

/** The node id the runner gives a replica's sidecar (or a gateway); status joins on it. */
export function proxyIdOf(registration: Pick<WorkloadRegistration, 'kind' | 'namespace'>, replicaId: string): string {
  return `${registration.kind === 'gateway' ? 'router' : 'sidecar'}~${replicaId}.${registration.namespace}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
