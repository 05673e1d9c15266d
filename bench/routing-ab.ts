/**
 * Routing A/B: this checkout's proxy against another build's (a checkout of main, say), paired
 * (bench/paired.ts: both proxies at once, pinned to the same core, each under its own wrk),
 * on configs that exercise route selection, where a change to route matching or request
 * hashing shows:
 *
 *   plain      the proxy benchmark's config: one virtual host `*`, one `prefix: /` route
 *   routing    40 virtual hosts, the one asked for by exact domain holding 7 routes (header
 *              exact and withoutHeaders, a regex uri with ignoreUriCase, a case-insensitive
 *              prefix, a query parameter, a method); every request falls through to the last
 *   ring-hash  one route hashing on a header (a random x-user per request), RING_HASH cluster
 *
 * The other build must be built (`npm ci` or `node scripts/build.mjs` there); this one is
 * built first. Per scenario: B/A CPU per request and requests/s, median (min..max) of the
 * rounds, against a 5 % target.
 *
 *   npx tsx bench/routing-ab.ts --base ../main [--duration 5] [--rounds 6] [--mode saturated|fixed-rate|both]
 *                               [--rate N (fixed-rate req/s each; default 20 % of what a warm-up pair served)] [--only routing,...]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ProxyConfig, Route, RouteAction, VirtualHost } from '../src/api/proxy-config.js';
import { allocatePort } from '../src/mesh/supervisor.js';
import { PROXY_NODE_FLAGS } from '../src/mesh/up.js';
import { LOAD_CPU, PROXY_CPU, PairedLoad, detailLine, parseModes, summarize, verdictLine, type LoadTarget } from './paired.js';

const repo = resolve(import.meta.dirname, '..');
const TARGET = { maxCpuRatio: 1.05, text: '<=5%' };

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '6' },
    mode: { type: 'string', default: 'both' },
    rate: { type: 'string' },
    only: { type: 'string' },
  },
});
if (!values.base) throw new Error('--base <checkout> is required: the build to compare against (A)');
const base = resolve(values.base);
if (!existsSync(join(base, 'dist/.build-stamp'))) throw new Error(`${base} has no current build: run \`node scripts/build.mjs\` there`);
if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: apt-get install wrk');

interface Scenario {
  name: string;
  config(listenPort: number, upstreamPort: number): ProxyConfig;
  /** wrk's request hook (Lua), or none for a plain GET /. */
  request?: string;
}

function config(name: string, listenPort: number, upstreamPort: number, virtualHosts: VirtualHost[], lb: 'ROUND_ROBIN' | 'RING_HASH' = 'ROUND_ROBIN'): ProxyConfig {
  return {
    version: 'bench',
    node: { id: `router~${name}.bench`, mode: 'router', workload: name, namespace: 'bench', labels: {} },
    listeners: [{ name: 'bench', address: { host: '127.0.0.1', port: listenPort }, direction: 'inbound', protocol: 'http', http: { routeConfigName: 'bench' } }],
    routeConfigs: [{ name: 'bench', virtualHosts }],
    clusters: [{ name: 'upstream', kind: 'eds', protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: lb } }],
    endpoints: [{ clusterName: 'upstream', endpoints: [{ address: { host: '127.0.0.1', port: upstreamPort }, labels: {}, health: 'HEALTHY' }] }],
  };
}

const toUpstream: RouteAction = { kind: 'route', destinations: [{ cluster: 'upstream', weight: 1 }] };

/** The routes of a Bookinfo-like VirtualService; the request matches only the last. */
const manyRoutes: Route[] = [
  { name: 'jason', match: { headers: [{ name: 'end-user', match: { exact: 'jason' } }] }, action: toUpstream },
  { name: 'not-tester', match: { path: { prefix: '/admin' }, headers: [{ name: 'x-tester', match: { exact: 'yes' }, invert: true, treatMissingAsEmpty: true }] }, action: toUpstream },
  { name: 'api-regex', match: { path: { regex: '/api/v[0-9]+/users/[0-9]+' }, ignorePathCase: true }, action: toUpstream },
  { name: 'static', match: { path: { prefix: '/STATIC/' }, ignorePathCase: true }, action: toUpstream },
  { name: 'debug', match: { queryParams: [{ name: 'debug', match: { exact: '1' } }] }, action: toUpstream },
  { name: 'delete', match: { method: { exact: 'DELETE' } }, action: toUpstream },
  { name: 'rest', match: { path: { prefix: '/' } }, action: toUpstream },
];

