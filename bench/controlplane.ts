/**
 * Control plane at fleet size, in one process: the real daemon (startControlPlane: memory
 * store, registry, compiler, push server) with `services` Kubernetes Services spread over
 * `namespaces` namespaces (every third one with a second, gRPC port), a Workload of
 * `replicasPer` replicas behind each, registered through the daemon's registration API, a
 * few hundred VirtualServices and DestinationRules, and one real PushClient per replica over
 * loopback. Once every proxy is SYNCED, ONE VirtualService is changed through the config API
 * and each proxy's time from the apply request to its ACK is measured (the client's
 * `config` event fires right after it sends the ACK). Without Sidecar scoping every proxy
 * sees every service, as in Istio, so every proxy is affected. After the first whole push
 * each proxy gets deltas (src/xds/delta.ts): the change reaches it as a patch of one
 * virtual host, a few KiB instead of its whole config.
 *
 * The issue's target, sized after istiod (1 vCPU, 1.5 GB for 1000 services and 2000
 * sidecars): ACK p99 under 1 s and RSS under 500 MB.
 *
 *   npx tsx bench/controlplane.ts [--services 1000] [--namespaces 10] [--replicas 2]
 *                                 [--proxy lean|pushclient] [--scoped] [--debounce 100] [--no-ca] [--json]
 *   npm run bench -- controlplane
 *
 * Both ends share one event loop and one heap: the figures include what 2000 simulated
 * proxies cost to parse, freeze and hold their configs, so they are a ceiling on the
 * control plane's own cost. Compare runs on the same machine only.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ProxyNode } from '../src/api/proxy-config.js';
import type { WorkloadRegistration } from '../src/api/mesh-status.js';
import { ProxyConfigBuilder } from '../src/controlplane/compile.js';
import { startControlPlane, type ControlPlane } from '../src/controlplane/daemon.js';
import { SeededRandom } from '../src/core/random.js';
import { PushClient } from '../src/xds/client.js';
import { PROTOCOL_VERSION, encodeFrame } from '../src/xds/protocol.js';

export interface ControlPlaneBenchOptions {
  services?: number;
  namespaces?: number;
  replicasPer?: number;
  /** Every n-th service gets a VirtualService and a DestinationRule (3: about a third). */
  routedEvery?: number;
  /** Proxies connected at a time while the fleet comes up. */
  connectBatch?: number;
  /** The daemon's debounce (Istio PILOT_DEBOUNCE_AFTER 100 ms); it is part of the measured time. */
  debounceMs?: number;
  /**
   * `lean` (default): simulated proxies that speak the push protocol over their own socket
   * but read only each frame's head (version and nonce) before ACKing. `pushclient`: the
   * real PushClient, which parses, freezes and keeps every config; in one process that
   * costs about 3.5x the config size in heap per proxy (some 18 GB for 2000 proxies of a
   * 1000-service mesh), so it fits smaller meshes only.
   */
  proxyKind?: 'lean' | 'pushclient';
  /**
   * Give every namespace a Sidecar whose egress is its own namespace (`./*`), as Istio
   * advises for large meshes: each proxy then sees a tenth of the mesh, and the change
   * affects only the proxies of the changed service's namespace.
   */
  scoped?: boolean;
  /** Host the mesh CA (default true, as the daemon does); false measures the control plane without it. */
  ca?: boolean;
  log?: (line: string) => void;
}

export interface ControlPlaneBenchResult {
  proxyKind: 'lean' | 'pushclient';
  scoped: boolean;
  /** Proxies whose config the change altered (all of them unless scoped). */
  affected: number;
  services: number;
  namespaces: number;
  proxies: number;
  virtualServices: number;
  destinationRules: number;
  fdLimit: string;
  setupMs: number;
  connectAllMs: number;
  debounceMs: number;
  configBytes: { min: number; max: number; mean: number };
  pushBatchMs: number;
  pushed: number;
  /** Of `pushed`, those sent as deltas (only what changed) rather than whole configs. */
  deltaPushes: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackMaxMs: number;
  rssConnectedMiB: number;
  rssAfterChangeMiB: number;
  rssPeakMiB: number;
  heapUsedMiB: number;
  pushErrors: number;
  /** Proxies whose config, built with the shared outbound part, was checked equal to a whole compile. */
  sharedOutboundChecked: number;
  target: { ackP99Ms: number; rssMiB: number; met: boolean };
}

