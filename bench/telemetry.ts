/**
 * Telemetry benchmark: what Istio's standard telemetry costs the proxy (issue: "telemetry
 * (metrics + tracing at 1% sampling) may cost at most 15% of throughput", for outbound and
 * inbound listeners). Three proxies per listener direction, the same upstream and collector:
 *
 *   off   createProxy({ telemetry: false })                      no metrics, spans or peer headers
 *   on    metrics subscribed and served on a metrics port, 1 % sampling (Istio's default) with
 *         an OTLP collector, trace and peer-metadata headers on every request
 *   tracing the same with metrics off, to tell what metrics recording costs apart
 *
 * for an outbound listener (client span, peer headers out, peer metadata read from the
 * response) and an inbound one (server span, peer metadata read from the request, peer headers
 * on the response).
 *
 * Measured PAIRED (bench/paired.ts): "off" and "on" (then "off" and "tracing") run at the same
 * time on the same core (core 1), each under its own wrk (wrk, the upstream and the span
 * collector on core 0), started together for the same seconds; per run the figures are the
 * ratios on/off of proxy CPU per request and of requests/s. On this machine's shared vCPUs the
 * same proxy measures anywhere from 77 to 139 us/request across consecutive runs, so "off" then
 * "on" cannot settle a 15 % target; side by side, whatever slows the core slows both. Rounds
 * swap which wrk starts first; the report is the median of the per-round ratios with min..max.
 * The verdict: the throughput a CPU-bound proxy keeps is off/on CPU per request, so the cost
 * is 1 - 1 / median(on/off CPU per request), target at most 15 % (on/off CPU up to +17.6 %).
 * In saturated mode (both closed-loop at 25 connections) the core is split between the two
 * and the requests/s ratio is the throughput kept, shown beside it; fixed-rate mode
 * (--mode fixed-rate|both) gives both the same open-loop rate and compares CPU at equal batching.
 *
 *   npx tsx bench/telemetry.ts [--duration 5] [--rounds 6] [--mode saturated|fixed-rate|both] [--rate N] [--json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type { ProxyConfig } from '../src/api/proxy-config.js';
import { PROXY_NODE_FLAGS } from '../src/mesh/up.js';
import { LOAD_CPU, UPSTREAM_SCRIPT, PAIRED_MODES, PROXY_CPU, PairedLoad, parseModes, pct, summarize, detailLine, verdictLine, type LoadTarget, type PairedMode, type PairedRound, type PairedSummary } from './paired.js';

const repo = resolve(import.meta.dirname, '..');

export interface TelemetryBenchOptions {
  /** Seconds per paired run. */
  durationS: number;
  json: boolean;
  /** Paired rounds per comparison (default 6). */
  rounds?: number;
  /** Default saturated only. */
  modes?: PairedMode[];
  /** Fixed-rate requests/s per side (default: 20 % each of what a warm-up pair served together). */
  rate?: number;
}

export interface TelemetryBenchResult {
  direction: 'outbound' | 'inbound';
  mode: PairedMode;
  /** Medians over the rounds of each side's requests/s. */
  offRps: number;
  onRps: number;
  /** Median of the per-round on/off requests/s. */
  ratio: number;
  /** Proxy CPU microseconds per request, medians over the rounds. */
  offCpuUs: number;
  onCpuUs: number;
  /** off / on CPU per request (1 / the median per-round on/off): the throughput a CPU-bound proxy keeps with telemetry on. */
  cpuRatio: number;
  /** 1 - cpuRatio: at most 0.15 meets the goal. */
  cost: number;
  met: boolean;
  /** CPU per request with tracing and peer exchange on but metrics off (median; measured paired with "off"). */
  tracingOnlyCpuUs: number;
  /** 1 - off/tracing CPU per request, from the median per-round ratio (what metrics cost is the rest). */
  tracingOnlyCost: number;
  /** Spans the proxy started, sampled and exported during the run (telemetry on; all modes together). */
  spans?: { started: number; sampled: number; exported: number; dropped: number };
  /** off vs on, and off vs tracing: every round's figures and the spreads. */
  paired: { on: PairedSummary; tracing: PairedSummary };
}

const TELEMETRY_TARGET = { maxCpuRatio: 1 / 0.85, text: 'cost <=15%' };

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
  const child = start(process.execPath, [...PROXY_NODE_FLAGS, runner, file, mode], PROXY_CPU);
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