const scenarios: Scenario[] = [
  {
    name: 'plain',
    config: (port, up) => config('plain', port, up, [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { path: { prefix: '/' } }, action: toUpstream }] }]),
  },
  {
    name: 'routing',
    config: (port, up) =>
      config('routing', port, up, [
        ...Array.from({ length: 40 }, (_, i): VirtualHost => ({ name: `svc-${i}`, domains: [`svc-${i}`, `svc-${i}:9080`], routes: i === 17 ? manyRoutes : [{ name: `svc-${i}`, match: {}, action: toUpstream }] })),
        { name: 'other', domains: ['*.example.com'], routes: [{ name: 'other', match: {}, action: toUpstream }] },
      ]),
    request: `request = function() return wrk.format(nil, "/api/items/42?page=2", { ["Host"] = "svc-17:9080", ["end-user"] = "bob" }) end`,
  },
  {
    name: 'ring-hash',
    config: (port, up) =>
      config('ring-hash', port, up, [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { path: { prefix: '/' } }, action: { ...toUpstream, hashPolicy: { header: 'x-user' } } }] }], 'RING_HASH'),
    request: "request = function() return wrk.format(nil, nil, { ['x-user'] = tostring(math.random(1, 1000000)) }) end",
  },
];

const UPSTREAM = `
require('node:http').createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }); res.end('ok'); });
}).listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
`;

const children: ChildProcess[] = [];

function start(args: string[], cpu: string): ChildProcess {
  const child = spawn('taskset', ['-c', cpu, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SINEW_LOG_LEVEL: 'warn' } });
  children.push(child);
  return child;
}

async function firstLine(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  let buffered = '';
  for await (const chunk of child.stdout!) {
    buffered += chunk.toString();
    const m = buffered.match(pattern);
    if (m) return m;
  }
  throw new Error(`process exited before printing ${pattern}`);
}

async function waitForHttp(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/`, { headers: { host: 'svc-0' } })).arrayBuffer();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A proxy of the build in `checkout`, on core 1, serving `cfg`. */
async function startProxy(dir: string, checkout: string, name: string, cfg: (port: number) => ProxyConfig): Promise<{ port: number; pid: number; child: ChildProcess }> {
  const port = await allocatePort();
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(cfg(port)));
  const child = start([...PROXY_NODE_FLAGS, join(checkout, 'bin/sinew.js'), 'proxy', '--config', file], PROXY_CPU);
  await waitForHttp(port);
  return { port, pid: child.pid!, child };
}

process.stderr.write('building dist/ ...\n');
if (spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) throw new Error('the build failed');

const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-routing-ab-'));
const load = new PairedLoad();
const modes = parseModes(values.mode);
const lines: string[] = [];
try {
  const upstream = start(['-e', UPSTREAM], LOAD_CPU);
  const upstreamPort = Number((await firstLine(upstream, /listening (\d+)/))[1]);
  for (const s of scenarios.filter((x) => !values.only || values.only.split(',').includes(x.name))) {
    const a = await startProxy(dir, base, `${s.name}-base`, (port) => s.config(port, upstreamPort));
    const b = await startProxy(dir, repo, `${s.name}-this`, (port) => s.config(port, upstreamPort));
    const ta: LoadTarget = { name: 'base', url: `http://127.0.0.1:${a.port}/`, pids: [a.pid], request: s.request };
    const tb: LoadTarget = { name: 'this', url: `http://127.0.0.1:${b.port}/`, pids: [b.pid], request: s.request };
    const rate = values.rate === undefined ? undefined : Number(values.rate);
    const pair = await load.measurePair(ta, tb, { label: s.name, rounds: Number(values.rounds), modes, durationS: Number(values.duration), rate, log: (l) => process.stderr.write(l + '\n') });
    for (const mode of modes) {
      const summary = summarize('base', 'this', mode, Number(values.duration), pair.runs.get(mode)!, pair.rate);
      lines.push(verdictLine(`${s.name} ${mode}`, summary, TARGET), '  ' + detailLine(`${s.name} ${mode}`, summary));
    }
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
  }
  process.stdout.write(`\n== routing A/B: base ${base} (A) vs this checkout (B), paired on core ${PROXY_CPU}\n${lines.join('\n')}\n`);
} finally {
  load.close();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
