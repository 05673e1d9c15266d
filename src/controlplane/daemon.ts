/**
 * The control-plane daemon (Istio's istiod, for the embedded mesh): wires the config store,
 * the service registry, the compiler and the push server together, and serves the HTTP API.
 *
 *   config change (API)  ─┐
 *   replica registered   ─┼─> registry/store updated -> requestPush (debounced, per proxy)
 *                          └─> compile(node) for each connected proxy -> push if changed
 *
 * Ports (DESIGN.md): 15010 push, 15014 monitoring; the HTTP API has no Istio counterpart and
 * defaults to 15080. Each can be 0 (tests).
 *
 * The API server is also the mesh's trace collector (./traces.ts): unless `collectTraces` is
 * false, every proxy is told to send its spans to `http://<api>/v1/traces`.
 *
 * With a `consolePort`, the control plane also scrapes every proxy's metrics and serves the
 * web console on that port (DESIGN.md: 20001), behind the mesh's token (./console/).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { MeshStatus, ReplicaStatus, WorkloadRegistration, WorkloadStatus, ProxySync } from '../api/mesh-status.js';
import type { ProxyNode } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { FileConfigStore, MemoryConfigStore, writeAtomic, type ConfigStore } from '../config/store.js';
import { gatewayApiStatus, gatewayRuntimeOf } from '../config/gateway-api/status.js';
import { ServiceRegistry } from '../registry/index.js';
import { PushServer } from '../xds/server.js';
import { createConfigApiHandler } from './api.js';
import { ProxyConfigBuilder, type MeshSettings } from './compile.js';
import { createControlPlaneMetrics } from './metrics.js';
import { createTraceApiHandler, OTLP_TRACES_PATH } from './traces.js';
import { TraceStore } from '../telemetry/trace-store.js';
import { readFile } from 'node:fs/promises';
import { startConsole, type Console } from './console/index.js';

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
  /** Serve the web console on this port (0 = any free port); absent = no console. */
  consolePort?: number;
  /** How often the console's scraper reads every proxy's metrics (default 5 s). */
  scrapeIntervalMs?: number;
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
  status(): MeshStatus;
  close(): Promise<void>;
}

