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
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { MeshStatus, ReplicaStatus, WorkloadRegistration, WorkloadStatus, ProxySync } from '../api/mesh-status.js';
import type { ProxyNode } from '../api/proxy-config.js';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { FileConfigStore, MemoryConfigStore, writeAtomic, type ConfigStore } from '../config/store.js';
import { ServiceRegistry } from '../registry/index.js';
import { PushServer } from '../xds/server.js';
import { createConfigApiHandler } from './api.js';
import { ProxyConfigBuilder, type MeshSettings } from './compile.js';
import { createControlPlaneMetrics } from './metrics.js';
import { readFile } from 'node:fs/promises';

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
}

export interface ControlPlane {
  readonly store: ConfigStore;
  readonly registry: ServiceRegistry;
  readonly push: PushServer;
  readonly addresses: { api: string; push: string; monitoring: string };
  status(): MeshStatus;
  close(): Promise<void>;
}

const REGISTRATIONS_FILE = 'registrations.json';

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const store: ConfigStore = options.stateDir ? await FileConfigStore.open(join(options.stateDir, 'config')) : new MemoryConfigStore();
  const registry = new ServiceRegistry();
  const registrations = new Map<string, WorkloadRegistration>();
  const builder = new ProxyConfigBuilder(options.mesh);

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

  const syncRegistry = () => {
    registry.setResources(store.list());
    for (const r of registrations.values()) {
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
  };
  syncRegistry();

  const push = new PushServer({
    source: (node: ProxyNode) => builder.build(node, store.list(), registry.snapshot(), registrations, String(store.revision)),
    clock,
    logger: logger.child('push'),
    debounceMs: options.debounceMs,
  });

  store.watch(() => {
    syncRegistry();
    push.requestPush('config');
  });

  const persistRegistrations = async () => {
    if (options.stateDir) await writeAtomic(join(options.stateDir, REGISTRATIONS_FILE), JSON.stringify([...registrations.values()]));
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
      controlPlane: { api: addresses.api, push: addresses.push, monitoring: addresses.monitoring, configRevision: store.revision, proxiesConnected: push.metrics.connectedProxies },
    };
  };

  const configApi = createConfigApiHandler({ store, logger: logger.child('api') });
  const api = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://cp');
    if (url.pathname === '/healthz' || url.pathname === '/ready') return sendJson(res, 200, { ok: true, revision: store.revision });
    if (url.pathname === '/api/v1/status' && req.method === 'GET') return sendJson(res, 200, status());
    if (url.pathname === '/api/v1/proxies' && req.method === 'GET') {
      return sendJson(
        res,
        200,
        push.status().map((p) => ({ id: p.node.id, workload: p.node.workload, namespace: p.node.namespace, versionSent: p.sentVersion, versionAcked: p.ackedVersion, sync: p.state, lastNack: p.lastNack?.reason })),
      );
    }
    const reg = /^\/api\/v1\/registrations\/(workload|gateway)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (reg && req.method === 'PUT') {
      readJson(req).then(
        async (body) => {
          const registration = body as WorkloadRegistration;
          registrations.set(`${reg[1]}/${reg[2]}/${reg[3]}`, { ...registration, kind: reg[1] as WorkloadRegistration['kind'], namespace: reg[2], name: reg[3] });
          await persistRegistrations();
          syncRegistry();
          push.requestPush(`registration ${reg[2]}/${reg[3]}`);
          sendJson(res, 200, { ok: true });
        },
        (err: Error) => sendJson(res, 400, { error: err.message }),
      );
      return;
    }
    if (reg && req.method === 'DELETE') {
      registrations.delete(`${reg[1]}/${reg[2]}/${reg[3]}`);
      persistRegistrations().then(() => {
        syncRegistry();
        push.requestPush(`deregistration ${reg[2]}/${reg[3]}`);
        sendJson(res, 200, { ok: true });
      });
      return;
    }
    configApi(req, res);
  });

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
  const pushAddr = await push.listen(options.pushPort ?? 15010, host);
  const monAddr = await listen(monitoring, options.monitoringPort ?? 15014);
  const addresses = { api: `${host}:${apiAddr.port}`, push: `${pushAddr.host}:${pushAddr.port}`, monitoring: `${host}:${monAddr.port}` };
  logger.info('control plane ready', addresses);

  return {
    store,
    registry,
    push,
    addresses,
    status,
    async close() {
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
