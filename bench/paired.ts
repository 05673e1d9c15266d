/**
 * Paired A/B measurement for the proxy benchmarks (lb, telemetry): the two proxies run AT THE
 * SAME TIME, both pinned to the same core, each driven by its own wrk for the same seconds,
 * started together; what each run yields is the ratio B/A, never a raw figure.
 *
 * Why: on this kind of machine (2 shared vCPUs) the very same proxy measures anywhere from
 * 77 to 139 us of CPU per request across consecutive few-second runs (CPU frequency, steal
 * time, other work), and there is no hardware instruction counter to fall back on. Measured
 * one after the other, A and B see different machines and their ratio swings by tens of
 * percent run to run, far more than the 10-15 % targets it should settle. Measured side by
 * side on one core, whatever slows that core slows both in the same seconds, and their ratio
 * cancels it (A against an identical A: raw CPU per request moved 40 % across rounds, the
 * ratio 4 %, median +0.0 %).
 *
 * Layout: the proxies under test on core 1 (PROXY_CPU); the two wrk processes and the
 * upstreams on core 0 (LOAD_CPU). Per run and per side: the requests wrk completed, requests/s,
 * and the proxy processes' CPU seconds (utime + stime from /proc/<pid>/stat, read just before
 * that side's wrk starts and just after it exits) -> CPU microseconds per request. Rounds
 * alternate which wrk starts first; the summary is the median of the per-round ratios with
 * their min..max, beside the raw per-side figures (whose spread shows the noise the ratio
 * cancels). Each pair is warmed up together first (warmUp) and its rounds run back to back,
 * so that both proxies are equally warm.
 *
 * What the ratio does not cancel: work a proxy does off its main thread in bursts (V8's
 * concurrent GC marking and optimizing compiler), which lands in one side's round and not the
 * other's; that is most of the spread left. Two more figures help read it: the ratio over all
 * rounds' totals (pooled: includes such bursts at their average weight, which a median can
 * skip) and the ratio of main-thread CPU alone (the steadiest; the scheduler gives both main
 * threads the same share of the core).
 *
 * Two modes:
 *   saturated   both wrk closed-loop at 25 connections: the core is split between the two
 *               proxies by the scheduler, so B/A requests/s is directly "throughput kept",
 *               and B/A CPU per request is the per-request cost.
 *   fixed-rate  both wrk open-loop at the same rate (bench/wrk-fixed-rate.lua): equal
 *               load, so the CPU per request ratio compares the proxies at equal batching
 *               (requests/s is ~1 by construction; it shows that both kept up). At that lower
 *               load each request costs more (less batching), so the same added microseconds
 *               are a smaller percentage than in saturated mode.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The core the proxies under test share. */
export const PROXY_CPU = '1';
/** The core for load generators, upstreams and collectors. */
export const LOAD_CPU = '0';

/**
 * The upstream the paired benches put behind the proxies (`node -e`): a 100-byte 200 to every
 * request, so that what is measured is the proxies. Prints `listening <port>` (startPinned).
 */
export const UPSTREAM_SCRIPT = `
const body = Buffer.alloc(100, 'x');
require('node:http').createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 100 }); res.end(body); })
  .listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
`;

/**
 * Starts `node <args>` pinned to `cpu` (taskset), added to `children` for the caller to stop;
 * `port` resolves with the port it prints as `listening <port>` (the benches' proxy runners and
 * upstreams print that once they listen).
 */
export function startPinned(children: ChildProcess[], cpu: string, args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; port: Promise<number> } {
  const child = spawn('taskset', ['-c', cpu, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env });
  children.push(child);
  const port = new Promise<number>((resolvePort, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      const m = /listening (\d+)/.exec(out);
      if (m) resolvePort(Number(m[1]));
    });
    child.on('exit', () => reject(new Error(`exited before listening: ${out}`)));
  });
  return { child, port };
}

export const fixedRateScript = resolve(import.meta.dirname, 'wrk-fixed-rate.lua');

