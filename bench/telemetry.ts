/**
 * Telemetry benchmark: what Istio's standard telemetry costs the proxy. The same proxy and
 * upstream, in one run, pinned the same way each time (wrk, the upstream and the span
 * collector on core 0; the proxy under test on core 1):
 *
 *   off   createProxy({ telemetry: false })                      no metrics, spans or peer headers
 *   on    metrics subscribed and served on a metrics port, 1 % sampling (Istio's default) with
 *         an OTLP collector, trace and peer-metadata headers on every request
 *   tracing the same with metrics off, to tell what metrics recording costs apart
 *
 * for an outbound listener (client span, peer headers out, peer metadata read from the
 * response) and an inbound one (server span, peer metadata read from the request, peer headers
 * on the response). Figures: max requests/s at 50 connections and the proxy's CPU time per
 * request, each on/off as a ratio (the goal is a cost of at most 15 %). On a shared machine the
 * CPU ratio is the steadier of the two: requests/s moves with whatever else runs. Needs `wrk`.
 *
 *   npx tsx bench/telemetry.ts [--duration 10] [--rounds 3] [--json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type { ProxyConfig } from '../src/api/proxy-config.js';

const repo = resolve(import.meta.dirname, '..');

export interface TelemetryBenchOptions {
  /** Seconds per measurement. */
  durationS: number;
  json: boolean;
  /** Alternating measurements per proxy; the best of each counts (default 3). */
  rounds?: number;
}

export interface TelemetryBenchResult {
  direction: 'outbound' | 'inbound';
  offRps: number;
  onRps: number;
  /** on / off: 0.85 or more meets the goal. */
  ratio: number;
  /** Proxy CPU microseconds per request. */
  offCpuUs: number;
  onCpuUs: number;
  /** off / on CPU per request: the throughput a CPU-bound proxy keeps with telemetry on. */
  cpuRatio: number;
  /** CPU per request with tracing and peer exchange on but metrics off (what metrics cost is the rest). */
  tracingOnlyCpuUs: number;
  /** Spans the proxy started, sampled and exported during the run (telemetry on). */
  spans?: { started: number; sampled: number; exported: number; dropped: number };
}

const children: ChildProcess[] = [];
const readers = new WeakMap<ChildProcess, (pattern: RegExp) => Promise<RegExpMatchArray>>();

function start(cmd: string, args: string[], cpu: string): ChildProcess {
  const child = spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, SINEW_LOG_LEVEL: 'warn' } });
  children.push(child);
  readers.set(child, lineReader(child));
  return child;
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return readers.get(child)!(pattern);
}

/** Lines a child prints, read without taking its stdout over (several waits may follow). */
function lineReader(child: ChildProcess): (pattern: RegExp) => Promise<RegExpMatchArray> {
  let buffered = '';
  let ended = false;
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (const w of [...waiters]) w();
  });
  child.stdout!.on('end', () => {
    ended = true;
    for (const w of [...waiters]) w();
  });
  return (pattern) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const m = buffered.match(pattern);
        if (m) {
          waiters.delete(check);
          resolve(m);
        } else if (ended) {
          waiters.delete(check);
          reject(new Error(`process exited before printing ${pattern}`));
        }
      };
      waiters.add(check);
      check();
    });
}

function wrk(args: string[]): string {
  const out = spawnSync('taskset', ['-c', '0', 'wrk', ...args], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  return out.stdout;
}

function config(direction: 'outbound' | 'inbound', upstreamPort: number, collectorPort: number): ProxyConfig {
  const service = { host: 'reviews.default.svc.cluster.local', port: 9080 };
  const cluster = direction === 'inbound' ? 'inbound|9080||' : 'outbound|9080||reviews.default.svc.cluster.local';
  return {
    version: 'bench',
    node: { id: `sidecar~reviews-v1-0.bench`, mode: 'sidecar', workload: 'reviews-v1', namespace: 'bench', labels: { app: 'reviews', version: 'v1' } },
    listeners: [{ name: 'bench', address: { host: '127.0.0.1', port: 0 }, direction, protocol: 'http', http: { routeConfigName: 'bench' } }],
    routeConfigs: [{ name: 'bench', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'bench/all', match: {}, action: { kind: 'route', destinations: [{ cluster, weight: 1 }] } }] }] }],
    clusters: [{ name: cluster, kind: 'eds', service, protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: 'ROUND_ROBIN' } }],
    endpoints: [{ clusterName: cluster, endpoints: [{ address: { host: '127.0.0.1', port: upstreamPort }, labels: {}, health: 'HEALTHY' }] }],
    telemetry: { tracingSamplingPercentage: 1, tracingCollectors: [{ kind: 'otlp-http', url: `http://127.0.0.1:${collectorPort}/v1/traces` }] },
  };
}

