/**
 * The control plane in Kubernetes mode at fleet size: a real kube-apiserver v1.20 (with etcd,
 * from scripts/kube-test) holds `services` Services over `namespaces` namespaces, each with a
 * Deployment's `replicas` pods (IP and Ready patched into status, as a kubelet would), and a
 * VirtualService and DestinationRule for every third service. The control plane lists and
 * watches them through its informers; one simulated proxy per pod (bench/controlplane.ts's
 * LeanProxy: the push protocol over a real socket, ACKing each frame) connects. Then two
 * changes go through the API server, as kubectl would make them:
 *
 *   1. a VirtualService's timeout (every proxy sees every service: all are affected);
 *   2. one pod turning unready (its service's endpoints, in every proxy's config).
 *
 * For each, the time from the API request to each proxy's ACK. The reference, measured in
 * the same run: how long the API server itself takes to tell a bare watch (client-node's
 * Watch on the same resource) about the same change. Targets (issue 21): every proxy's
 * config converged in under 1 s p99 after a change, under 500 MB.
 *
 *   npm run bench -- kube        npx tsx bench/kube.ts [--services 1000] [--replicas 2] [--json]
 *
 * Memory is this process's RSS from the control plane's start, sampled every 20 ms: the control
 * plane, its informers' caches and the 2000 simulated proxies' sockets (the API server and
 * etcd are the cluster's, not Sinew's); the process's high-water mark, which also holds what
 * creating the objects cost, is shown beside it.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Watch } from '@kubernetes/client-node';
import type { ProxyNode } from '../src/api/proxy-config.js';
import { startKubeControlPlane, type KubeControlPlane } from '../src/cli/kube-controlplane.js';
import type { KubeClient } from '../src/kube/api.js';
import { LeanProxy, meshServices, percentile, virtualService, type SimProxy } from './controlplane.js';
import { clusterSkip, startCluster, type TestCluster } from '../test/kube/support/cluster.js';
import { clientFor, installCrds, setPodStatus } from '../test/kube/support/objects.js';

export interface KubeBenchOptions {
  services?: number;
  namespaces?: number;
  replicasPer?: number;
  debounceMs?: number;
  log?: (line: string) => void;
}

interface Change {
  name: string;
  affected: number;
  /** API request -> the API server's watch event reaching a bare watch in this process. */
  watchMs: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackMaxMs: number;
}

export interface KubeBenchResult {
  services: number;
  pods: number;
  objects: number;
  createMs: number;
  /** Informers listing everything, until the control plane serves. */
  syncMs: number;
  connectAllMs: number;
  changes: Change[];
  /** RSS sampled every 20 ms from the control plane's start to the end. */
  rssPeakMiB: number;
  /** The process's high-water mark, creating the objects included. */
  processMaxRssMiB: number;
  target: { p99Ms: number; rssMiB: number; met: boolean };
}

const round = (n: number) => Math.round(n * 10) / 10;
const HASH = '5f7b9c6d8';

/** Runs `fn` over `items`, `concurrency` at a time. */
async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

