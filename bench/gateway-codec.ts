/**
 * What a gateway's plain HTTP server pays for taking HTTP/2 with prior knowledge beside
 * HTTP/1.1 (Envoy's codec AUTO, which Istio's gateways use, and which the egress gateway's
 * `http2` Service port needs): the listener reads a connection's first bytes before choosing
 * its codec. Paired (bench/paired.ts): the same gateway listener with `http.http2` off (A, the
 * HTTP/1.1-only listener gateways had) and on (B), both at once on one core, each under its own
 * wrk, through this checkout's build.
 *
 *   keep-alive      wrk's 25 connections, kept open: the first bytes are read once per connection
 *   new-connection  `Connection: close` on every request: read once per request, the worst case
 *
 *   npx tsx bench/gateway-codec.ts [--duration 5] [--rounds 6] [--mode saturated|fixed-rate|both] [--rate N]
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ProxyConfig } from '../src/api/proxy-config.js';
import { allocatePort } from '../src/mesh/supervisor.js';
import { PROXY_NODE_FLAGS } from '../src/mesh/up.js';
import { LOAD_CPU, PROXY_CPU, PairedLoad, UPSTREAM_SCRIPT, detailLine, parseModes, startPinned, summarize, verdictLine, type LoadTarget } from './paired.js';

const repo = resolve(import.meta.dirname, '..');
const TARGET = { maxCpuRatio: 1.05, text: '<=5%' };

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '6' },
    mode: { type: 'string', default: 'saturated' },
    rate: { type: 'string' },
  },
});
if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: apt-get install wrk');

/** A gateway's plain HTTP server on port 80 routing everything to the upstream, as the compiler builds it. */
function gateway(name: string, listenPort: number, upstreamPort: number, http2: boolean): ProxyConfig {
  return {
    version: 'bench',
    node: { id: `router~${name}.bench`, mode: 'router', workload: name, namespace: 'bench', labels: {} },
    listeners: [{ name: 'gateway', address: { host: '127.0.0.1', port: listenPort }, direction: 'gateway', protocol: 'http', http: { routeConfigName: 'http.80', ...(http2 ? { http2: true } : {}) } }],
    routeConfigs: [{ name: 'http.80', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { path: { prefix: '/' } }, action: { kind: 'route', destinations: [{ cluster: 'upstream', weight: 1 }] } }] }] }],
    clusters: [{ name: 'upstream', kind: 'eds', protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: 'ROUND_ROBIN' } }],
    endpoints: [{ clusterName: 'upstream', endpoints: [{ address: { host: '127.0.0.1', port: upstreamPort }, labels: {}, health: 'HEALTHY' }] }],
  };
}

const scenarios: { name: string; request?: string }[] = [
  { name: 'keep-alive' },
  { name: 'new-connection', request: `request = function() return wrk.format(nil, nil, { ["Connection"] = "close" }) end` },
];

const children: ChildProcess[] = [];

async function waitForHttp(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function startGateway(dir: string, name: string, upstreamPort: number, http2: boolean): Promise<{ port: number; pid: number; child: ChildProcess }> {
  const port = await allocatePort();
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(gateway(name, port, upstreamPort, http2)));
  const { child, port: printed } = startPinned(children, PROXY_CPU, [...PROXY_NODE_FLAGS, join(repo, 'bin/sinew.js'), 'proxy', '--config', file], { ...process.env, SINEW_LOG_LEVEL: 'warn' });
  // A proxy prints no `listening <port>`: it is waited for over HTTP instead, and its exit at the end is no error.
  printed.catch(() => {});
  await waitForHttp(port);
  return { port, pid: child.pid!, child };
}

process.stderr.write('building dist/ ...\n');
if (spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) throw new Error('the build failed');

const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-gateway-codec-'));
const load = new PairedLoad();
const modes = parseModes(values.mode);
const lines: string[] = [];
try {
  const upstreamPort = await startPinned(children, LOAD_CPU, ['-e', UPSTREAM_SCRIPT]).port;
  const a = await startGateway(dir, 'http1-only', upstreamPort, false);
  const b = await startGateway(dir, 'codec-auto', upstreamPort, true);
  for (const s of scenarios) {
    const ta: LoadTarget = { name: 'http1-only', url: `http://127.0.0.1:${a.port}/`, pids: [a.pid], request: s.request };
    const tb: LoadTarget = { name: 'codec-auto', url: `http://127.0.0.1:${b.port}/`, pids: [b.pid], request: s.request };
    const rate = values.rate === undefined ? undefined : Number(values.rate);
    const pair = await load.measurePair(ta, tb, { label: s.name, rounds: Number(values.rounds), modes, durationS: Number(values.duration), rate, log: (l) => process.stderr.write(l + '\n') });
    for (const mode of modes) {
      const summary = summarize('http1-only', 'codec-auto', mode, Number(values.duration), pair.runs.get(mode)!, pair.rate);
      lines.push(verdictLine(`${s.name} ${mode}`, summary, TARGET), '  ' + detailLine(`${s.name} ${mode}`, summary));
    }
  }
  process.stdout.write(`\n== gateway HTTP server: HTTP/1.1 only (A) vs HTTP/1.1 and HTTP/2 prior knowledge (B), paired on core ${PROXY_CPU}\n${lines.join('\n')}\n`);
} finally {
  load.close();
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
