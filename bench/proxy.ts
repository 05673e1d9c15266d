/**
 * Proxy benchmark (issue: data plane, part 1). In one run, pinned the same way each time
 * (load generator and upstream on core 0, the proxy under test on core 1):
 *
 *   direct   wrk -> upstream
 *   sinew    wrk -> sinew proxy -> upstream
 *   pair     wrk -> sinew (client side) -> sinew (server side) -> upstream   (sidecar to sidecar)
 *   nginx    wrk -> nginx (1 worker, keep-alive upstream pool) -> upstream  (reference, if installed)
 *   node-relay  wrk -> a Node.js TCP relay -> upstream      (the floor of any proxy written in Node)
 *   node-http   wrk -> node:http + undici, no routing -> upstream (the floor of an HTTP proxy on that stack)
 *
 * For each: max requests/s at 50 connections, latency p50/p90/p99 at a fixed 1000 req/s
 * (wrk + the fixed-rate script in ../shared/tools), proxy CPU seconds per 10 000 requests,
 * peak RSS and peak private (anonymous) memory; then ratios to direct and to nginx. Needs `wrk` (apt-get install wrk) and
 * optionally nginx (apt-get install nginx-light).
 *
 *   npm run bench -- proxy [--duration 10] [--json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import type { LbPolicy, ProxyConfig } from '../src/api/proxy-config.js';
import { allocatePort } from '../src/mesh/supervisor.js';

const repo = resolve(import.meta.dirname, '..');
const fixedRateScript = resolve(repo, '../shared/tools/wrk-fixed-rate.lua');

export interface Options {
  durationS: number;
  json: boolean;
}

interface Target {
  name: string;
  port: number;
  /** Processes whose CPU and memory count as "the proxy". */
  pids: number[];
}

interface Result {
  name: string;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  cpuSecondsPer10k?: number;
  cpuCoresAt1000?: number;
  peakRssMb?: number;
  /**
   * Peak anonymous (private) memory, MB: RSS without the mapped node binary and libraries,
   * which every Node process on a machine shares (~40 MB of the RSS of each).
   */
  peakPrivateMb?: number;
}

const children: ChildProcess[] = [];

function start(cmd: string, args: string[], cpu: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  children.push(child);
  return child;
}

async function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  let buffered = '';
  for await (const chunk of child.stdout!) {
    buffered += chunk.toString();
    const m = buffered.match(pattern);
    if (m) return m;
  }
  throw new Error(`process exited before printing ${pattern}`);
}

async function waitForHttp(port: number, path = '/'): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing answers on port ${port}`);
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks at USER_HZ=100
}

/** Peak resident set size (VmHWM), MB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

function wrk(args: string[]): string {
  const out = spawnSync('taskset', ['-c', '0', 'wrk', ...args], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  return out.stdout;
}

function proxyConfig(name: string, listenPort: number, upstreamPort: number | number[], lb: LbPolicy = 'ROUND_ROBIN', outlier = false): ProxyConfig {
  const ports = Array.isArray(upstreamPort) ? upstreamPort : [upstreamPort];
  return {
    version: 'bench',
    node: { id: `router~${name}.bench`, mode: 'router', workload: name, namespace: 'bench', labels: {} },
    listeners: [{ name: 'bench', address: { host: '127.0.0.1', port: listenPort }, direction: 'inbound', protocol: 'http', http: { routeConfigName: 'bench' } }],
    routeConfigs: [
      {
        name: 'bench',
        virtualHosts: [
          {
            name: 'all',
            domains: ['*'],
            routes: [{ name: 'bench/all', match: { path: { prefix: '/' } }, action: { kind: 'route', destinations: [{ cluster: 'upstream', weight: 1 }], ...(lb === 'RING_HASH' || lb === 'MAGLEV' ? { hashPolicy: { header: 'x-user' } } : {}) } }],
          },
        ],
      },
    ],
    clusters: [
      {
        name: 'upstream',
        kind: 'eds',
        protocol: 'http1',
        connectTimeoutMs: 1000,
        lb: { policy: lb },
        ...(outlier ? { outlierDetection: { consecutive5xxErrors: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 } } : {}),
      },
    ],
    endpoints: [{ clusterName: 'upstream', endpoints: ports.map((port) => ({ address: { host: '127.0.0.1', port }, labels: {}, health: 'HEALTHY' as const })) }],
  };
}

async function startSinew(dir: string, name: string, upstreamPort: number | number[], lb: LbPolicy = 'ROUND_ROBIN', outlier = false): Promise<Target> {
  const port = await allocatePort();
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(proxyConfig(name, port, upstreamPort, lb, outlier)));
  // The V8 flags `sinew up` gives its sidecars (src/mesh/up.ts): what users run is what is measured.
  const child = start(process.execPath, ['--max-semi-space-size=16', join(repo, 'bin/sinew.js'), 'proxy', '--config', file], '1', { SINEW_LOG_LEVEL: 'warn' });
  await waitForHttp(port);
  return { name, port, pids: [child.pid!] };
}

async function startNodeReference(name: string, script: string, upstreamPort: number): Promise<Target> {
  const port = await allocatePort();
  const child = start(process.execPath, ['--max-semi-space-size=16', '-e', script], '1', { LISTEN_PORT: String(port), UPSTREAM_PORT: String(upstreamPort), NODE_PATH: join(repo, 'node_modules') });
  await waitForHttp(port);
  return { name, port, pids: [child.pid!] };
}

async function startNginx(dir: string, upstreamPort: number): Promise<Target | undefined> {
  const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
  if (!nginx) return undefined;
  const port = await allocatePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1; daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log;
events { worker_connections 1024; }
http { access_log off;
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${port};
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }\n`,
  );
  const child = start(nginx, ['-c', conf, '-p', dir], '1');
  await waitForHttp(port);
  return { name: 'nginx', port, pids: [child.pid!] };
}

