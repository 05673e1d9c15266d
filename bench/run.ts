/**
 * `npm run bench [-- <name>...] [--duration S] [--rounds N] [--json]`: runs the benchmarks (all by default)
 * and prints each one's figures beside its reference, as ratios. Benchmarks are never part
 * of `npm test`: their figures depend on the machine and are read by people, not asserted.
 *
 *   proxy         direct vs one sinew proxy vs a sidecar pair vs nginx (needs wrk; nginx optional)
 *   lb            one proxy, 10 endpoints under each balancer vs 1 endpoint: added proxy CPU per request (needs wrk)
 *   telemetry     one proxy with metrics and 1% tracing on vs off (needs wrk)
 *   controlplane  1000 services, 2000 proxies, one VirtualService change: time to every ACK
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runProxyBench, runLbBench, report as proxyReport, reportLb } from './proxy.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { duration: { type: 'string', default: '10' }, rounds: { type: 'string' }, json: { type: 'boolean', default: false } },
});
const durationS = Number(values.duration);
/** Alternating rounds for the A/B benchmarks (lb, telemetry); each side's best run counts. */
const rounds = values.rounds === undefined ? undefined : Number(values.rounds);

// Proxies under test run the compiled build, as `sinew up` runs them: build it now so that no
// figure includes the TypeScript loader or a stale build.
process.stderr.write('building dist/ ...\n');
const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) throw new Error('the build failed; benchmarks need dist/');
const all = ['proxy', 'lb', 'telemetry', 'controlplane'];
const wanted = positionals.length ? positionals : all;
const print = (name: string, json: unknown, text: string) => process.stdout.write(values.json ? JSON.stringify({ bench: name, results: json }) + '\n' : `\n== ${name}\n${text}`);

for (const name of wanted) {
  switch (name) {
    case 'proxy': {
      const results = await runProxyBench({ durationS, json: values.json });
      print(name, results, proxyReport(results));
      break;
    }
    case 'lb': {
      const results = await runLbBench({ durationS, json: values.json, rounds });
      print(name, results, reportLb(results));
      // The balancers alone, without sockets: picks per second.
      const micro = spawnSync(process.execPath, ['--import', 'tsx', 'bench/lb.ts'], { encoding: 'utf8' });
      if (micro.stdout) process.stdout.write(micro.stdout);
      break;
    }
    case 'telemetry': {
      const { runTelemetryBench, reportTelemetry } = await import('./telemetry.js');
      const results = await runTelemetryBench({ durationS, json: values.json, rounds });
      print(name, results, reportTelemetry(results));
      break;
    }
    case 'controlplane': {
      const { runControlPlaneBench, report } = await import('./controlplane.js');
      const result = await runControlPlaneBench({});
      print(name, result, report(result));
      break;
    }
    default:
      process.stderr.write(`unknown benchmark "${name}"; available: ${all.join(', ')}\n`);
      process.exitCode = 2;
  }
}