export type PairedMode = 'saturated' | 'fixed-rate';
export const PAIRED_MODES: readonly PairedMode[] = ['saturated', 'fixed-rate'];

/** `saturated`, `fixed-rate` or `both` (a CLI value) -> the modes to run. */
export function parseModes(value: string | undefined): PairedMode[] {
  if (value === undefined || value === 'saturated') return ['saturated'];
  if (value === 'fixed-rate' || value === 'fixed') return ['fixed-rate'];
  if (value === 'both') return ['saturated', 'fixed-rate'];
  throw new Error(`unknown --mode "${value}": saturated, fixed-rate or both`);
}

/** One side of a pair: where its wrk sends requests, and which processes are the proxy. */
export interface LoadTarget {
  name: string;
  url: string;
  pids: number[];
  /** Lua source defining wrk's `request()` hook (e.g. a random header per request). */
  request?: string;
}

/** One side's figures in one run. */
export interface SideRun {
  /** Requests wrk completed. */
  requests: number;
  rps: number;
  /** Proxy CPU seconds (all its processes, all their threads) while its wrk ran. */
  cpuS: number;
  cpuUsPerRequest: number;
  /** The same for the proxies' main threads only (no GC or compiler helper threads). */
  mainCpuS: number;
  /** Socket errors plus non-2xx/3xx responses. */
  errors: number;
  /** Fixed-rate only: sends more than 1 ms behind schedule. */
  late?: number;
}

export interface PairedRound {
  /** Which side's wrk was started first. */
  first: 'a' | 'b';
  a: SideRun;
  b: SideRun;
  /** b.rps / a.rps */
  throughputRatio: number;
  /** b.cpuUsPerRequest / a.cpuUsPerRequest */
  cpuRatio: number;
  /** The same ratio counting the main threads' CPU only. */
  mainCpuRatio: number;
  /** Fixed-rate: a side served less than 97 % of the rate (the core could not keep up; not equal load). */
  behind?: boolean;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface PairedSummary {
  a: string;
  b: string;
  mode: PairedMode;
  durationS: number;
  /** Fixed-rate: requests/s sent to each side. */
  rate?: number;
  /** Fixed-rate: rounds left out of the figures because a side fell behind the rate. */
  roundsBehind?: number;
  /** Median (min..max) over rounds of B/A CPU per request: 1.05 = B costs 5 % more. */
  cpuRatio: Spread;
  /** Median (min..max) over rounds of B/A requests/s. */
  throughputRatio: Spread;
  /**
   * B/A CPU per request over all rounds' totals: includes lumpy costs (a major GC in one
   * round) that the median may leave out.
   */
  pooledCpuRatio: number;
  /** Median (min..max) of B/A main-thread CPU per request: without the GC and compiler helper threads, whose bursts make most of the spread that remains. */
  mainCpuRatio: Spread;
  /** Raw per-side figures over the same rounds, for comparison with the ratios' spread. */
  aCpuUs: Spread;
  bCpuUs: Spread;
  aRps: Spread;
  bRps: Spread;
  rounds: PairedRound[];
}

/** utime + stime of a process (all its threads), or of one of its threads, in seconds. */
export function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks at USER_HZ=100
}

const totalCpu = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
/** The main threads' (thread id = process id) CPU seconds. */
const mainCpu = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid, pid), 0);

export function median(xs: number[]): number {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((p, q) => p - q);
  if (!s.length) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function spread(xs: number[]): Spread {
  const s = xs.filter((x) => !Number.isNaN(x));
  return { median: median(s), min: s.length ? Math.min(...s) : NaN, max: s.length ? Math.max(...s) : NaN };
}

/** (max - min) / median: how far a figure moved across rounds, relative to its size. */
export function relativeSpread(s: Spread): number {
  return (s.max - s.min) / s.median;
}

/** Runs wrk on the load core, asynchronously; resolves with its stdout. */
function wrk(args: string[], onExit: () => void): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('taskset', ['-c', LOAD_CPU, 'wrk', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', onExit); // read the proxy's CPU as soon as its load stops
    child.on('close', (code) => (code === 0 ? resolvePromise(out) : reject(new Error(`wrk ${args.join(' ')} failed (${code}): ${err}`))));
  });
}