const TARGET_P99_MS = 1000;
const TARGET_RSS_MIB = 500;

// === the mesh ===

export interface Svc {
  name: string;
  namespace: string;
  grpc: boolean;
}

export function meshServices(count: number, namespaces: number): Svc[] {
  return Array.from({ length: count }, (_, i) => ({ name: `svc-${i}`, namespace: `ns-${i % namespaces}`, grpc: i % 3 === 0 }));
}

/** Service + Workload for every service; VirtualService + DestinationRule for every `routedEvery`-th. */
function meshDocuments(services: Svc[], replicasPer: number, routedEvery: number, timeout = '5s'): { docs: object[]; vs: number; dr: number } {
  const docs: object[] = [];
  let vs = 0;
  let dr = 0;
  services.forEach((s, i) => {
    const labels = { app: s.name, version: 'v1' };
    docs.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace: s.namespace, labels: { app: s.name } },
      spec: { selector: { app: s.name }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }, ...(s.grpc ? [{ name: 'grpc', port: 9090, targetPort: 9090 }] : [])] },
    });
    docs.push({
      apiVersion: 'sinew.dev/v1alpha1',
      kind: 'Workload',
      metadata: { name: `${s.name}-v1`, namespace: s.namespace, labels },
      spec: {
        serviceAccount: s.name,
        replicas: replicasPer,
        command: ['node', 'server.js'],
        ports: [{ name: 'http', containerPort: 9080 }, ...(s.grpc ? [{ name: 'grpc', containerPort: 9090 }] : [])],
      },
    });
    if (i % routedEvery === 0) docs.push(virtualService(s, timeout)), vs++;
    if (i % routedEvery === 1 % routedEvery) {
      dr++;
      docs.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: s.name, namespace: s.namespace },
        spec: {
          host: s.name,
          trafficPolicy: { connectionPool: { http: { http1MaxPendingRequests: 100 } }, outlierDetection: { consecutive5xxErrors: 7 } },
          subsets: [{ name: 'v1', labels: { version: 'v1' } }],
        },
      });
    }
  });
  return { docs, vs, dr };
}

export function virtualService(s: Svc, timeout: string): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      hosts: [s.name],
      http: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: s.name, port: { number: 9080 } } }], timeout: '2s' },
        { route: [{ destination: { host: s.name, port: { number: 9080 } }, weight: 90 }, { destination: { host: s.name, port: { number: 9080 } }, weight: 10 }], timeout, retries: { attempts: 3, perTryTimeout: '1s' } },
      ],
    },
  };
}

// === simulated proxies ===

/** What the bench needs of a proxy: start, a callback per applied config, close. */
export interface SimProxy {
  start(): void;
  onConfig(listener: (bytes: number) => void): void;
  close(): Promise<void>;
}