/**
 * Samples RssAnon of the given processes every 50 ms in a helper process (wrk runs
 * synchronously here, so this process cannot sample); stop() returns each one's peak, MB.
 */
function samplePrivateMemory(pids: number[]): { stop(): Promise<number[]> } {
  const script = `
const fs = require('node:fs');
const pids = ${JSON.stringify(pids)};
const peak = pids.map(() => 0);
const sample = () => pids.forEach((pid, i) => {
  try { const kb = Number(/RssAnon:\\s+(\\d+)/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'))?.[1] ?? 0); peak[i] = Math.max(peak[i], kb); } catch {}
});
const timer = setInterval(sample, 50);
process.stdin.resume();
process.stdin.on('end', () => { clearInterval(timer); sample(); process.stdout.write(JSON.stringify(peak.map((kb) => kb / 1024))); });
`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  return {
    async stop() {
      child.stdin!.end();
      await once(child, 'exit');
      return JSON.parse(out || '[]') as number[];
    },
  };
}

async function measure(target: Target, options: Options & { fixedRate?: boolean }): Promise<Result> {
  const url = `http://127.0.0.1:${target.port}/`;
  const sampler = target.pids.length ? samplePrivateMemory(target.pids) : undefined;
  wrk(['-t1', '-c50', '-d2s', url]); // warm-up: JIT and pools
  const cpuBefore = target.pids.map(cpuSeconds);
  const max = wrk(['-t1', '-c50', `-d${options.durationS}s`, url]);
  const cpuAfter = target.pids.map(cpuSeconds);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(max)?.[1] ?? 0);
  const requests = rps * options.durationS;
  const cpu = cpuAfter.reduce((a, b) => a + b, 0) - cpuBefore.reduce((a, b) => a + b, 0);

  if (options.fixedRate === false) {
    await sampler?.stop();
    return { name: target.name, rps, p50: NaN, p90: NaN, p99: NaN };
  }
  const cpu1000Before = target.pids.map(cpuSeconds);
  const fixed = wrk(['-t1', '-c50', `-d${options.durationS}s`, '-s', fixedRateScript, url, '--', '1000']);
  const cpu1000After = target.pids.map(cpuSeconds);
  const line = /FIXEDRATE (\{.*\})/.exec(fixed)?.[1];
  const f = line ? (JSON.parse(line) as { p50_ms: number; p90_ms: number; p99_ms: number }) : { p50_ms: NaN, p90_ms: NaN, p99_ms: NaN };
  const result: Result = { name: target.name, rps, p50: f.p50_ms, p90: f.p90_ms, p99: f.p99_ms };
  if (target.pids.length) {
    result.cpuSecondsPer10k = (cpu / requests) * 10_000;
    result.cpuCoresAt1000 = (cpu1000After.reduce((a, b) => a + b, 0) - cpu1000Before.reduce((a, b) => a + b, 0)) / options.durationS / target.pids.length;
    result.peakRssMb = Math.max(...target.pids.map(peakRssMb));
    result.peakPrivateMb = Math.max(...((await sampler?.stop()) ?? [NaN]));
  }
  return result;
}

