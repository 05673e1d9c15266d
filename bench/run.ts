/**
 * `npm run bench [-- <name>...] [--duration S] [--rounds N] [--mode saturated|fixed-rate|both] [--rate N] [--targets a,b] [--json]`:
 * runs the benchmarks (all by default) and prints each one's figures beside its reference, as
 * ratios. Benchmarks are never part of `npm test`: their figures depend on the machine and are
 * read by people, not asserted.
 *
 *   proxy         direct vs one sinew proxy vs a sidecar pair vs nginx (needs wrk; nginx optional)
 *   lb            10 endpoints under each balancer vs 1 endpoint: added proxy CPU per request, target < 10 % (needs wrk)
 *   telemetry     metrics and 1% tracing on vs off, outbound and inbound: cost, target <= 15 % (needs wrk)
 *   controlplane  1000 services, 2000 proxies, one VirtualService change: time to every ACK
 *   ca            CA signing rate, key + CSR generation, mutual TLS handshakes per core, library memory
 *   console       the graph API over 500 services (target < 200 ms) and the graph page in Chromium
 *   chaos         Bookinfo under fixed-rate load while parts are killed and config changes: requests lost, recovery (needs wrk)
 *   cpmemory      a 15 MB config applied to a real control plane: its RSS against the config's size
 *   kube          1000 Services and 2000 pods in a real API server through the informers: change -> every ACK
 *   authz         JWT validation and a 10-rule ALLOW policy vs none, paired, 1000 req/s: added proxy CPU per request, target <= 10 % (needs wrk)
 *                 --route-again: the same vs choosing the route again after the token, as gateways do for claim routes
 *   grpc          gRPC unary through a sidecar pair (h2c in, HTTP/2 out) vs direct, grpc-js load loop
 *   rotation      Bookinfo under fixed-rate load for 3 minutes with 60 s certificates: 0 lost, every proxy rotated >= 2 times (needs wrk; not in the default set)
 *
 * lb and telemetry are A/B comparisons against 10-15 % targets, and this machine's 2 shared
 * vCPUs move one proxy's CPU per request by tens of percent from one run to the next (there is
 * no hardware instruction counter to use instead). So A and B are measured PAIRED
 * (bench/paired.ts): both at the same time, pinned to the same core, each under its own wrk,
 * started together; whatever slows the core slows both, and each run's figure is the ratio B/A.
 * --rounds paired runs per comparison (default 6; each swaps which wrk starts first), --duration
 * seconds each; the report is the median ratio, min..max, and a verdict from the median.
 * --mode saturated (default: both closed-loop, the core split between them, so requests/s B/A
 * is throughput kept), fixed-rate (the same open-loop rate to both, --rate req/s each or 20 % of
 * what a warm-up pair served) or both.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseModes } from './paired.js';
import { runProxyBench, runLbBench, report as proxyReport, reportLb } from './proxy.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string' },
    mode: { type: 'string' },
    rate: { type: 'string' },
    targets: { type: 'string' },
    json: { type: 'boolean', default: false },
    'route-again': { type: 'boolean', default: false },
  },
});
const durationS = Number(values.duration);
/** Paired rounds for the A/B benchmarks (lb, telemetry); the median of the per-round ratios counts. */
const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
const modes = parseModes(values.mode);
const rate = values.rate === undefined ? undefined : Number(values.rate);

// Proxies under test run the compiled build, as `sinew up` runs them: build it now so that no
// figure includes the TypeScript loader or a stale build.
process.stderr.write('building dist/ ...\n');
const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) throw new Error('the build failed; benchmarks need dist/');
const all = ['proxy', 'lb', 'telemetry', 'authz', 'controlplane', 'cpmemory', 'ca', 'console', 'chaos', 'grpc', 'kube'];
const wanted = positionals.length ? positionals : all;
const print = (name: string, json: unknown, text: string) => process.stdout.write(values.json ? JSON.stringify({ bench: name, results: json }) + '\n' : `\n== ${name}\n${text}`);

for (const name of wanted) {
  switch (name) {
    case 'proxy': {
      const results = await runProxyBench({ durationS, json: values.json, ...(values.targets ? { targets: values.targets.split(',') } : {}) });
      print(name, results, proxyReport(results));
      break;
    }
    case 'lb': {
      const results = await runLbBench({ durationS, json: values.json, rounds, modes, rate });
      print(name, results, reportLb(results));
      // The balancers alone, without sockets: picks per second.
      const micro = spawnSync(process.execPath, ['--import', 'tsx', 'bench/lb.ts'], { encoding: 'utf8' });
      if (micro.stdout) process.stdout.write(micro.stdout);
      break;
    }
    case 'telemetry': {
      const { runTelemetryBench, reportTelemetry } = await import('./telemetry.js');
      const results = await runTelemetryBench({ durationS, json: values.json, rounds, modes, rate });
      print(name, results, reportTelemetry(results));
      break;
    }
    case 'authz': {
      const { runAuthzBench, reportAuthz } = await import('./authz.js');
      // The target is set at 1000 req/s: fixed-rate unless --mode says otherwise.
      const results = await runAuthzBench({ durationS, json: values.json, rounds, modes: values.mode === undefined ? undefined : modes, rate, routeAgain: values['route-again'] });
      print(name, results, reportAuthz(results));
      break;
    }
    case 'controlplane': {
      const { runControlPlaneBench, report } = await import('./controlplane.js');
      const result = await runControlPlaneBench({});
      print(name, result, report(result));
      break;
    }
    case 'ca': {
      const { runCaBench, report } = await import('./ca.js');
      const result = await runCaBench({ seconds: Math.min(durationS, 5) });
      print(name, result, report(result));
      break;
    }
    case 'console': {
      const { runConsoleBench, report } = await import('./console.js');
      const result = await runConsoleBench({});
      print(name, result, report(result));
      break;
    }
    case 'rotation': {
      const { runRotation, report } = await import('./rotation.js');
      // 3 minutes by default (the bar); --duration overrides only when given.
      const result = await runRotation({ durationS: process.argv.includes('--duration') ? durationS : 180, rate: rate ?? 200, certTtl: '60s', progress: (line) => process.stderr.write(`rotation: ${line}\n`) });
      print(name, result, report(result));
      if (!result.ok) process.exitCode = 1;
      break;
    }
    case 'chaos': {
      const { runChaos, report } = await import('./chaos.js');
      const chaosRate = rate ?? 50;
      const results = await runChaos({ rate: chaosRate, settleS: Math.min(durationS, 10), configChanges: 100, applyTrials: 4, applySize: 300, progress: (line) => process.stderr.write(`chaos: ${line}\n`) });
      print(name, results, report(results, chaosRate));
      if (results.some((r) => !r.ok)) process.exitCode = 1;
      break;
    }
    case 'cpmemory': {
      const { runMemoryBench, report } = await import('./controlplane-memory.js');
      const result = await runMemoryBench({});
      print(name, result, report(result));
      if (!result.met) process.exitCode = 1;
      break;
    }
    case 'grpc': {
      const { runGrpcBench, report } = await import('./grpc.js');
      const results = await runGrpcBench({ durationS, json: values.json });
      print(name, results, report(results));
      break;
    }
    case 'kube': {
      const { runKubeBench, report } = await import('./kube.js');
      const result = await runKubeBench({ log: (line) => process.stderr.write(line + '\n') });
      print(name, result, report(result));
      break;
    }
    default:
      process.stderr.write(`unknown benchmark "${name}"; available: ${all.join(', ')}\n`);
      process.exitCode = 2;
  }
}