function podIp(i: number): string {
  return `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}

export async function runKubeBench(options: KubeBenchOptions = {}): Promise<KubeBenchResult> {
  if (clusterSkip) throw new Error(clusterSkip);
  const serviceCount = options.services ?? 1000;
  const namespaces = options.namespaces ?? 10;
  const replicasPer = options.replicasPer ?? 2;
  const log = options.log ?? (() => {});
  const cluster: TestCluster = await startCluster({ apiExtraArgs: ['--max-requests-inflight=1000', '--max-mutating-requests-inflight=500', '--service-cluster-ip-range=10.0.0.0/16'] });
  let kube: KubeControlPlane | undefined;
  const proxies: SimProxy[] = [];
  try {
    const client: KubeClient = clientFor(cluster);
    await installCrds(client);
    const services = meshServices(serviceCount, namespaces);
    const createStart = performance.now();
    for (let n = 0; n < namespaces; n++) await client.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}` } } });
    const pods: { name: string; namespace: string; workload: string; app: string; ip: string }[] = [];
    services.forEach((s) => {
      for (let r = 0; r < replicasPer; r++) pods.push({ name: `${s.name}-v1-${HASH}-${r}`, namespace: s.namespace, workload: `${s.name}-v1`, app: s.name, ip: podIp(pods.length + 1) });
    });
    let objects = 0;
    await pool(services, 16, async (s) => {
      const i = Number(s.name.slice(4));
      await client.request('POST', `/api/v1/namespaces/${s.namespace}/services`, {
        body: { apiVersion: 'v1', kind: 'Service', metadata: { name: s.name, labels: { app: s.name } }, spec: { selector: { app: s.name }, ports: [{ name: 'http', port: 9080 }, ...(s.grpc ? [{ name: 'grpc', port: 9090 }] : [])] } },
      });
      objects++;
      if (i % 3 === 0) {
        await client.request('POST', `/apis/networking.istio.io/v1/namespaces/${s.namespace}/virtualservices`, { body: virtualService(s, '5s') });
        objects++;
      }
      if (i % 3 === 1) {
        await client.request('POST', `/apis/networking.istio.io/v1/namespaces/${s.namespace}/destinationrules`, {
          body: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: s.name }, spec: { host: s.name, trafficPolicy: { outlierDetection: { consecutive5xxErrors: 7 } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }] } },
        });
        objects++;
      }
    });
    await pool(pods, 16, async (p) => {
      await client.request('POST', `/api/v1/namespaces/${p.namespace}/pods`, {
        body: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: p.name, labels: { app: p.app, version: 'v1', 'pod-template-hash': HASH }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${p.workload}-${HASH}`, uid: '00000000-0000-0000-0000-000000000001', controller: true }] },
          spec: { serviceAccountName: p.app, containers: [{ name: 'app', image: 'app:1', ports: [{ name: 'http', containerPort: 9080 }, { name: 'grpc', containerPort: 9090 }] }] },
        },
      });
      await setPodStatus(client, p.namespace, p.name, p.ip, true);
      objects++;
    });
    const createMs = performance.now() - createStart;
    log(`created ${objects} objects in the API server in ${Math.round(createMs)} ms`);

    // Memory from here on: the control plane's, sampled (the process's own high-water mark
    // also holds what creating the objects above cost this process).
    let rssSampledPeak = 0;
    const sampler = setInterval(() => (rssSampledPeak = Math.max(rssSampledPeak, process.memoryUsage().rss)), 20);
    const syncStart = performance.now();
    kube = await startKubeControlPlane({ client, logger: process.env.SINEW_BENCH_LOG ? (await import('../src/core/logger.js')).createLogger({ level: 'warn', scope: 'bench' }) : undefined, apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: false, debounceMs: options.debounceMs ?? 100 });
    const syncMs = performance.now() - syncStart;
    log(`informers listed everything and the control plane serves after ${Math.round(syncMs)} ms`);

    const [host, port] = kube.controlPlane.addresses.push.split(':');
    const connectStart = performance.now();
    const push0 = kube.controlPlane.push;
    const progress = setInterval(() => {
      const m = push0.metrics;
      log(`  connecting: ${m.connectedProxies} connected, ${m.pushes} pushes, ${m.pushErrors} push errors, ${m.protocolErrors} protocol errors`);
    }, 10_000);
    for (let start = 0; start < pods.length; start += 200) {
      await Promise.all(
        pods.slice(start, start + 200).map((p) => {
          const node: ProxyNode = { id: `sidecar~${p.name}.${p.namespace}`, mode: 'sidecar', workload: p.workload, namespace: p.namespace, labels: { app: p.app, version: 'v1' }, serviceAccount: p.app };
          // The credential an operator mints for a proxy (POST /api/v1/proxy-credentials): the
          // bench times config changes, not each proxy's first authentication.
          const proxy = new LeanProxy(host!, Number(port), node, kube!.controlPlane.credentials.mintProxyCredential(node));
          proxies.push(proxy);
          const first = new Promise<void>((resolve) => proxy.onConfig(() => resolve()));
          proxy.start();
          return first;
        }),
      );
    }
    const push = kube.controlPlane.push;
    while (push.status().filter((s) => s.state === 'SYNCED').length !== pods.length) await new Promise((r) => setTimeout(r, 10));
    clearInterval(progress);
    const connectAllMs = performance.now() - connectStart;
    log(`${pods.length} proxies SYNCED in ${Math.round(connectAllMs)} ms`);

    const measure = async (name: string, watchPath: string, change: () => Promise<unknown>): Promise<Change> => {
      // Let the previous change's pushes finish.
      await new Promise((r) => setTimeout(r, 500));
      const acks: number[] = [];
      let watchMs = NaN;
      let resolveAll: () => void = () => {};
      const all = new Promise<void>((resolve) => (resolveAll = resolve));
      let start = 0;
      let measuring = false;
      const seen = new Set<SimProxy>();
      for (const p of proxies) {
        p.onConfig(() => {
          if (!measuring || seen.has(p)) return;
          seen.add(p);
          acks.push(performance.now() - start);
          if (acks.length === proxies.length) resolveAll();
        });
      }
      // The reference: a bare watch from now on, on the same resource.
      const rv = (await client.get<{ metadata: { resourceVersion: string } }>(watchPath)).metadata.resourceVersion;
      const watch = await new Watch(client.config).watch(watchPath, { resourceVersion: rv }, () => {
        if (measuring && Number.isNaN(watchMs)) watchMs = performance.now() - start;
      }, () => {});
      measuring = true;
      start = performance.now();
      await change();
      const timeout = setTimeout(() => resolveAll(), 30_000);
      await all;
      clearTimeout(timeout);
      watch.abort();
      acks.sort((a, b) => a - b);
      if (acks.length < proxies.length) log(`${name}: only ${acks.length} of ${proxies.length} proxies ACKed within 30 s`);
      return { name, affected: acks.length, watchMs: round(watchMs), ackP50Ms: round(percentile(acks, 50)), ackP99Ms: round(percentile(acks, 99)), ackMaxMs: round(acks[acks.length - 1] ?? NaN) };
    };

    const s0 = services[0]!;
    const changes: Change[] = [];
    changes.push(
      await measure('VirtualService timeout 5s -> 7s (kubectl apply)', `/apis/networking.istio.io/v1/namespaces/${s0.namespace}/virtualservices`, async () => {
        const current = await client.get<any>(`/apis/networking.istio.io/v1/namespaces/${s0.namespace}/virtualservices/${s0.name}`);
        const next = virtualService(s0, '7s') as { metadata: Record<string, unknown> };
        await client.request('PUT', `/apis/networking.istio.io/v1/namespaces/${s0.namespace}/virtualservices/${s0.name}`, { body: { ...next, metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion } } });
      }),
    );
    const p1 = pods[replicasPer]!; // the first pod of svc-1
    changes.push(await measure('a pod turns unready (its endpoint turns unhealthy)', `/api/v1/namespaces/${p1.namespace}/pods`, () => setPodStatus(client, p1.namespace, p1.name, p1.ip, false)));
    clearInterval(sampler);
    const rssPeakMiB = round(rssSampledPeak / 2 ** 20);
    const processMaxRssMiB = round((process.resourceUsage().maxRSS * 1024) / 2 ** 20);
    const met = changes.every((c) => c.ackP99Ms < 1000 && c.affected === proxies.length) && rssPeakMiB < 500;
    return { services: serviceCount, pods: pods.length, objects, createMs: Math.round(createMs), syncMs: Math.round(syncMs), connectAllMs: Math.round(connectAllMs), changes, rssPeakMiB, processMaxRssMiB, target: { p99Ms: 1000, rssMiB: 500, met } };
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
    await kube?.close();
    await cluster.stop();
  }
}

export function report(r: KubeBenchResult): string {
  const rows: [string, string][] = [
    ['mesh in the API server', `${r.services} Services, ${r.pods} pods, ${r.objects} objects (created in ${r.createMs} ms)`],
    ['informers listed, control plane serving', `${r.syncMs} ms`],
    ['all proxies connected and SYNCED', `${r.connectAllMs} ms`],
  ];
  for (const c of r.changes) {
    rows.push([c.name, `${c.affected} proxies`]);
    rows.push(['  API server -> bare watch (reference)', `${c.watchMs} ms`]);
    rows.push(['  API request -> ACK p50 / p99 / max', `${c.ackP50Ms} / ${c.ackP99Ms} / ${c.ackMaxMs} ms  (p99 target < ${r.target.p99Ms} ms; p99 is ${round(c.ackP99Ms / c.watchMs)}x the bare watch)`]);
  }
  rows.push(['RSS peak from the control plane\'s start (+ simulated proxies)', `${r.rssPeakMiB} MiB  (target < ${r.target.rssMiB} MiB)`]);
  rows.push(['  process high-water mark, creating the objects included', `${r.processMaxRssMiB} MiB`]);
  rows.push(['target met', r.target.met ? 'yes' : 'no']);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { services: { type: 'string', default: '1000' }, replicas: { type: 'string', default: '2' }, json: { type: 'boolean', default: false } } });
  const result = await runKubeBench({ services: Number(values.services), replicasPer: Number(values.replicas), log: (l) => process.stderr.write(l + '\n') });
  process.stdout.write(values.json ? JSON.stringify(result) + '\n' : report(result));
}