function parseWrk(out: string): { requests: number; rps: number; errors: number; late?: number } {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = non2xx + (socket ? socket.slice(1).reduce((s, n) => s + Number(n), 0) : 0);
  const fixed = /FIXEDRATE (\{.*\})/.exec(out)?.[1];
  const late = fixed ? (JSON.parse(fixed) as { late_gt1ms: number }).late_gt1ms : undefined;
  return { requests, rps, errors, late };
}

export interface PairedRunOptions {
  mode: PairedMode;
  durationS: number;
  /** Fixed-rate: requests/s for each side. */
  rate?: number;
  /** Saturated: connections per wrk (default 25: 50 in all, as the sequential benches used). */
  connections?: number;
  first?: 'a' | 'b';
}

/**
 * Where paired runs keep their wrk scripts (a request hook, alone or after the fixed-rate
 * schedule). close() removes them.
 */
export class PairedLoad {
  private readonly dir = mkdtempSync(join(tmpdir(), 'sinew-bench-paired-'));
  private readonly scripts = new Map<string, string>();

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private script(mode: PairedMode, request: string | undefined): string | undefined {
    if (mode === 'saturated' && !request) return undefined;
    const key = `${mode}\n${request ?? ''}`;
    let file = this.scripts.get(key);
    if (!file) {
      file = join(this.dir, `load-${this.scripts.size}.lua`);
      // wrk takes one script: the fixed-rate schedule (its delay() hook) with the request hook after it.
      writeFileSync(file, (mode === 'fixed-rate' ? readFileSync(fixedRateScript, 'utf8') + '\n' : '') + (request ?? '') + '\n');
      this.scripts.set(key, file);
    }
    return file;
  }

  private async side(target: LoadTarget, options: PairedRunOptions): Promise<SideRun> {
    const script = this.script(options.mode, target.request);
    const args =
      options.mode === 'fixed-rate'
        ? ['-t1', '-c50', `-d${options.durationS}s`, '-s', script!, target.url, '--', String(options.rate)]
        : ['-t1', `-c${options.connections ?? 25}`, `-d${options.durationS}s`, ...(script ? ['-s', script] : []), target.url];
    const before = totalCpu(target.pids);
    const mainBefore = mainCpu(target.pids);
    let after = NaN;
    let mainAfter = NaN;
    const out = await wrk(args, () => {
      after = totalCpu(target.pids);
      mainAfter = mainCpu(target.pids);
    });
    const w = parseWrk(out);
    const cpuS = after - before;
    return {
      requests: w.requests,
      rps: w.rps,
      cpuS,
      cpuUsPerRequest: w.requests ? (cpuS / w.requests) * 1e6 : NaN,
      mainCpuS: mainAfter - mainBefore,
      errors: w.errors,
      ...(w.late !== undefined ? { late: w.late } : {}),
    };
  }

  /** One run: both loads started together (in the order `first`), for the same duration. */
  async run(a: LoadTarget, b: LoadTarget, options: PairedRunOptions): Promise<PairedRound> {
    const first = options.first ?? 'a';
    let ra: SideRun;
    let rb: SideRun;
    if (first === 'a') [ra, rb] = await Promise.all([this.side(a, options), this.side(b, options)]);
    else [rb, ra] = await Promise.all([this.side(b, options), this.side(a, options)]);
    const behind = options.mode === 'fixed-rate' && Math.min(ra.rps, rb.rps) < 0.97 * options.rate!;
    return {
      first,
      a: ra,
      b: rb,
      ...(behind ? { behind } : {}),
      throughputRatio: rb.rps / ra.rps,
      cpuRatio: rb.cpuUsPerRequest / ra.cpuUsPerRequest,
      mainCpuRatio: rb.mainCpuS / rb.requests / (ra.mainCpuS / ra.requests),
    };
  }

