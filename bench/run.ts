/**
 * `npm run bench [-- <name>...] [--duration S] [--json]`: runs the benchmarks (all by default)
 * and prints each one's figures beside its reference, as ratios. Benchmarks are never part
 * of `npm test`: their figures depend on the machine and are read by people, not asserted.
 */
import { parseArgs } from 'node:util';
import { runProxyBench, report as proxyReport } from './proxy.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { duration: { type: 'string', default: '10' }, json: { type: 'boolean', default: false } },
});
const durationS = Number(values.duration);
const wanted = positionals.length ? positionals : ['proxy'];

for (const name of wanted) {
  switch (name) {
    case 'proxy': {
      const results = await runProxyBench({ durationS, json: values.json });
      process.stdout.write(values.json ? JSON.stringify({ bench: 'proxy', results }) + '\n' : proxyReport(results));
      break;
    }
    default:
      process.stderr.write(`unknown benchmark "${name}"; available: proxy\n`);
      process.exitCode = 2;
  }
}
