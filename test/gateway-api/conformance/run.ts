/**
 * `npm run conformance`: the Gateway API conformance suite against `sinew up`, with the report
 * in the suite's format.
 *
 *   npm run conformance                              every test of the declared profiles
 *   npm run conformance -- --profile MESH-HTTP       one profile
 *   npm run conformance -- --test HTTPRouteWeight    named tests (repeatable), in a profile or not
 *   npm run conformance -- --report report.yaml      also write the report to a file
 *   npm run conformance -- --timeout-ms 30000        how long each "eventually" may take
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConformanceRunner } from './runner.js';
import { PROFILES, sinewDeclaration } from './declaration.js';
import { buildReport, loadSuite, profilesOf, reportTable, reportYaml, skipReason, type Outcome } from './suite.js';

const { values } = parseArgs({
  options: {
    profile: { type: 'string', multiple: true },
    test: { type: 'string', multiple: true },
    report: { type: 'string' },
    'timeout-ms': { type: 'string' },
  },
});

const suite = loadSuite();
const profiles = values.profile?.length ? values.profile : PROFILES;
for (const p of profiles) if (!suite.profiles[p]) throw new Error(`no profile ${p}; the suite has ${Object.keys(suite.profiles).join(', ')}`);
const declaration = sinewDeclaration(suite);
// Named tests run whatever their profiles (the suite runs a test whose features are all
// supported even when no profile counts it: MeshFrontend, MeshHTTPRoute303Redirect, ...).
const selected = values.test?.length ? suite.tests.filter((t) => values.test!.includes(t.shortName)) : suite.tests.filter((t) => profilesOf(suite, t).some((p) => profiles.includes(p.profile)));
for (const name of values.test ?? []) if (!suite.tests.some((t) => t.shortName === name)) throw new Error(`no test ${name} in the suite`);

const outcomes = new Map<string, Outcome>();
const toRun = selected.filter((t) => {
  const why = skipReason(t, declaration);
  if (why) outcomes.set(t.shortName, { result: 'skipped', reason: why });
  return !why;
});
const gatewayTests = toRun.some((t) => !t.source.includes('/mesh/'));
const meshTests = toRun.some((t) => t.source.includes('/mesh/'));
const runner = new ConformanceRunner({ gateway: gatewayTests || !meshTests, mesh: meshTests, timeoutMs: values['timeout-ms'] ? Number(values['timeout-ms']) : undefined, supportedFeatures: declaration.supported });
const started = Date.now();
if (toRun.length) {
  process.stdout.write(`starting the mesh for ${toRun.length} tests (${selected.length - toRun.length} skipped)...\n`);
  await runner.start();
}
try {
  for (const test of toRun) {
    const t0 = Date.now();
    const outcome = await runner.run(test);
    outcomes.set(test.shortName, outcome);
    const mark = outcome.result === 'passed' ? 'PASS' : 'FAIL';
    process.stdout.write(`${mark} ${test.shortName} (${((Date.now() - t0) / 1000).toFixed(1)} s)${outcome.result === 'failed' ? `: ${outcome.reason}` : ''}\n`);
  }
} finally {
  await runner.stop();
}
for (const t of selected) {
  const o = outcomes.get(t.shortName);
  if (o?.result === 'skipped') process.stdout.write(`SKIP ${t.shortName}: ${o.reason}\n`);
}
const report = buildReport(suite, profiles, outcomes, declaration, { organization: 'sinew', project: 'sinew', version: '0.1.0' });
process.stdout.write(`\n${reportYaml(report)}\n${reportTable(report)}\n\n${toRun.length} tests run in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
if (values.report) writeFileSync(values.report, reportYaml(report));