  /**
   * A whole comparison: warms the pair up together, then runs `rounds` rounds of every mode
   * back to back, alternating which side's wrk starts first, and logs each round. The rate
   * is `options.rate`, else the one warmUp chose.
   */
  async measurePair(
    a: LoadTarget,
    b: LoadTarget,
    options: { label: string; rounds: number; modes: readonly PairedMode[]; durationS: number; rate?: number; log: (line: string) => void },
  ): Promise<{ rate: number; runs: Map<PairedMode, PairedRound[]> }> {
    options.log(`warming up: ${options.label}...`);
    const warmRate = await this.warmUp(a, b);
    const rate = options.rate ?? warmRate;
    const runs = new Map<PairedMode, PairedRound[]>(options.modes.map((m) => [m, []]));
    for (let round = 0; round < options.rounds; round++) {
      const first = round % 2 ? 'b' : 'a';
      for (const mode of options.modes) {
        const r = await this.run(a, b, { mode, durationS: options.durationS, rate, first });
        runs.get(mode)!.push(r);
        options.log(
          `${options.label} round ${round + 1}/${options.rounds} ${mode.padEnd(10)} ${a.name} ${r.a.cpuUsPerRequest.toFixed(1)} us/req ${r.a.rps.toFixed(0)} req/s, ` +
            `${b.name} ${r.b.cpuUsPerRequest.toFixed(1)} us/req ${r.b.rps.toFixed(0)} req/s: ${pct(r.cpuRatio - 1)} CPU/request, throughput x${r.throughputRatio.toFixed(3)}` +
            (r.a.errors + r.b.errors ? ` ERRORS ${r.a.errors}/${r.b.errors}` : ''),
        );
      }
    }
    return { rate, runs };
  }

  /**
   * Warms both proxies up together, saturated, in runs of `seconds` alternating which starts
   * first, for `totalS` in all. A proxy fresh from start (or from idle) costs far more per
   * request for its first ten seconds or so under load (V8 tiering up the hot paths, its heap
   * growing to size), and a proxy with more code on its path (telemetry on) takes longer:
   * with a 4-second warm-up the first round measured up to 2x the later ones. Returns the
   * fixed rate to use for this pair: 20 % each of what the two served together in the last
   * run, so that core 1 has headroom for the extra CPU per request at lower batching and for
   * other work on the machine (at 30 % each, rounds fell behind when test suites ran).
   */
  async warmUp(a: LoadTarget, b: LoadTarget, totalS = 12, seconds = 3): Promise<number> {
    let last: PairedRound | undefined;
    for (let i = 0; i * seconds < totalS; i++) last = await this.run(a, b, { mode: 'saturated', durationS: seconds, first: i % 2 ? 'b' : 'a' });
    return Math.max(100, Math.floor((0.2 * (last!.a.rps + last!.b.rps)) / 100) * 100);
  }
}

const sum = <T>(xs: T[], f: (x: T) => number) => xs.reduce((n, x) => n + f(x), 0);

/** The summary of a pair's rounds. */
export function summarize(a: string, b: string, mode: PairedMode, durationS: number, all: PairedRound[], rate?: number): PairedSummary {
  // Fixed-rate rounds in which a side fell behind were not at equal load: leave them out
  // (all of them count if none kept up).
  const kept = all.filter((r) => !r.behind);
  const rounds = kept.length ? kept : all;
  return {
    a,
    b,
    mode,
    durationS,
    ...(mode === 'fixed-rate' ? { rate, roundsBehind: all.length - kept.length } : {}),
    cpuRatio: spread(rounds.map((r) => r.cpuRatio)),
    throughputRatio: spread(rounds.map((r) => r.throughputRatio)),
    pooledCpuRatio: sum(rounds, (r) => r.b.cpuS) / sum(rounds, (r) => r.b.requests) / (sum(rounds, (r) => r.a.cpuS) / sum(rounds, (r) => r.a.requests)),
    mainCpuRatio: spread(rounds.map((r) => r.mainCpuRatio)),
    aCpuUs: spread(rounds.map((r) => r.a.cpuUsPerRequest)),
    bCpuUs: spread(rounds.map((r) => r.b.cpuUsPerRequest)),
    aRps: spread(rounds.map((r) => r.a.rps)),
    bRps: spread(rounds.map((r) => r.b.rps)),
    rounds: all,
  };
}

