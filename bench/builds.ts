/**
 * `npx tsx bench/builds.ts --base <checkout>`: the proxy of another checkout (A, e.g. main)
 * against this one's (B), measured PAIRED (bench/paired.ts: both at once on core 1, each under
 * its own wrk), so that a change's cost can be told from the machine's noise. Each side runs
 * its own build's `createProxy` with the config its own compiler would give a sidecar, for an
 * outbound and an inbound listener with telemetry on (1 % sampling, an OTLP sink), the way
 * sidecars run; the inbound requests carry the metadata exchange a calling sidecar sends, signed
 * with the mesh key where the build knows one. Both checkouts need a build (`node
 * scripts/build.mjs` in each; this one is built first).
 *
 *   npx tsx bench/builds.ts --base ../main [--duration 5] [--rounds 6] [--mode saturated|fixed-rate|both] [--rate 1000]
 *
 * Reports, per direction and mode, B/A proxy CPU per request and B/A requests/s: median
 * (min..max) over the rounds.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ProxyConfig } from '../src/api/proxy-config.js';
import { PROXY_NODE_FLAGS } from '../src/mesh/up.js';
import { NO_PEER_IDENTITY, peerIdentityFor } from '../src/proxy/peer-identity.js';
import { peerMetadataHeaders } from '../src/telemetry/peer-metadata.js';
import { LOAD_CPU, UPSTREAM_SCRIPT, PROXY_CPU, PairedLoad, detailLine, parseModes, startPinned, summarize, verdictLine, type LoadTarget } from './paired.js';

const repo = resolve(import.meta.dirname, '..');
const MESH_KEY = Buffer.alloc(32, 0x42).toString('base64');
const caller = { id: 'sidecar~productpage-v1-0.bench', mode: 'sidecar' as const, workload: 'productpage-v1', namespace: 'bench', labels: { app: 'productpage', version: 'v1' } };

/**
 * A sidecar's listener as the compiler writes it, with Envoy's stream idle timeout and the mesh
 * key. Both builds get the same config: a base that predates a field ignores it (extra fields
 * are ignored), and one that knows it does the same work as this build. (Giving the key to this
 * build only once charged this build for verifying the signed exchange the base also verifies.)
 */
function config(direction: 'outbound' | 'inbound', upstreamPort: number, collectorPort: number): ProxyConfig {
  const service = { host: 'reviews.default.svc.cluster.local', port: 9080 };
  const cluster = direction === 'inbound' ? 'inbound|9080||' : 'outbound|9080||reviews.default.svc.cluster.local';
  return {
    version: 'bench',
    node: { id: 'sidecar~reviews-v1-0.bench', mode: 'sidecar', workload: 'reviews-v1', namespace: 'bench', labels: { app: 'reviews', version: 'v1' } },
    listeners: [{ name: 'bench', address: { host: '127.0.0.1', port: 0 }, direction, protocol: 'http', http: { routeConfigName: 'bench', streamIdleTimeoutMs: 300_000 } }],
    routeConfigs: [{ name: 'bench', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'bench/all', match: {}, action: { kind: 'route', destinations: [{ cluster, weight: 1 }] } }] }] }],
    clusters: [{ name: cluster, kind: 'eds', service, protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: 'ROUND_ROBIN' } }],
    endpoints: [{ clusterName: cluster, endpoints: [{ address: { host: '127.0.0.1', port: upstreamPort }, labels: {}, health: 'HEALTHY' }] }],
    telemetry: { tracingSamplingPercentage: 1, tracingCollectors: [{ kind: 'otlp-http', url: `http://127.0.0.1:${collectorPort}/v1/traces` }] },
    secrets: [{ name: 'sinew-mesh-key', genericSecret: MESH_KEY }],
    peerMetadataKey: 'sinew-mesh-key',
  };
}

const RUNNER = (checkout: string) => `
import { readFileSync } from 'node:fs';
const { createProxy } = await import(${JSON.stringify(join(checkout, 'dist/src/proxy/proxy.js'))});
const proxy = createProxy({ config: JSON.parse(readFileSync(process.argv[2], 'utf8')), metricsPort: 0 });
await proxy.start();
console.log('listening ' + proxy.listenerAddresses().bench.port);
process.stdin.resume();
process.stdin.on('end', async () => { await proxy.close({ drainMs: 0 }); process.exit(0); });
`;

const COLLECTOR = `
require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); }); })
  .listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
`;

const children: ChildProcess[] = [];

const start = (cpu: string, args: string[]) => startPinned(children, cpu, args);

const { values } = parseArgs({
  options: { base: { type: 'string' }, duration: { type: 'string', default: '5' }, rounds: { type: 'string', default: '6' }, mode: { type: 'string' }, rate: { type: 'string' } },
});
if (!values.base) throw new Error('--base <checkout> is required: the other build to compare with');
const base = resolve(values.base);
if (!existsSync(join(base, 'dist/src/proxy/proxy.js'))) throw new Error(`${base} has no build: run "node scripts/build.mjs" there`);
if (spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: repo, stdio: 'inherit' }).status !== 0) throw new Error('the build failed');
const durationS = Number(values.duration);
const rounds = Number(values.rounds);
const modes = parseModes(values.mode);
const rate = values.rate === undefined ? undefined : Number(values.rate);
const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-builds-'));
const load = new PairedLoad();
const log = (line: string) => process.stderr.write(line + '\n');
try {
  const upstream = start(LOAD_CPU, ['-e', UPSTREAM_SCRIPT]);
  const collector = start(LOAD_CPU, ['-e', COLLECTOR]);
  const [upstreamPort, collectorPort] = await Promise.all([upstream.port, collector.port]);
  // The inbound's callers are sidecars: their exchange headers, signed with the mesh key.
  const exchange = { ...peerMetadataHeaders(caller), ...peerIdentityFor(config('outbound', 0, 0), peerMetadataHeaders(caller), NO_PEER_IDENTITY).proofHeaders };
  const headersHook = `wrk.headers = wrk.headers or {}\n` + Object.entries(exchange).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`).join('\n');
  const lines: string[] = [];
  for (const direction of ['outbound', 'inbound'] as const) {
    const side = async (name: string, checkout: string): Promise<LoadTarget> => {
      const file = join(dir, `${name}-${direction}.json`);
      writeFileSync(file, JSON.stringify(config(direction, upstreamPort, collectorPort)));
      const runner = join(dir, `${name}-runner.mjs`);
      writeFileSync(runner, RUNNER(checkout));
      const proxy = start(PROXY_CPU, [...PROXY_NODE_FLAGS, runner, file]);
      return { name, url: `http://127.0.0.1:${await proxy.port}/reviews/0`, pids: [proxy.child.pid!], request: direction === 'inbound' ? headersHook : undefined };
    };
    const a = await side('base', base);
    const b = await side('this', repo);
    const measured = await load.measurePair(a, b, { label: direction, rounds, modes, durationS, rate, log });
    for (const mode of modes) {
      const s = summarize('base', 'this', mode, durationS, measured.runs.get(mode)!, measured.rate);
      lines.push(verdictLine(`${direction} ${mode}${mode === 'fixed-rate' ? ` ${measured.rate} req/s` : ''}`, s, { maxCpuRatio: Infinity, text: 'this/base' }), '  ' + detailLine(direction, s));
    }
    for (const c of children.splice(2)) {
      c.stdin!.end();
      if (c.exitCode === null) await once(c, 'exit');
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  load.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
