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
 *   npm run bench -- kube        npx tsx bench/kube.ts [--services 1000] [--replicas 2] [--cpu-prof DIR] [--json]
 *
 * The control plane runs in a process of its own, as a cluster runs it: `sinew controlplane
 * --kubernetes --kubeconfig <the test cluster's>` (bin/sinew.js: the compiled build when dist/
 * is up to date, `node scripts/build.mjs` after changing src/, else the sources through tsx,
 * which costs tens of MB more; the report says which ran). Its memory is its own: RSS read
 * from /proc/<pid>/status every 20 ms and its high-water mark (VmHWM, the informers' first
 * list included). The simulated proxies, the API client and the bare watch live in this
 * process, whose RSS is reported beside it. The API server and etcd are the cluster's.
 *
 * `--cpu-prof <dir>`: the control plane writes a V8 CPU profile into <dir> when it exits, and
 * the report lists the functions that took the most time during each change (samples from
 * the API request until the last ACK; the profile's clock is the same monotonic clock as
 * this process's `process.hrtime`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Watch } from '@kubernetes/client-node';
import type { ProxyNode } from '../src/api/proxy-config.js';
import type { KubeClient } from '../src/kube/api.js';
import { LeanProxy, meshServices, percentile, virtualService, type SimProxy } from './controlplane.js';
import { clusterSkip, startCluster, type TestCluster } from '../test/kube/support/cluster.js';
import { clientFor, installCrds, setPodStatus } from '../test/kube/support/objects.js';

export interface KubeBenchOptions {
  services?: number;
  namespaces?: number;
  replicasPer?: number;
  /** Where the control plane writes a V8 CPU profile (and the report its hot functions per change). */
  cpuProfDir?: string;
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
  /**
   * CPU time the control plane process used from the API request to the last ACK (user +
   * system, from /proc at 10 ms resolution): the work the change cost, which a loaded machine
   * stretches in wall time but not in CPU time.
   */
  controlPlaneCpuMs: number;
  /** process.hrtime of the API request and of the last ACK, in microseconds (the CPU profile's clock). */
  windowUs: [number, number];
  /** With --cpu-prof: the control plane's functions by self time within the window. */
  hot?: { fn: string; ms: number }[];
}

export interface KubeBenchResult {
  services: number;
  pods: number;
  objects: number;
  createMs: number;
  /** Process start to serving: informers listing everything, the CA, the ports. */
  syncMs: number;
  connectAllMs: number;
  changes: Change[];
  /** What ran the control plane: the compiled build or the sources through tsx. */
  controlPlaneBuild: 'dist' | 'tsx';
  /** The control plane process's RSS, sampled every 20 ms, at its peak after the proxies connected. */
  controlPlaneRssPeakMiB: number;
  /** The control plane process's high-water mark (VmHWM), its first list of the cluster included. */
  controlPlaneMaxRssMiB: number;
  /** This process (2000 simulated proxies, the API client): its high-water mark. */
  benchProcessMaxRssMiB: number;
  target: { p99Ms: number; rssMiB: number; met: boolean };
}

const round = (n: number) => Math.round(n * 10) / 10;
const HASH = '5f7b9c6d8';
const repo = join(import.meta.dirname, '..');

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

const hrtimeUs = () => Number(process.hrtime.bigint() / 1000n);

/** RSS and its high-water mark of a process, MiB, from /proc. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

/** User + system CPU time of a process, ms (/proc/<pid>/stat, in clock ticks of 10 ms: Linux's USER_HZ). */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Whether bin/sinew.js will run the compiled build (its own rule: dist's stamp newer than every source). */
function runsBuild(): boolean {
  const stamp = join(repo, 'dist', '.build-stamp');
  if (!existsSync(stamp)) return false;
  const newest = (dir: string): number => {
    let n = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) n = Math.max(n, e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs);
    return n;
  };
  return statSync(stamp).mtimeMs >= newest(join(repo, 'src'));
}

interface ControlPlaneProcess {
  child: ChildProcess;
  api: string;
  push: string;
  token: string;
  /** SIGTERM, then SIGKILL after 30 s; resolves once it has exited (and written its profile). */
  stop(): Promise<void>;
}

/** `sinew controlplane --kubernetes` against the test cluster, as an operator would run it. */
async function startControlPlaneProcess(cluster: TestCluster, cpuProfDir: string | undefined, log: (line: string) => void): Promise<ControlPlaneProcess> {
  const flags = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const child = spawn(process.execPath, [...flags, join(repo, 'bin/sinew.js'), 'controlplane', '--kubernetes', '--kubeconfig', cluster.kubeconfig, '--api-port', '0', '--push-port', '0', '--monitoring-port', '0', '--console-port', 'off'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SINEW_LOG_LEVEL: process.env.SINEW_BENCH_LOG ?? 'warn' },
  });
  child.stderr!.on('data', (c: Buffer) => log(`  control plane: ${c.toString().trimEnd()}`));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const ready = await new Promise<{ api: string; push: string; token: string }>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const addresses = /control plane: api (\S+), push (\S+),/.exec(out);
        const token = /api token \(in memory only[^)]*\): (\S+)/.exec(out);
        if (addresses && token) resolve({ api: addresses[1]!, push: addresses[2]!, token: token[1]! });
      });
      child.once('exit', (code) => reject(new Error(`the control plane exited (${code}) before it served: ${out}`)));
    });
    return { child, ...ready, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function apiCall<T>(cp: ControlPlaneProcess, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`http://${cp.api}${path}`, { method, headers: { authorization: `Bearer ${cp.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

export async function runKubeBench(options: KubeBenchOptions = {}): Promise<KubeBenchResult> {
  if (clusterSkip) throw new Error(clusterSkip);
  const serviceCount = options.services ?? 1000;
  const namespaces = options.namespaces ?? 10;
  const replicasPer = options.replicasPer ?? 2;
  const log = options.log ?? (() => {});
  const cluster: TestCluster = await startCluster({ apiExtraArgs: ['--max-requests-inflight=1000', '--max-mutating-requests-inflight=500', '--service-cluster-ip-range=10.0.0.0/16'] });
  let cp: ControlPlaneProcess | undefined;
  let sampler: NodeJS.Timeout | undefined;
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

    const controlPlaneBuild = runsBuild() ? 'dist' : 'tsx';
    if (controlPlaneBuild === 'tsx') log('dist/ is older than src/: the control plane runs the sources through tsx (node scripts/build.mjs to measure the build)');
    const syncStart = performance.now();
    cp = await startControlPlaneProcess(cluster, options.cpuProfDir, log);
    const syncMs = performance.now() - syncStart;
    log(`the control plane (pid ${cp.child.pid}) listed everything and serves after ${Math.round(syncMs)} ms`);
    const pid = cp.child.pid!;

    const [host, port] = cp.push.split(':');
    const connectStart = performance.now();
    for (let start = 0; start < pods.length; start += 200) {
      const batch = pods.slice(start, start + 200).map((p): ProxyNode => ({ id: `sidecar~${p.name}.${p.namespace}`, mode: 'sidecar', workload: p.workload, namespace: p.namespace, labels: { app: p.app, version: 'v1' }, serviceAccount: p.app }));
      // The credential an operator mints for a proxy (POST /api/v1/proxy-credentials): the
      // bench times config changes, not each proxy's first authentication (a TokenReview).
      const credentials = new Map<string, string>();
      await pool(batch, 16, async (node) => credentials.set(node.id, (await apiCall<{ credential: string }>(cp!, 'POST', '/api/v1/proxy-credentials', { node })).credential));
      await Promise.all(
        batch.map((node) => {
          const proxy = new LeanProxy(host!, Number(port), node, credentials.get(node.id)!);
          proxies.push(proxy);
          const first = new Promise<void>((resolve) => proxy.onConfig(() => resolve()));
          proxy.start();
          return first;
        }),
      );
      log(`  ${proxies.length} proxies have their first config`);
    }
    for (;;) {
      const status = await apiCall<{ sync: string }[]>(cp, 'GET', '/api/v1/proxies');
      if (status.filter((s) => s.sync === 'SYNCED').length === pods.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const connectAllMs = performance.now() - connectStart;
    log(`${pods.length} proxies SYNCED in ${Math.round(connectAllMs)} ms`);

    // The control plane's memory from here on, with every proxy connected.
    let rssSampledPeak = 0;
    sampler = setInterval(() => (rssSampledPeak = Math.max(rssSampledPeak, memoryOf(pid).rss)), 20);

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
      const cpuBefore = cpuMsOf(pid);
      const windowStart = hrtimeUs();
      start = performance.now();
      await change();
      const timeout = setTimeout(() => resolveAll(), 30_000);
      await all;
      const windowEnd = hrtimeUs();
      const controlPlaneCpuMs = cpuMsOf(pid) - cpuBefore;
      clearTimeout(timeout);
      watch.abort();
      measuring = false;
      acks.sort((a, b) => a - b);
      if (acks.length < proxies.length) log(`${name}: only ${acks.length} of ${proxies.length} proxies ACKed within 30 s`);
      return { name, affected: acks.length, watchMs: round(watchMs), ackP50Ms: round(percentile(acks, 50)), ackP99Ms: round(percentile(acks, 99)), ackMaxMs: round(acks[acks.length - 1] ?? NaN), controlPlaneCpuMs, windowUs: [windowStart, windowEnd] };
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
    sampler = undefined;
    const controlPlaneMaxRssMiB = round(memoryOf(pid).hwm);
    await cp.stop();
    if (options.cpuProfDir) {
      const profile = newestProfile(options.cpuProfDir);
      if (profile) for (const c of changes) c.hot = hotFunctions(profile, c.windowUs, 15);
      else log(`no CPU profile was written into ${options.cpuProfDir}`);
    }
    const controlPlaneRssPeakMiB = round(rssSampledPeak);
    const benchProcessMaxRssMiB = round((process.resourceUsage().maxRSS * 1024) / 2 ** 20);
    const met = changes.every((c) => c.ackP99Ms < 1000 && c.affected === proxies.length) && controlPlaneMaxRssMiB < 500;
    return { services: serviceCount, pods: pods.length, objects, createMs: Math.round(createMs), syncMs: Math.round(syncMs), connectAllMs: Math.round(connectAllMs), changes, controlPlaneBuild, controlPlaneRssPeakMiB, controlPlaneMaxRssMiB, benchProcessMaxRssMiB, target: { p99Ms: 1000, rssMiB: 500, met } };
  } finally {
    if (sampler) clearInterval(sampler);
    await Promise.all(proxies.map((p) => p.close()));
    await cp?.stop();
    await cluster.stop();
  }
}

// === the CPU profile, within a window ===

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

function newestProfile(dir: string): CpuProfile | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return files[0] ? (JSON.parse(readFileSync(files[0], 'utf8')) as CpuProfile) : undefined;
}

/** The functions with the most self time between two `process.hrtime` instants (µs). */
export function hotFunctions(profile: CpuProfile, [from, to]: [number, number], top: number): { fn: string; ms: number }[] {
  const names = new Map<number, string>();
  for (const n of profile.nodes) {
    const file = n.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/');
    names.set(n.id, `${n.callFrame.functionName || '(anonymous)'} ${file ? `${file}:${n.callFrame.lineNumber + 1}` : ''}`.trim());
  }
  const self = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    const next = t + (profile.timeDeltas[i + 1] ?? 0);
    if (t < from || t > to) continue;
    const name = names.get(profile.samples[i]!)!;
    self.set(name, (self.get(name) ?? 0) + (next - t) / 1000);
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, ms]) => ({ fn, ms: round(ms) }));
}

export function report(r: KubeBenchResult): string {
  const rows: [string, string][] = [
    ['mesh in the API server', `${r.services} Services, ${r.pods} pods, ${r.objects} objects (created in ${r.createMs} ms)`],
    ['control plane started, listed, serving', `${r.syncMs} ms (${r.controlPlaneBuild === 'dist' ? 'the compiled build' : 'the sources through tsx'})`],
    ['all proxies connected and SYNCED', `${r.connectAllMs} ms`],
  ];
  for (const c of r.changes) {
    rows.push([c.name, `${c.affected} proxies`]);
    rows.push(['  API server -> bare watch (reference)', `${c.watchMs} ms`]);
    rows.push(['  API request -> ACK p50 / p99 / max', `${c.ackP50Ms} / ${c.ackP99Ms} / ${c.ackMaxMs} ms  (p99 target < ${r.target.p99Ms} ms; p99 is ${round(c.ackP99Ms / c.watchMs)}x the bare watch)`]);
    rows.push(['  control plane CPU time in that span', `${c.controlPlaneCpuMs} ms`]);
  }
  rows.push(['control plane RSS high-water mark (its process)', `${r.controlPlaneMaxRssMiB} MiB  (target < ${r.target.rssMiB} MiB)`]);
  rows.push(['  its RSS peak during the changes', `${r.controlPlaneRssPeakMiB} MiB`]);
  rows.push(['bench process (simulated proxies, API client)', `${r.benchProcessMaxRssMiB} MiB`]);
  rows.push(['target met', r.target.met ? 'yes' : 'no']);
  const width = Math.max(...rows.map(([k]) => k.length));
  let text = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
  for (const c of r.changes) {
    if (!c.hot) continue;
    text += `\ncontrol plane CPU during "${c.name}" (self time, ms):\n` + c.hot.map((h) => `  ${String(h.ms).padStart(8)}  ${h.fn}`).join('\n') + '\n';
  }
  return text;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { services: { type: 'string', default: '1000' }, replicas: { type: 'string', default: '2' }, 'cpu-prof': { type: 'string' }, json: { type: 'boolean', default: false } } });
  const result = await runKubeBench({ services: Number(values.services), replicasPer: Number(values.replicas), cpuProfDir: values['cpu-prof'], log: (l) => process.stderr.write(l + '\n') });
  process.stdout.write(values.json ? JSON.stringify(result) + '\n' : report(result));
}
