/**
 * Transcribes the Kubernetes Gateway API conformance suite into the repository's fixtures
 * (test/fixtures/gateway-api/conformance/), so that its runner (test/gateway-api/conformance/)
 * needs nothing beside the clone:
 *
 *   npx tsx scripts/gen-gateway-api-conformance.ts <gateway-api checkout> [--commit SHA]
 *
 * The argument is a copy of kubernetes-sigs/gateway-api. Written:
 *
 *   - `cases.json`: every ConformanceTest of `conformance/tests/*.go` and
 *     `conformance/tests/mesh/*.go` (name, description, features, manifests, and the steps of
 *     its Test function, worked out by scripts/gateway-api/transcribe.ts), and the conformance
 *     profiles with their core and extended features (`conformance/utils/suite/profiles.go`,
 *     `pkg/features/*.go`);
 *   - the manifests they apply, unchanged: `conformance/base/manifests.yaml`,
 *     `conformance/mesh/manifests.yaml`, and every `conformance/tests/**.yaml` a test names.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseSuiteFile } from './gateway-api/go.js';
import { transcribeTest, type TranscribedTest } from './gateway-api/transcribe.js';

const out = resolve(import.meta.dirname, '../test/fixtures/gateway-api/conformance');

/** Feature constants (`SupportX FeatureName = "X"`), Feature values and feature sets of pkg/features. */
function readFeatures(dir: string): { names: Map<string, string>; sets: Map<string, string[]> } {
  const names = new Map<string, string>();
  const featureVars = new Map<string, string>();
  const sets = new Map<string, string[]>();
  const files = readdirSync(dir).filter((f) => f.endsWith('.go') && !f.endsWith('_test.go'));
  const texts = files.map((f) => readFileSync(join(dir, f), 'utf8'));
  for (const text of texts) for (const m of text.matchAll(/^\s*(Support\w+)\s+(?:FeatureName\s*)?=\s*"([^"]+)"/gm)) names.set(m[1], m[2]);
  for (const text of texts) for (const m of text.matchAll(/(\w+)\s*=\s*Feature\{\s*Name:\s*(\w+)/g)) featureVars.set(m[1], names.get(m[2]) ?? m[2]);
  for (const text of texts)
    for (const m of text.matchAll(/var\s+(\w+)\s*=\s*sets\.New(?:\[\w+\])?\(([^)]*)\)/g)) {
      sets.set(
        m[1],
        m[2]
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((v) => featureVars.get(v) ?? names.get(v) ?? v),
      );
    }
  return { names, sets };
}

/** The profiles of profiles.go: `Name: XName, CoreFeatures: ..., ExtendedFeatures: ...`. */
function readProfiles(text: string, features: { names: Map<string, string>; sets: Map<string, string[]> }): Record<string, { core: string[]; extended: string[] }> {
  const profileNames = new Map<string, string>();
  for (const m of text.matchAll(/(\w+ConformanceProfileName)\s+ConformanceProfileName\s*=\s*"([^"]+)"/g)) profileNames.set(m[1], m[2]);
  const resolveList = (part: string) =>
    [...part.matchAll(/features\.(\w+)/g)].flatMap(([, id]) => features.sets.get(id) ?? (features.names.has(id) ? [features.names.get(id)!] : [])).filter((v, i, a) => a.indexOf(v) === i);
  const profiles: Record<string, { core: string[]; extended: string[] }> = {};
  for (const m of text.matchAll(/\w+ConformanceProfile\s*=\s*ConformanceProfile\{\s*Name:\s*(\w+),\s*CoreFeatures:([\s\S]*?)ExtendedFeatures:([\s\S]*?)\n\t\}/g)) {
    const name = profileNames.get(m[1]) ?? m[1];
    profiles[name] = { core: resolveList(m[2]), extended: resolveList(m[3]) };
  }
  return profiles;
}

export interface TranscribedSuite {
  /** cases.json's content. */
  cases: { generatedBy: string; source: { repository: string; commit: string }; profiles: Record<string, { core: string[]; extended: string[] }>; tests: TranscribedTest[] };
  /** The manifests to copy, relative to `conformance/`. */
  manifests: string[];
  /** What could not be read. */
  problems: string[];
}

/** The suite of a gateway-api checkout, transcribed (nothing written). */
export function transcribeSuite(root: string, commit: string): TranscribedSuite {
  const features = readFeatures(join(root, 'pkg/features'));
  const profiles = readProfiles(readFileSync(join(root, 'conformance/utils/suite/profiles.go'), 'utf8'), features);
  const tests: TranscribedTest[] = [];
  const problems: string[] = [];
  for (const folder of ['tests', 'tests/mesh']) {
    for (const file of readdirSync(join(root, 'conformance', folder)).filter((f) => f.endsWith('.go') && !f.endsWith('_test.go')).sort()) {
      const source = `conformance/${folder}/${file}`;
      const parsed = parseSuiteFile(readFileSync(join(root, source), 'utf8'));
      problems.push(...parsed.errors.map((e) => `${source}: ${e}`));
      for (const t of parsed.tests) {
        // `Test: OtherTest.Test` shares another test's function
        const body = t.fields.get('Test');
        if (body?.k === 'sel' && body.name === 'Test' && body.x.k === 'ident') {
          const other = parsed.tests.find((o) => o.variable === (body.x as { name: string }).name);
          if (other?.fields.get('Test')) t.fields.set('Test', other.fields.get('Test')!);
        }
        tests.push(transcribeTest(t, parsed.funcs, parsed.vars, features.names, source, parsed.imports));
      }
    }
  }
  const manifests = [...new Set(['base/manifests.yaml', 'mesh/manifests.yaml', ...tests.flatMap((t) => t.manifests)])];
  for (const m of manifests) if (!existsSync(join(root, 'conformance', m))) problems.push(`${m}: named by a test but not in the checkout`);
  return { cases: { generatedBy: 'scripts/gen-gateway-api-conformance.ts', source: { repository: 'kubernetes-sigs/gateway-api', commit }, profiles, tests }, manifests, problems };
}

export function casesJson(suite: TranscribedSuite): string {
  return JSON.stringify(suite.cases, null, 1) + '\n';
}

function main(): void {
  const [root, ...rest] = process.argv.slice(2);
  if (!root || !existsSync(join(root, 'conformance/tests'))) {
    console.error('usage: npx tsx scripts/gen-gateway-api-conformance.ts <kubernetes-sigs/gateway-api checkout> --commit SHA');
    process.exit(2);
  }
  const commitFlag = rest.indexOf('--commit');
  const commit = commitFlag >= 0 ? rest[commitFlag + 1] : 'unknown';
  const suite = transcribeSuite(root, commit);
  for (const m of suite.manifests) {
    const from = join(root, 'conformance', m);
    if (!existsSync(from)) continue;
    mkdirSync(dirname(join(out, m)), { recursive: true });
    copyFileSync(from, join(out, m));
  }
  writeFileSync(join(out, 'cases.json'), casesJson(suite));
  const unsupported = suite.cases.tests.filter((t) => t.steps.some((s) => s.unsupported));
  console.log(`${suite.cases.tests.length} tests, ${suite.manifests.length} manifests written to ${out}`);
  console.log(`${unsupported.length} tests with steps the runner cannot follow: ${unsupported.map((t) => t.shortName).join(', ')}`);
  for (const p of suite.problems) console.log(`problem: ${p}`);
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) main();