/** Frame head the push server writes first: `{"type":"push"|"delta","version":"…","nonce":"…",`. */
const PUSH_HEAD = /^\{"type":"(?:push|delta)","version":("(?:[^"\\]|\\.)*"),"nonce":("(?:[^"\\]|\\.)*"),/;

/**
 * A proxy that speaks the push protocol on a real socket but does not parse configs: it
 * keeps the first bytes of each frame, reads version and nonce from them, and ACKs once the
 * frame's newline arrives. What it costs is the kernel's copy of the bytes, so the bench
 * measures the control plane rather than 2000 JSON parsers sharing its event loop.
 */
export class LeanProxy implements SimProxy {
  private socket: net.Socket | undefined;
  private head = '';
  private frameBytes = 0;
  private readonly listeners: ((bytes: number) => void)[] = [];

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly node: ProxyNode,
    private readonly credential: string,
  ) {}

  start(): void {
    const socket = net.connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('connect', () => socket.write(encodeFrame({ type: 'hello', protocol: PROTOCOL_VERSION, node: this.node, credential: this.credential })));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  onConfig(listener: (bytes: number) => void): void {
    this.listeners.push(listener);
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.head.length < 512) this.head += chunk.toString('latin1', start, Math.min(end, start + 512 - this.head.length));
      this.frameBytes += end - start;
      if (nl === -1) return;
      this.onFrame();
      start = nl + 1;
    }
  }

  private onFrame(): void {
    const head = this.head;
    const bytes = this.frameBytes;
    this.head = '';
    this.frameBytes = 0;
    const push = PUSH_HEAD.exec(head);
    if (push) {
      const version = JSON.parse(push[1]!) as string;
      const nonce = JSON.parse(push[2]!) as string;
      this.socket!.write(encodeFrame({ type: 'ack', version, nonce }));
      for (const l of this.listeners) l(bytes);
    } else if (head.startsWith('{"type":"ping"')) {
      const ping = JSON.parse(head) as { id: number };
      this.socket!.write(encodeFrame({ type: 'pong', id: ping.id }));
    }
  }

  close(): Promise<void> {
    const socket = this.socket;
    if (!socket || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      socket.destroy();
    });
  }
}

/** The real PushClient behind the same small interface. */
function pushClientProxy(host: string, port: number, node: ProxyNode, credential: string, seed: number): SimProxy {
  const client = new PushClient({ host, port, node, credential, apply: () => {}, random: new SeededRandom(seed), keepaliveMs: 0 });
  return {
    start: () => client.start(),
    onConfig: (listener) => client.on('config', (config) => listener(Buffer.byteLength(JSON.stringify(config)))),
    close: () => client.close(),
  };
}

// === measuring ===

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number) => Math.round(n * 10) / 10;
const mib = (bytes: number) => round(bytes / 2 ** 20);