export async function runProxyBench(options: Options): Promise<Result[]> {
  if (spawnSync('wrk', ['--version']).error) {
    throw new Error('wrk is not installed: apt-get install wrk (and nginx-light for the reference)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-'));
  try {
    const upstream = start(process.execPath, ['-e', UPSTREAM], '0');
    const upstreamPort = Number((await waitForLine(upstream, /listening ([\d,]+)/))[1].split(',')[0]);
    const targets: Target[] = [{ name: 'direct', port: upstreamPort, pids: [] }];
    targets.push(await startSinew(dir, 'sinew', upstreamPort));
    const server = await startSinew(dir, 'pair-server', upstreamPort);
    const client = await startSinew(dir, 'pair-client', server.port);
    targets.push({ name: 'pair', port: client.port, pids: [client.pids[0], server.pids[0]] });
    const nginx = await startNginx(dir, upstreamPort);
    if (nginx) targets.push(nginx);
    // What Node.js itself costs, for reading sinew's figures: the least any Node proxy can do
    // (bytes relayed, no HTTP at all) and the least an HTTP proxy built on node:http + undici
    // does (no routing, headers passed as they come).
    targets.push(await startNodeReference('node-relay', NODE_RELAY, upstreamPort));
    targets.push(await startNodeReference('node-http', NODE_HTTP_PROXY, upstreamPort));
    const results: Result[] = [];
    for (const t of targets) {
      if (!options.json) process.stderr.write(`measuring ${t.name}...\n`);
      results.push(await measure(t, options));
    }
    return results;
  } finally {
    await stopAll(dir);
  }
}

/** A minimal upstream: 100-byte body, keep-alive; UPSTREAM_PORTS listeners (default 1), ports printed on one line. */
const UPSTREAM = `
const body = Buffer.alloc(100, 'x');
const handler = (req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 100 }); res.end(body); };
const n = Number(process.env.UPSTREAM_PORTS || 1);
Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
  const server = require('node:http').createServer(handler).listen(0, '127.0.0.1', () => resolve(server.address().port));
}))).then((ports) => console.log('listening ' + ports.join(',')));
`;

/** Node's floor: one upstream connection per client connection, bytes copied both ways. */
const NODE_RELAY = `
const net = require('node:net');
net.createServer({ noDelay: true }, (c) => {
  const u = net.connect(Number(process.env.UPSTREAM_PORT), '127.0.0.1');
  u.setNoDelay(true);
  c.on('data', (d) => u.write(d)); u.on('data', (d) => c.write(d));
  c.on('error', () => {}); u.on('error', () => {});
  c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
}).listen(Number(process.env.LISTEN_PORT), '127.0.0.1');
`;

/** The plainest HTTP proxy on node:http and an undici Pool (what sinew's proxy is built on). */
const NODE_HTTP_PROXY = `
const http = require('node:http');
const { Pool } = require('undici');
const pool = new Pool('http://127.0.0.1:' + process.env.UPSTREAM_PORT);
http.createServer((req, res) => {
  pool.dispatch({ path: req.url, method: req.method, headers: req.headers, body: null }, {
    onRequestStart() {},
    onResponseStart(_c, status, headers) { res.writeHead(status, headers); },
    onResponseData(_c, chunk) { res.write(chunk); },
    onResponseEnd() { res.end(); },
    onResponseError() { res.destroy(); },
  });
}).listen(Number(process.env.LISTEN_PORT), '127.0.0.1');
`;

/**
 * Load-balancing cost (issue: upstream clusters): one proxy with 10 endpoints under each
 * balancer, outlier detection on, against the same proxy (same settings) with one endpoint. The cost is the
 * proxy's own CPU time per request (what balancing, per-endpoint pools and outlier tracking
 * add), `cpu(10 endpoints) / cpu(1 endpoint) - 1`; target < 10%. Requests/s are shown too, but
 * they also move with the load generator and the upstream, which share the other core, so the
 * CPU figure is the one to read. Single and balanced proxies are measured back to back,
 * `rounds` times, and the best of each counts. Hash balancers get a random `x-user` per request.
 */
export interface LbResult {
  policy: string;
  rps: number;
  cpuUsPerRequest: number;
  xSingleRps: number;
  /** Added proxy CPU per request over the single-endpoint proxy (0.05 = 5 %). */
  addedCpu: number;
}

