/**
 * `npm run bench -- grpc`: gRPC unary calls through a sidecar pair (an outbound listener taking
 * HTTP/2 with prior knowledge, then an inbound one, both sending HTTP/2 upstream) against the
 * same calls made directly, side by side in one run. The server and the load are
 * @grpc/grpc-js (a load loop keeping CONCURRENCY calls in flight, as h2load would; Debian's
 * nghttp2-client is not needed). Server and load share core 0, the two proxies core 1, as in
 * the proxy benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProxyConfig } from '../src/api/proxy-config.js';
import { allocatePort } from '../src/mesh/supervisor.js';
import { PROXY_NODE_FLAGS } from '../src/mesh/up.js';

const repo = join(import.meta.dirname, '..');
/** Calls kept in flight (SINEW_BENCH_GRPC_CONCURRENCY to change). */
const CONCURRENCY = Number(process.env.SINEW_BENCH_GRPC_CONCURRENCY) || 50;

export interface GrpcResult {
  name: string;
  callsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

const children: ChildProcess[] = [];

function start(args: string[], cpu: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn('taskset', ['-c', cpu, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_PATH: join(repo, 'node_modules'), ...env } });
  children.push(child);
  return child;
}

async function line(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  let buffered = '';
  for await (const chunk of child.stdout!) {
    buffered += chunk.toString();
    const m = buffered.match(pattern);
    if (m) return m;
  }
  throw new Error(`process exited before printing ${pattern}`);
}

/** Messages are JSON, the service definition names its serializers (no generated code). */
const SERVICE = `
const grpc = require('@grpc/grpc-js');
const json = { serialize: (v) => Buffer.from(JSON.stringify(v)), deserialize: (b) => JSON.parse(b.toString()) };
const service = { SayHello: { path: '/bench.Greeter/SayHello', requestStream: false, responseStream: false,
  requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize } };
`;

const SERVER = `${SERVICE}
const server = new grpc.Server();
server.addService(service, { SayHello: (call, done) => done(null, { greeting: 'hello ' + call.request.name }) });
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => { if (err) throw err; console.log('listening ' + port); });
`;

/** Keeps CONCURRENCY calls in flight for DURATION_S seconds after a warm-up; prints the figures as JSON. */
const LOAD = `${SERVICE}
const Client = grpc.makeGenericClientConstructor(service, 'Greeter');
const client = new Client(process.env.TARGET, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter.bench:50051' });
const concurrency = Number(process.env.CONCURRENCY), durationMs = Number(process.env.DURATION_S) * 1000;
const run = (ms, record) => new Promise((resolve) => {
  const end = performance.now() + ms; let inFlight = 0; const lat = []; let errors = 0; let calls = 0;
  const one = () => {
    if (performance.now() >= end) { if (--inFlight === 0) resolve({ lat, errors, calls }); return; }
    const t = performance.now();
    client.SayHello({ name: 'bench' }, (err) => { if (err) errors++; else { calls++; if (record) lat.push(performance.now() - t); } one(); });
  };
  for (let i = 0; i < concurrency; i++) { inFlight++; one(); }
});
(async () => {
  await run(Math.min(3000, durationMs), false);
  const { lat, errors, calls } = await run(durationMs, true);
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  console.log('RESULT ' + JSON.stringify({ callsPerSecond: calls / (durationMs / 1000), p50: q(0.5), p99: q(0.99), errors }));
  client.close();
})();
`;

function proxyConfig(name: string, direction: 'outbound' | 'inbound', listenPort: number, upstreamPort: number): ProxyConfig {
  return {
    version: 'bench',
    node: { id: `sidecar~${name}.bench`, mode: 'sidecar', workload: name, namespace: 'bench', labels: {} },
    listeners: [{ name: 'bench', address: { host: '127.0.0.1', port: listenPort }, direction, protocol: 'http', http: { routeConfigName: 'bench', http2: true } }],
    routeConfigs: [{ name: 'bench', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'bench/all', match: { path: { prefix: '/' } }, action: { kind: 'route', destinations: [{ cluster: 'upstream', weight: 1 }] } }] }] }],
    clusters: [{ name: 'upstream', kind: 'eds', protocol: 'http2', connectTimeoutMs: 1000, lb: { policy: 'ROUND_ROBIN' } }],
    endpoints: [{ clusterName: 'upstream', endpoints: [{ address: { host: '127.0.0.1', port: upstreamPort }, labels: {}, health: 'HEALTHY' }] }],
  };
}