/** Signed percentage: 0.031 -> "+3.1%". */
export function pct(x: number, digits = 1): string {
  if (Number.isNaN(x)) return '-';
  const s = (x * 100).toFixed(digits);
  return `${x >= 0 && !s.startsWith('-') ? '+' : ''}${s}%`;
}

/**
 * The verdict line of one pair, e.g.
 * `ROUND_ROBIN  +3.1% CPU/request (median of 8; -2.0..+6.5)  throughput x0.97 (x0.94..x1.01)  target <10%: met`.
 * `maxCpuRatio` is the largest B/A CPU per request that meets the target; `extra` goes before the verdict.
 */
export function verdictLine(label: string, s: PairedSummary, target: { maxCpuRatio: number; text: string }, extra = ''): string {
  const c = s.cpuRatio;
  const t = s.throughputRatio;
  const met = c.median <= target.maxCpuRatio;
  const straddles = c.min <= target.maxCpuRatio && c.max > target.maxCpuRatio;
  const n = s.rounds.length - (s.roundsBehind && s.roundsBehind < s.rounds.length ? s.roundsBehind : 0);
  return (
    `${label.padEnd(14)} ${pct(c.median - 1).padStart(7)} CPU/request (median of ${n}; ${pct(c.min - 1)}..${pct(c.max - 1)})` +
    `  throughput x${t.median.toFixed(3)} (x${t.min.toFixed(2)}..x${t.max.toFixed(2)})${extra}` +
    `  target ${target.text}: ${met ? 'met' : 'NOT met'}${straddles ? ' (rounds on both sides)' : ''}`
  );
}

/**
 * The raw figures of one pair: each side's CPU per request and requests/s, median (min..max);
 * how far the raw CPU figures moved across rounds against how far the ratio moved; the ratio
 * over all rounds' totals; the ratio for the main threads alone.
 */
export function detailLine(label: string, s: PairedSummary): string {
  const f = (x: Spread, d: number) => `${x.median.toFixed(d)} (${x.min.toFixed(d)}..${x.max.toFixed(d)})`;
  const errorsA = s.rounds.reduce((n, r) => n + r.a.errors, 0);
  const errorsB = s.rounds.reduce((n, r) => n + r.b.errors, 0);
  const behind = s.roundsBehind ? `; ${s.roundsBehind} of ${s.rounds.length} rounds fell behind the rate${s.roundsBehind < s.rounds.length ? ' (left out)' : ' (ALL: lower --rate)'}` : '';
  const late = s.rounds.reduce((n, r) => n + (r.a.late ?? 0) + (r.b.late ?? 0), 0);
  const sent = s.rounds.reduce((n, r) => n + r.a.requests + r.b.requests, 0);
  const m = s.mainCpuRatio;
  return (
    `${label.padEnd(14)} us/req ${s.a} ${f(s.aCpuUs, 1)}, ${s.b} ${f(s.bCpuUs, 1)};` +
    ` req/s ${f(s.aRps, 0)}, ${f(s.bRps, 0)};` +
    ` spread raw ${(relativeSpread(s.aCpuUs) * 100).toFixed(0)}%/${(relativeSpread(s.bCpuUs) * 100).toFixed(0)}%, ratio ${(relativeSpread(s.cpuRatio) * 100).toFixed(0)}%;` +
    ` pooled ${pct(s.pooledCpuRatio - 1)}; main thread ${pct(m.median - 1)} (${pct(m.min - 1)}..${pct(m.max - 1)})` +
    (s.mode === 'fixed-rate' ? `; ${s.rate} req/s each, ${((late / Math.max(1, sent)) * 100).toFixed(1)}% sent >1 ms late${behind}` : '') +
    (errorsA + errorsB ? `; ERRORS (socket errors and non-2xx responses: the figures are not comparable): ${s.a} ${errorsA}, ${s.b} ${errorsB}` : '')
  );
}