export async function runLbBench(options: Options & { rounds?: number }): Promise<LbResult[]> {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: apt-get install wrk');
  const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-lb-'));
  // This machine's figures move by tens of percent from one few-second run to the next
  // (shared vCPUs): alternate the two proxies and keep each one's best run.
  const rounds = options.rounds ?? 4;
  try {
    const upstream = start(process.execPath, ['-e', UPSTREAM], '0', { UPSTREAM_PORTS: '10' });
    const ports = (await waitForLine(upstream, /listening ([\d,]+)/))[1].split(',').map(Number);
    const userScript = join(dir, 'random-user.lua');
    writeFileSync(userScript, "request = function() return wrk.format(nil, nil, { ['x-user'] = tostring(math.random(1, 1000000)) }) end\n");
    // The same cluster settings (outlier detection on) over one endpoint: the difference is
    // what ten endpoints cost, not what the settings cost.
    const single = await startSinew(dir, 'single', ports[0], 'ROUND_ROBIN', true);
    const best = new Map<string, { rps: number; cpu: number }>();
    const keep = (name: string, m: { rps: number; cpu: number }) => {
      const b = best.get(name);
      best.set(name, { rps: Math.max(b?.rps ?? 0, m.rps), cpu: Math.min(b?.cpu ?? Infinity, m.cpu) });
    };
    const policies: LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];
    const proxies = new Map<LbPolicy, Target>();
    for (const policy of policies) proxies.set(policy, await startSinew(dir, policy.toLowerCase(), ports, policy, true));
    // Every proxy gets one run per round, so each best is taken over the same number of runs
    // (a best of many runs would flatter the proxy measured most often).
    const order = ['single', ...policies] as const;
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < order.length; i++) {
        const name = order[(i + round) % order.length]; // rotate: no proxy always runs first
        if (!options.json) process.stderr.write(`round ${round + 1}/${rounds}: ${name === 'single' ? 'one endpoint' : `${name} over 10 endpoints`}...\n`);
        const script = name === 'RING_HASH' || name === 'MAGLEV' ? userScript : undefined;
        keep(name, saturate(name === 'single' ? single : proxies.get(name)!, options.durationS, script));
      }
    }
    const base = best.get('single')!;
    const out: LbResult[] = [{ policy: 'single endpoint', rps: base.rps, cpuUsPerRequest: base.cpu, xSingleRps: 1, addedCpu: 0 }];
    for (const policy of policies) {
      const m = best.get(policy)!;
      out.push({ policy, rps: m.rps, cpuUsPerRequest: m.cpu, xSingleRps: m.rps / base.rps, addedCpu: m.cpu / base.cpu - 1 });
    }
    return out;
  } finally {
    await stopAll(dir);
  }
}

/** Max requests/s at 50 connections and the proxy's CPU microseconds per request (after a warm-up). */
function saturate(target: Target, durationS: number, script?: string): { rps: number; cpu: number } {
  const url = `http://127.0.0.1:${target.port}/`;
  const extra = script ? ['-s', script] : [];
  wrk(['-t1', '-c50', '-d1s', ...extra, url]);
  const before = target.pids.map(cpuSeconds).reduce((a, b) => a + b, 0);
  const out = wrk(['-t1', '-c50', `-d${durationS}s`, ...extra, url]);
  const cpu = target.pids.map(cpuSeconds).reduce((a, b) => a + b, 0) - before;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  return { rps, cpu: rps > 0 ? (cpu / (rps * durationS)) * 1e6 : NaN };
}

export function reportLb(results: LbResult[]): string {
  const lines = ['balancer          req/s  x single  proxy CPU us/req  added CPU'];
  for (const r of results) {
    lines.push(`${r.policy.padEnd(16)} ${r.rps.toFixed(0).padStart(6)}  ${r.xSingleRps.toFixed(3).padStart(8)}  ${r.cpuUsPerRequest.toFixed(1).padStart(16)}  ${(r.addedCpu * 100).toFixed(1).padStart(8)}%`);
  }
  return lines.join('\n') + '\n';
}

async function stopAll(dir: string): Promise<void> {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
  children.length = 0;
  rmSync(dir, { recursive: true, force: true });
}

export function report(results: Result[]): string {
  const direct = results.find((r) => r.name === 'direct');
  const nginx = results.find((r) => r.name === 'nginx');
  const fmt = (n: number | undefined, d = 2) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
  const lines = ['target     req/s     x direct  x nginx  p50 ms  p90 ms  p99 ms  +p50 ms  +p99 ms  cpu-s/10k  cores@1k  peak RSS MB  private MB'];
  for (const r of results) {
    lines.push(
      [
        r.name.padEnd(10),
        fmt(r.rps, 0).padStart(7),
        fmt(direct ? r.rps / direct.rps : undefined).padStart(10),
        fmt(nginx ? r.rps / nginx.rps : undefined).padStart(8),
        fmt(r.p50, 3).padStart(7),
        fmt(r.p90, 3).padStart(7),
        fmt(r.p99, 3).padStart(7),
        fmt(direct ? r.p50 - direct.p50 : undefined, 3).padStart(8),
        fmt(direct ? r.p99 - direct.p99 : undefined, 3).padStart(8),
        fmt(r.cpuSecondsPer10k, 3).padStart(10),
        fmt(r.cpuCoresAt1000, 3).padStart(9),
        fmt(r.peakRssMb, 1).padStart(12),
        fmt(r.peakPrivateMb, 1).padStart(11),
      ].join(' '),
    );
  }
  return lines.join('\n') + '\n';
}