async function startProxy(dir: string, name: string, direction: 'outbound' | 'inbound', upstreamPort: number): Promise<number> {
  const port = await allocatePort();
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(proxyConfig(name, direction, port, upstreamPort)));
  const child = start([...PROXY_NODE_FLAGS, join(repo, 'bin/sinew.js'), 'proxy', '--config', file], '1', { SINEW_LOG_LEVEL: 'warn' });
  // Ready once it answers (any HTTP answer: the route table holds only the gRPC upstream).
  for (let i = 0; i < 200; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/ready`)).arrayBuffer();
      return port;
    } catch {
      if (child.exitCode !== null) throw new Error(`proxy ${name} exited`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`proxy ${name} does not answer on ${port}`);
}

async function load(name: string, target: string, durationS: number): Promise<GrpcResult> {
  const child = start(['-e', LOAD], '0', { TARGET: target, CONCURRENCY: String(CONCURRENCY), DURATION_S: String(durationS) });
  const [, json] = await line(child, /RESULT (\{.*\})/);
  await once(child, 'exit');
  return { name, ...(JSON.parse(json) as Omit<GrpcResult, 'name'>) };
}

export async function runGrpcBench(options: { durationS: number; json?: boolean }): Promise<GrpcResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-grpc-'));
  try {
    const server = start(['-e', SERVER], '0');
    const serverPort = Number((await line(server, /listening (\d+)/))[1]);
    const inbound = await startProxy(dir, 'greeter', 'inbound', serverPort);
    const outbound = await startProxy(dir, 'caller', 'outbound', inbound);
    // One proxy alone in front of the server: where between the two hops the cost lies.
    const single = await startProxy(dir, 'single', 'outbound', serverPort);
    const results: GrpcResult[] = [];
    // Alternated and repeated, so that whatever else the machine does falls on both.
    for (let round = 0; round < 2; round++) {
      for (const [name, target] of [['direct', `127.0.0.1:${serverPort}`], ['one', `127.0.0.1:${single}`], ['pair', `127.0.0.1:${outbound}`]] as const) {
        if (!options.json) process.stderr.write(`grpc: measuring ${name} (round ${round + 1})...\n`);
        results.push(await load(name, target, options.durationS));
      }
    }
    return results;
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
    children.length = 0;
    rmSync(dir, { recursive: true, force: true });
  }
}

export function report(results: GrpcResult[]): string {
  const best = (name: string) => results.filter((r) => r.name === name).sort((a, b) => b.callsPerSecond - a.callsPerSecond)[0];
  const direct = best('direct');
  const lines = [`gRPC unary, ${CONCURRENCY} calls in flight (grpc-js load loop); best of each target's rounds`, 'target   calls/s   x direct  p50 ms  p99 ms  +p50 ms  +p99 ms  errors'];
  for (const name of ['direct', 'one', 'pair']) {
    const r = best(name);
    if (!r) continue;
    lines.push(
      [
        name.padEnd(7),
        r.callsPerSecond.toFixed(0).padStart(8),
        (r.callsPerSecond / direct.callsPerSecond).toFixed(2).padStart(9),
        r.p50.toFixed(2).padStart(7),
        r.p99.toFixed(2).padStart(7),
        (r.p50 - direct.p50).toFixed(2).padStart(8),
        (r.p99 - direct.p99).toFixed(2).padStart(8),
        String(r.errors).padStart(7),
      ].join(' '),
    );
  }
  lines.push(`every round: ${results.map((r) => `${r.name} ${r.callsPerSecond.toFixed(0)}/s`).join(', ')}`);
  return lines.join('\n') + '\n';
}