/**
 * The proxy under test, in its own process: `createProxy` from the build, telemetry on or
 * off. It prints its port, then its tracer's counters when stdin closes.
 */
const PROXY_RUNNER = (repoDir: string) => `
import { existsSync, readFileSync } from 'node:fs';
// The compiled build when there is one (bench/run.ts builds it first), else the sources
// (also with SINEW_FROM_SOURCE=1, as for bin/sinew.js).
const built = ${JSON.stringify(join(repoDir, 'dist/src/proxy/proxy.js'))};
let createProxy;
if (existsSync(built) && process.env.SINEW_FROM_SOURCE !== '1') ({ createProxy } = await import(built));
else {
  const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))});
  register();
  ({ createProxy } = await import(${JSON.stringify(pathToFileURL(join(repoDir, 'src/proxy/proxy.ts')).href)}));
}
const [file, mode] = process.argv.slice(2);
const on = mode !== 'off';
const config = JSON.parse(readFileSync(file, 'utf8'));
if (mode === 'tracing') config.telemetry.metrics = { enabled: false };
const proxy = createProxy({ config, telemetry: on ? {} : false, metricsPort: on ? 0 : undefined });
await proxy.start();
console.log('listening ' + proxy.listenerAddresses().bench.port);
process.stdin.resume();
process.stdin.on('end', async () => {
  const t = proxy.telemetry?.tracer;
  if (t) await t.flush();
  console.log('STATS ' + JSON.stringify(t ? t.stats : null));
  await proxy.close({ drainMs: 0 });
  process.exit(0);
});
`;

type Mode = 'off' | 'on' | 'tracing';

async function runProxy(dir: string, direction: 'outbound' | 'inbound', mode: Mode, upstreamPort: number, collectorPort: number): Promise<{ port: number; child: ChildProcess }> {
  const file = join(dir, `${direction}-${mode}.json`);
  writeFileSync(file, JSON.stringify(config(direction, upstreamPort, collectorPort)));
  const runner = join(dir, 'proxy-runner.mjs');
  if (!existsSync(runner)) writeFileSync(runner, PROXY_RUNNER(repo));
  const child = start(process.execPath, ['--max-semi-space-size=16', runner, file, mode], '1');
  const port = Number((await waitForLine(child, /listening (\d+)/))[1]);
  return { port, child };
}

async function stopProxy(child: ChildProcess): Promise<TelemetryBenchResult['spans'] | undefined> {
  const stats = waitForLine(child, /STATS (.*)\n/).then((m) => JSON.parse(m[1]) as TelemetryBenchResult['spans'] | null);
  child.stdin!.end();
  const s = await stats.catch(() => null);
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  return s ?? undefined;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks at USER_HZ=100
}

function measure(port: number, pid: number, durationS: number): { rps: number; cpuUs: number } {
  const url = `http://127.0.0.1:${port}/reviews/0`;
  const before = cpuSeconds(pid);
  const out = wrk(['-t1', '-c50', `-d${durationS}s`, url]);
  const cpu = cpuSeconds(pid) - before;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), cpuUs: requests ? (cpu / requests) * 1e6 : NaN };
}