const REGISTRATIONS_FILE = 'registrations.json';
/** The resource kinds ServiceRegistry builds services and endpoints from (registry.ts). */
const REGISTRY_KINDS = new Set(['Service', 'ServiceEntry', 'WorkloadEntry', 'Workload']);

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const store: ConfigStore = options.stateDir ? await FileConfigStore.open(join(options.stateDir, 'config')) : new MemoryConfigStore();
  const registry = new ServiceRegistry();
  const registrations = new Map<string, WorkloadRegistration>();
  // Replaced once the API port is bound, when the proxies' collector URL is known.
  let builder = new ProxyConfigBuilder(options.mesh);
  const traces = new TraceStore();
  const traceApi = createTraceApiHandler(traces);

  // Registrations survive a control-plane restart: the runner re-sends them too, but until it
  // does, the endpoints stay known and proxies resync to the same config.
  if (options.stateDir) {
    try {
      const saved = JSON.parse(await readFile(join(options.stateDir, REGISTRATIONS_FILE), 'utf8')) as WorkloadRegistration[];
      for (const r of saved) registrations.set(`${r.kind}/${r.namespace}/${r.name}`, r);
    } catch {
      // First start.
    }
  }

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
        if (registrations.has(key)) continue;
        synced.delete(key);
        if (r.kind === 'workload') registry.setWorkloadInstances(`${r.namespace}/${r.name}`, []);
      }
      for (const [key, r] of registrations) {
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

  const push = new PushServer({
    // Composed (own part + class part): the push server diffs and encodes each class's part once.
    source: (node: ProxyNode) => builder.buildComposed(node, resources(), registry.snapshot(), registrations, String(store.revision)),
    clock,
    logger: logger.child('push'),
    debounceMs: options.debounceMs,
  });

  store.watch(() => {
    syncRegistry();
    push.requestPush('config');
  });

  // Writes are chained so the file always ends with the latest state, whatever the order
  // in which concurrent registrations finish.
  let persisting: Promise<void> = Promise.resolve();
  const persistRegistrations = (): Promise<void> => {
    if (!options.stateDir) return Promise.resolve();
    const file = join(options.stateDir, REGISTRATIONS_FILE);
    persisting = persisting.catch(() => undefined).then(() => writeAtomic(file, JSON.stringify([...registrations.values()])));
    return persisting;
  };

  const status = (): MeshStatus => {
    const proxies = push.status();
    const byId = new Map(proxies.map((p) => [p.node.id, p]));
    const toStatus = (r: WorkloadRegistration): WorkloadStatus => ({
      name: r.name,
      namespace: r.namespace,
      labels: r.labels,
      replicas: r.replicas.map((rep): ReplicaStatus => {
        const p = byId.get(proxyIdOf(r, rep.id));
        const sync: ProxySync = p ? p.state : 'DISCONNECTED';
        return { id: rep.id, app: rep.app, ready: rep.ready, restarts: rep.restarts, proxy: { ...rep.proxy, configVersion: p?.ackedVersion, sync } };
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
  const configApi = createConfigApiHandler({ store, logger: logger.child('api'), statusFor });
  const handleApi = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://cp');
    if (url.pathname === '/healthz' || url.pathname === '/ready') return sendJson(res, 200, { ok: true, pid: process.pid, revision: store.revision });
    if (url.pathname === '/api/v1/status' && req.method === 'GET') return sendJson(res, 200, status());
    if (url.pathname === '/api/v1/proxies' && req.method === 'GET') {
      return sendJson(
        res,
        200,
        push.status().map((p) => ({ id: p.node.id, workload: p.node.workload, namespace: p.node.namespace, versionSent: p.sentVersion, versionAcked: p.ackedVersion, sync: p.state, lastNack: p.lastNack?.reason })),
      );
    }
    const reg = /^\/api\/v1\/registrations\/(workload|gateway)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (reg && (req.method === 'PUT' || req.method === 'DELETE')) {
      const key = `${reg[1]}/${reg[2]}/${reg[3]}`;
      const change = async () => {
        if (req.method === 'PUT') {
          const registration = (await readJson(req)) as WorkloadRegistration;
          registrations.set(key, { ...registration, kind: reg[1] as WorkloadRegistration['kind'], namespace: reg[2], name: reg[3] });
        } else registrations.delete(key);
        syncRegistry();
        push.requestPush(`registration ${reg[2]}/${reg[3]}`);
        await persistRegistrations();
      };
      change().then(
        () => sendJson(res, 200, { ok: true }),
        (err: Error) => sendJson(res, err instanceof SyntaxError || /JSON|over 1 MiB/.test(err.message) ? 400 : 500, { error: err.message }),
      );
      return;
    }
    if (traceApi(req, res, url)) return;
    configApi(req, res);
  };
  const api = createServer(handleApi);

  const metrics = createControlPlaneMetrics(() => ({ push: push.metrics, revision: store.revision }));
  const monitoring = createServer((req, res) => {
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
  if (options.collectTraces !== false) {
    // Before the push port opens, so the first config of every proxy names the collector.
    const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
    const own = { kind: 'otlp-http' as const, url: `http://${reachable}:${apiAddr.port}${OTLP_TRACES_PATH}` };
    builder = new ProxyConfigBuilder({ ...options.mesh, tracingCollectors: [...(options.mesh?.tracingCollectors ?? []), own] });
  }
  const pushAddr = await push.listen(options.pushPort ?? 15010, host);
  const monAddr = await listen(monitoring, options.monitoringPort ?? 15014);
  const addresses: ControlPlane['addresses'] = { api: `${host}:${apiAddr.port}`, push: `${pushAddr.host}:${pushAddr.port}`, monitoring: `${host}:${monAddr.port}` };
  const consoleInstance =
    options.consolePort === undefined
      ? undefined
      : await startConsole({
          host,
          port: options.consolePort,
          stateDir: options.stateDir,
          clock,
          logger: logger.child('console'),
          scrapeIntervalMs: options.scrapeIntervalMs,
          traces,
          controlPlaneApi: handleApi,
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
    status,
    async close() {
      await consoleInstance?.close();
      await push.close();
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

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total > 1024 * 1024) {
        req.destroy();
        reject(new Error('registration over 1 MiB'));
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(new Error(`invalid JSON: ${(err as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