/** Runs the benchmark: for each direction, "off" paired with "on", then with "tracing". */
export async function runTelemetryBench(options: TelemetryBenchOptions): Promise<TelemetryBenchResult[]> {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: apt-get install wrk');
  const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-telemetry-'));
  const rounds = options.rounds ?? 6;
  const modes = options.modes ?? ['saturated'];
  const load = new PairedLoad();
  const log = (line: string) => options.json || process.stderr.write(line + '\n');
  try {
    const upstream = start(process.execPath, ['-e', UPSTREAM_SCRIPT], LOAD_CPU);
    const upstreamPort = Number((await waitForLine(upstream, /listening (\d+)/))[1]);
    const collector = start(process.execPath, ['-e', COLLECTOR], LOAD_CPU);
    const collectorPort = Number((await waitForLine(collector, /listening (\d+)/))[1]);
    const results: TelemetryBenchResult[] = [];
    for (const direction of ['outbound', 'inbound'] as const) {
      // One pair at a time, each of two proxies started together for it, warmed up together and
      // measured all its rounds back to back, then stopped: both sides have the same history (a
      // proxy that already served an earlier pair measures ~20% cheaper than a fresh one).
      const pairs = (['on', 'tracing'] as const).map((b) => ({ b, rate: 0, runs: new Map<PairedMode, PairedRound[]>(modes.map((m) => [m, []])) }));
      let spans: TelemetryBenchResult['spans'];
      for (const pair of pairs) {
        const off = await runProxy(dir, direction, 'off', upstreamPort, collectorPort);
        const proxy = await runProxy(dir, direction, pair.b, upstreamPort, collectorPort);
        const target = (mode: Mode, p: { port: number; child: ChildProcess }): LoadTarget => ({ name: mode, url: `http://127.0.0.1:${p.port}/reviews/0`, pids: [p.child.pid!] });
        const a = target('off', off);
        const b = target(pair.b, proxy);
        const measured = await load.measurePair(a, b, { label: `${direction}: telemetry off + ${pair.b}`, rounds, modes, durationS: options.durationS, rate: options.rate, log });
        pair.rate = measured.rate;
        pair.runs = measured.runs;
        await stopProxy(off.child);
        const stats = await stopProxy(proxy.child);
        if (pair.b === 'on') spans = stats;
      }
      for (const mode of modes) {
        const on = summarize('off', 'on', mode, options.durationS, pairs[0].runs.get(mode)!, pairs[0].rate);
        const tracing = summarize('off', 'tracing', mode, options.durationS, pairs[1].runs.get(mode)!, pairs[1].rate);
        results.push({
          direction,
          mode,
          offRps: on.aRps.median,
          onRps: on.bRps.median,
          ratio: on.throughputRatio.median,
          offCpuUs: on.aCpuUs.median,
          onCpuUs: on.bCpuUs.median,
          cpuRatio: 1 / on.cpuRatio.median,
          cost: 1 - 1 / on.cpuRatio.median,
          met: on.cpuRatio.median <= TELEMETRY_TARGET.maxCpuRatio,
          tracingOnlyCpuUs: tracing.bCpuUs.median,
          tracingOnlyCost: 1 - 1 / tracing.cpuRatio.median,
          spans,
          paired: { on, tracing },
        });
      }
    }
    return results;
  } finally {
    load.close();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A minimal upstream: 100-byte body, keep-alive (the same as bench/proxy.ts). */
/** A span sink answering OTLP/HTTP JSON exports with an empty ExportTraceServiceResponse. */
const COLLECTOR = `
require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); }); })
  .listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
`;

export function reportTelemetry(results: TelemetryBenchResult[]): string {
  const lines: string[] = [];
  for (const mode of PAIRED_MODES) {
    const rs = results.filter((r) => r.mode === mode);
    if (!rs.length) continue;
    const s0 = rs[0].paired.on;
    lines.push(
      mode === 'saturated'
        ? `paired, saturated (off and on side by side on core 1, wrk -c25 each, ${s0.durationS} s x ${s0.rounds.length} rounds): on/off proxy CPU per request; cost = throughput lost = 1 - off/on`
        : `paired, fixed-rate (the same open-loop rate to both, ${s0.durationS} s x ${s0.rounds.length} rounds): on/off proxy CPU per request at equal load; cost = 1 - off/on`,
    );
    for (const r of rs) {
      lines.push(verdictLine(r.direction, r.paired.on, TELEMETRY_TARGET, `  cost ${(r.cost * 100).toFixed(1)}%`));
      lines.push(verdictLine(`  no metrics`, r.paired.tracing, TELEMETRY_TARGET, `  cost ${(r.tracingOnlyCost * 100).toFixed(1)}%`));
    }
    lines.push('  raw figures, median (min..max) over the rounds; spread = (max - min) / median:');
    for (const r of rs) {
      lines.push('  ' + detailLine(r.direction, r.paired.on));
      lines.push('  ' + detailLine(`  no metrics`, r.paired.tracing));
    }
    lines.push('');
  }
  const spans = results.filter((r, i) => r.spans && results.findIndex((q) => q.direction === r.direction) === i);
  if (spans.length) lines.push('spans started/sampled/exported/dropped (telemetry on, whole run): ' + spans.map((r) => `${r.direction} ${r.spans!.started}/${r.spans!.sampled}/${r.spans!.exported}/${r.spans!.dropped}`).join(', '), '');
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { duration: { type: 'string', default: '10' }, rounds: { type: 'string', default: '6' }, mode: { type: 'string' }, rate: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const results = await runTelemetryBench({
    durationS: Number(values.duration),
    rounds: Number(values.rounds),
    json: values.json,
    modes: parseModes(values.mode),
    rate: values.rate === undefined ? undefined : Number(values.rate),
  });
  process.stdout.write(values.json ? JSON.stringify({ bench: 'telemetry', results }) + '\n' : reportTelemetry(results));
}