/** Runs the benchmark: for each direction, the proxy with telemetry off, then on. */
export async function runTelemetryBench(options: TelemetryBenchOptions): Promise<TelemetryBenchResult[]> {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: apt-get install wrk');
  const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-telemetry-'));
  try {
    const upstream = start(process.execPath, ['-e', UPSTREAM], '0');
    const upstreamPort = Number((await waitForLine(upstream, /listening (\d+)/))[1]);
    const collector = start(process.execPath, ['-e', COLLECTOR], '0');
    const collectorPort = Number((await waitForLine(collector, /listening (\d+)/))[1]);
    const results: TelemetryBenchResult[] = [];
    for (const direction of ['outbound', 'inbound'] as const) {
      // Both proxies stay up and are measured in turns, best of `rounds` each: on a machine
      // shared with other work, interference only ever makes a round slower.
      const modes = ['off', 'on', 'tracing'] as const;
      const m: Record<Mode, { rps: number; cpuUs: number }> = { on: { rps: 0, cpuUs: Infinity }, off: { rps: 0, cpuUs: Infinity }, tracing: { rps: 0, cpuUs: Infinity } };
      const proxies = {
        off: await runProxy(dir, direction, 'off', upstreamPort, collectorPort),
        on: await runProxy(dir, direction, 'on', upstreamPort, collectorPort),
        tracing: await runProxy(dir, direction, 'tracing', upstreamPort, collectorPort),
      };
      for (const mode of modes) wrk(['-t1', '-c50', '-d2s', `http://127.0.0.1:${proxies[mode].port}/reviews/0`]); // warm-up: JIT and pools
      for (let round = 0; round < (options.rounds ?? 3); round++) {
        for (const mode of modes) {
          if (!options.json) process.stderr.write(`measuring ${direction}, telemetry ${mode}, round ${round + 1}...\n`);
          const r = measure(proxies[mode].port, proxies[mode].child.pid!, options.durationS);
          m[mode] = { rps: Math.max(m[mode].rps, r.rps), cpuUs: Math.min(m[mode].cpuUs, r.cpuUs) };
        }
      }
      await stopProxy(proxies.off.child);
      await stopProxy(proxies.tracing.child);
      const spans = await stopProxy(proxies.on.child);
      results.push({
        direction,
        offRps: m.off.rps,
        onRps: m.on.rps,
        ratio: m.off.rps ? m.on.rps / m.off.rps : 0,
        offCpuUs: m.off.cpuUs,
        onCpuUs: m.on.cpuUs,
        cpuRatio: m.off.cpuUs / m.on.cpuUs,
        tracingOnlyCpuUs: m.tracing.cpuUs,
        spans,
      });
    }
    return results;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A minimal upstream: 100-byte body, keep-alive (the same as bench/proxy.ts). */
const UPSTREAM = `
const body = Buffer.alloc(100, 'x');
require('node:http').createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 100 }); res.end(body); })
  .listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
`;

/** A span sink answering OTLP/HTTP JSON exports with an empty ExportTraceServiceResponse. */
const COLLECTOR = `
require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); }); })
  .listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
`;

export function reportTelemetry(results: TelemetryBenchResult[]): string {
  const lines = ['listener   off req/s  on req/s  on/off  off cpu-us/rq  on cpu-us/rq  off/on cpu  cost(cpu)  no-metrics cpu-us/rq  spans started/sampled/exported/dropped'];
  for (const r of results) {
    const s = r.spans;
    lines.push(
      [
        r.direction.padEnd(9),
        r.offRps.toFixed(0).padStart(10),
        r.onRps.toFixed(0).padStart(9),
        r.ratio.toFixed(3).padStart(7),
        r.offCpuUs.toFixed(1).padStart(14),
        r.onCpuUs.toFixed(1).padStart(13),
        r.cpuRatio.toFixed(3).padStart(11),
        `${((1 - r.cpuRatio) * 100).toFixed(1)}%`.padStart(10),
        r.tracingOnlyCpuUs.toFixed(1).padStart(21),
        s ? `  ${s.started}/${s.sampled}/${s.exported}/${s.dropped}` : '  -',
      ].join(' '),
    );
  }
  return lines.join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' }, json: { type: 'boolean', default: false } } });
  const results = await runTelemetryBench({ durationS: Number(values.duration), rounds: Number(values.rounds), json: values.json });
  process.stdout.write(values.json ? JSON.stringify({ bench: 'telemetry', results }) + '\n' : reportTelemetry(results));
}