function fdLimit(): string {
  try {
    return execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

async function post(url: string, token: string, body: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' }, body });
  if (res.status !== 200) throw new Error(`POST ${url}: ${res.status} ${(await res.text()).slice(0, 2000)}`);
}

/**
 * Guards the optimisation the figures depend on: for a few proxies, the config built with
 * its class's shared outbound part must serialise exactly as one compiled whole (a mutable
 * resource list gets no sharing). Throws on the first difference.
 */
function checkSharedOutbound(cp: ControlPlane, nodes: ProxyNode[], registrations: Map<string, WorkloadRegistration>): number {
  const listed = cp.store.list();
  const frozen = Object.freeze([...listed]);
  const registry = cp.registry.snapshot();
  const shared = new ProxyConfigBuilder();
  const whole = new ProxyConfigBuilder();
  const sample = [0, 1, Math.floor(nodes.length / 3), Math.floor(nodes.length / 2) + 1, nodes.length - 1];
  for (const i of sample) {
    const node = nodes[i]!;
    const a = JSON.stringify(shared.build(node, frozen, registry, registrations, 'check'));
    const b = JSON.stringify(whole.build(node, [...listed], registry, registrations, 'check'));
    if (a !== b) throw new Error(`shared outbound config differs from a whole compile for ${node.id}`);
  }
  return sample.length;
}

/** Runs the bench and returns its figures; the control plane and every client are closed after. */
export async function runControlPlaneBench(options: ControlPlaneBenchOptions = {}): Promise<ControlPlaneBenchResult> {
  const serviceCount = options.services ?? 1000;
  const namespaces = options.namespaces ?? 10;
  const replicasPer = options.replicasPer ?? 2;
  const routedEvery = options.routedEvery ?? 3;
  const connectBatch = options.connectBatch ?? 200;
  const debounceMs = options.debounceMs ?? 100;
  const log = options.log ?? (() => {});
  const proxies = serviceCount * replicasPer;

  // Each proxy is two sockets in this process (client and server end), plus the kernel's listen queue.
  const limit = fdLimit();
  if (limit !== 'unlimited' && Number(limit) < proxies * 2 + 256) {
    throw new Error(`ulimit -n is ${limit}: ${proxies} proxies need about ${proxies * 2 + 256} file descriptors in one process; raise it or pass fewer services`);
  }

  const setupStart = performance.now();
  const cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs, ...(options.ca === false ? { ca: false as const } : {}) });
  const api = `http://${cp.addresses.api}/api/v1`;
  const [pushHost, pushPort] = cp.addresses.push.split(':');
  const clients: SimProxy[] = [];
  try {
    const services = meshServices(serviceCount, namespaces);
    const mesh = meshDocuments(services, replicasPer, routedEvery);
    const scoped = options.scoped ?? false;
    if (scoped) {
      for (let n = 0; n < namespaces; n++) {
        mesh.docs.push({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: `ns-${n}` }, spec: { egress: [{ hosts: ['./*'] }] } });
      }
    }
    // JSON is YAML: one multi-document body per chunk keeps each request well under the API's limit.
    for (let i = 0; i < mesh.docs.length; i += 500) {
      await post(`${api}/apply`, cp.credentials.apiToken, mesh.docs.slice(i, i + 500).map((d) => JSON.stringify(d)).join('\n---\n'));
    }
    log(`applied ${mesh.docs.length} resources (${mesh.vs} VirtualServices, ${mesh.dr} DestinationRules)`);

    // Registrations, as the embedded runner sends them: each replica's sidecar has its own ports.
    const nodes: ProxyNode[] = [];
    let nextPort = 20_000;
    const registered = new Map<string, WorkloadRegistration>();
    const registrations = services.map((s) => {
      const name = `${s.name}-v1`;
      const replicas = Array.from({ length: replicasPer }, (_, r) => {
        const base = nextPort;
        nextPort += 8;
        const ports: Record<string, { inbound: number; app: number }> = { '9080': { inbound: base, app: base + 1 } };
        if (s.grpc) ports['9090'] = { inbound: base + 2, app: base + 3 };
        nodes.push({ id: `sidecar~${name}-${r}.${s.namespace}`, mode: 'sidecar', workload: name, namespace: s.namespace, labels: { app: s.name, version: 'v1' }, serviceAccount: s.name });
        return { id: `${name}-${r}`, app: `127.0.0.1:${base + 1}`, host: '127.0.0.1', ports, ready: true, restarts: 0, proxy: { inbound: `127.0.0.1:${base}`, outbound: `127.0.0.1:${base + 4}`, admin: `127.0.0.1:${base + 5}` } };
      });
      const registration: WorkloadRegistration = { kind: 'workload', name, namespace: s.namespace, labels: { app: s.name, version: 'v1' }, serviceAccount: s.name, replicas };
      registered.set(`workload/${s.namespace}/${name}`, registration);
      return { path: `${api}/registrations/workload/${s.namespace}/${name}`, body: JSON.stringify(registration) };
    });
    for (let i = 0; i < registrations.length; i += 50) {
      await Promise.all(
        registrations.slice(i, i + 50).map(async (r) => {
          const res = await fetch(r.path, { method: 'PUT', headers: { authorization: `Bearer ${cp.credentials.apiToken}`, 'content-type': 'application/json' }, body: r.body });
          if (res.status !== 200) throw new Error(`PUT ${r.path}: ${res.status}`);
        }),
      );
    }
    const setupMs = performance.now() - setupStart;
    log(`registered ${proxies} replicas in ${Math.round(setupMs)} ms`);

    // Connect in batches: thousands of simultaneous SYNs overflow the listen backlog and turn
    // into 1 s kernel retransmits that would measure the kernel, not the control plane.
    const connectStart = performance.now();
    const proxyKind = options.proxyKind ?? 'lean';
    for (let start = 0; start < nodes.length; start += connectBatch) {
      const batch = nodes.slice(start, start + connectBatch);
      await Promise.all(
        batch.map((node, j) => {
          // Each with its own push credential, as the runner gets one per proxy it starts.
          const credential = cp.credentials.mintProxyCredential(node);
          const proxy = proxyKind === 'lean' ? new LeanProxy(pushHost!, Number(pushPort), node, credential) : pushClientProxy(pushHost!, Number(pushPort), node, credential, start + j + 1);
          clients.push(proxy);
          const first = new Promise<void>((resolve) => proxy.onConfig(() => resolve()));
          proxy.start();
          return first;
        }),
      );
    }
    // A client's `config` event fires as it sends its ACK; wait for the server to read them all.
    const syncedCount = () => cp.push.status().filter((s) => s.state === 'SYNCED').length;
    for (let tries = 0; syncedCount() !== proxies; tries++) {
      if (tries === 500) throw new Error(`${syncedCount()} of ${proxies} proxies SYNCED after connecting`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const connectAllMs = performance.now() - connectStart;
    const rssConnected = process.memoryUsage().rss;
    log(`${proxies} proxies SYNCED in ${Math.round(connectAllMs)} ms`);

    // The change: a new timeout on the VirtualService of the first service, which every proxy sees.
    const sizes: number[] = [];
    const ackTimes: number[] = [];
    let pushBatchMs = 0;
    let pushed = 0;
    let deltaPushes = 0;
    // A change may take more than one batch (a request arriving mid-batch runs after it): sum them.
    const onRun = (info: { durationMs: number; pushed: number; deltas: number }) => {
      pushBatchMs += info.durationMs;
      pushed += info.pushed;
      deltaPushes += info.deltas;
    };
    cp.push.on('pushRun', onRun);
    const runsBefore = cp.push.metrics.pushRuns;
    let measuring = false;
    let resolveAll: () => void = () => {};
    const allAcked = new Promise<void>((resolve) => (resolveAll = resolve));
    const seen = new Set<SimProxy>();
    for (const client of clients) {
      client.onConfig((bytes) => {
        if (!measuring || seen.has(client)) return;
        seen.add(client);
        ackTimes.push(performance.now() - changeStart);
        sizes.push(bytes);
        if (ackTimes.length === affected) resolveAll();
      });
    }
    const affected = scoped ? nodes.filter((n) => n.namespace === services[0]!.namespace).length : clients.length;
    const changed = JSON.stringify(virtualService(services[0]!, '7s'));
    measuring = true;
    const changeStart = performance.now();
    await post(`${api}/apply`, cp.credentials.apiToken, changed);
    await allAcked;
    // Unaffected proxies are compiled and skipped after the last affected one may have
    // ACKed: let the batch finish so its duration is whole.
    while (cp.push.metrics.pushRuns === runsBefore) await new Promise((resolve) => setTimeout(resolve, 5));
    cp.push.off('pushRun', onRun);
    const rssAfter = process.memoryUsage().rss;
    const heapUsed = process.memoryUsage().heapUsed;
    ackTimes.sort((a, b) => a - b);
    // maxRSS is the kernel's high-water mark for the process, in KiB: it catches peaks no sampler would.
    const rssPeak = process.resourceUsage().maxRSS * 1024;

    const ackP99Ms = round(percentile(ackTimes, 99));
    const sharedOutboundChecked = checkSharedOutbound(cp, nodes, registered);
    const rssPeakMiB = mib(rssPeak);
    return {
      proxyKind,
      scoped,
      affected,
      services: serviceCount,
      namespaces,
      proxies,
      virtualServices: mesh.vs,
      destinationRules: mesh.dr,
      fdLimit: limit,
      setupMs: Math.round(setupMs),
      connectAllMs: Math.round(connectAllMs),
      debounceMs,
      configBytes: { min: Math.min(...sizes), max: Math.max(...sizes), mean: Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length) },
      pushBatchMs: round(pushBatchMs),
      pushed,
      deltaPushes,
      ackP50Ms: round(percentile(ackTimes, 50)),
      ackP99Ms,
      ackMaxMs: round(ackTimes[ackTimes.length - 1] ?? 0),
      rssConnectedMiB: mib(rssConnected),
      rssAfterChangeMiB: mib(rssAfter),
      rssPeakMiB,
      heapUsedMiB: mib(heapUsed),
      pushErrors: cp.push.metrics.pushErrors,
      sharedOutboundChecked,
      target: { ackP99Ms: TARGET_P99_MS, rssMiB: TARGET_RSS_MIB, met: ackP99Ms < TARGET_P99_MS && rssPeakMiB < TARGET_RSS_MIB },
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await cp.close();
  }
}

/** The figures as a table for people. */
export function report(r: ControlPlaneBenchResult): string {
  const rows: [string, string][] = [
    ['simulated proxies', r.proxyKind],
    ['Sidecar scoping', r.scoped ? `each namespace sees itself only; ${r.affected} proxies affected` : `none: all ${r.affected} proxies affected`],
    ['mesh', `${r.services} services in ${r.namespaces} namespaces, ${r.proxies} sidecars, ${r.virtualServices} VirtualServices, ${r.destinationRules} DestinationRules`],
    ['fd limit (ulimit -n)', r.fdLimit],
    ['setup (apply + register)', `${r.setupMs} ms`],
    ['all proxies connected and SYNCED', `${r.connectAllMs} ms`],
    ['sent per proxy for the change', `${r.configBytes.mean} bytes (min ${r.configBytes.min}, max ${r.configBytes.max}); ${r.deltaPushes} of ${r.pushed} as deltas`],
    ['debounce (included below)', `${r.debounceMs} ms`],
    ['push batch (build + send)', `${r.pushBatchMs} ms for ${r.pushed} proxies`],
    ['apply -> ACK p50', `${r.ackP50Ms} ms`],
    ['apply -> ACK p99', `${r.ackP99Ms} ms  (target < ${r.target.ackP99Ms} ms)`],
    ['apply -> ACK max', `${r.ackMaxMs} ms`],
    ['RSS connected / after change', `${r.rssConnectedMiB} / ${r.rssAfterChangeMiB} MiB`],
    ['RSS peak', `${r.rssPeakMiB} MiB  (target < ${r.target.rssMiB} MiB)`],
    ['push errors', String(r.pushErrors)],
    ['shared outbound == whole compile', `${r.sharedOutboundChecked} proxies checked`],
    ['target met', r.target.met ? 'yes' : 'no'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

// === standalone entry ===

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      services: { type: 'string', default: '1000' },
      namespaces: { type: 'string', default: '10' },
      replicas: { type: 'string', default: '2' },
      debounce: { type: 'string', default: '100' },
      proxy: { type: 'string', default: 'lean' },
      scoped: { type: 'boolean', default: false },
      'no-ca': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const result = await runControlPlaneBench({
    services: Number(values.services),
    namespaces: Number(values.namespaces),
    replicasPer: Number(values.replicas),
    debounceMs: Number(values.debounce),
    proxyKind: values.proxy === 'pushclient' ? 'pushclient' : 'lean',
    scoped: values.scoped,
    ca: !values['no-ca'],
    log: values.json ? undefined : (line) => process.stderr.write(`# ${line}\n`),
  });
  if (!values.json) process.stdout.write(report(result));
  process.stdout.write(JSON.stringify({ bench: 'controlplane', ...result }) + '\n');
}
