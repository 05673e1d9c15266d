/**
 * The Gateway API conformance suite as the repository carries it
 * (test/fixtures/gateway-api/conformance/, written by scripts/gen-gateway-api-conformance.ts):
 * its tests, its profiles, which tests count in which profile and as core or extended, and the
 * report in the suite's ConformanceReport format.
 *
 * Profile membership follows the suite (conformance/utils/suite/reports.go): a test belongs to
 * every profile whose core and extended features together hold all of its features, and counts
 * as extended there when one of its features is an extended one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from '../../support/reference-corpus.js';

export const fixturesDir = join(repoRoot, 'test/fixtures/gateway-api/conformance');

export type Value = string | number | boolean | null | Value[] | { [k: string]: Value };

export interface Step {
  id: number;
  call?: string;
  receiver?: number;
  args?: Value[];
  subtest?: string[];
  unsupported?: string;
  /** `$each`: the id the element is known by, the steps run per element, the elements skipped. */
  elem?: number;
  steps?: Step[];
  unless?: Value;
}

export interface ConformanceTest {
  shortName: string;
  description: string;
  features: string[];
  manifests: string[];
  provisional: boolean;
  slow: boolean;
  source: string;
  steps: Step[];
}

export interface Suite {
  source: { repository: string; commit: string };
  profiles: Record<string, { core: string[]; extended: string[] }>;
  tests: ConformanceTest[];
}

export function loadSuite(): Suite {
  return JSON.parse(readFileSync(join(fixturesDir, 'cases.json'), 'utf8')) as Suite;
}

export function profilesOf(suite: Suite, test: ConformanceTest): { profile: string; extended: boolean }[] {
  return Object.entries(suite.profiles)
    .filter(([, p]) => test.features.every((f) => p.core.includes(f) || p.extended.includes(f)))
    .map(([profile, p]) => ({ profile, extended: test.features.some((f) => p.extended.includes(f)) }));
}

export type Outcome = { result: 'passed' } | { result: 'failed'; reason: string } | { result: 'skipped'; reason: string };

export interface Declaration {
  /** The features Sinew declares it supports (tests needing any other feature are skipped). */
  supported: ReadonlySet<string>;
  /** Tests skipped although their features are declared, with the reason. */
  skipTests: ReadonlyMap<string, string>;
}

/** Why a test does not run, or undefined when it runs. */
export function skipReason(test: ConformanceTest, declaration: Declaration): string | undefined {
  const missing = test.features.filter((f) => !declaration.supported.has(f));
  if (missing.length) return `unsupported features: ${missing.join(', ')}`;
  return declaration.skipTests.get(test.shortName);
}

interface ProfileReport {
  name: string;
  core: { Passed: number; Failed: number; Skipped: number; failedTests: string[]; skippedTests: string[] };
  extended: { Passed: number; Failed: number; Skipped: number; failedTests: string[]; skippedTests: string[] };
}

/** The report in the suite's format (apis/v1 ConformanceReport), for the profiles named. */
export function buildReport(suite: Suite, profiles: string[], outcomes: Map<string, Outcome>, declaration: Declaration, implementation: Record<string, unknown>): Record<string, unknown> {
  const reports: ProfileReport[] = profiles.map((name) => ({
    name,
    core: { Passed: 0, Failed: 0, Skipped: 0, failedTests: [], skippedTests: [] },
    extended: { Passed: 0, Failed: 0, Skipped: 0, failedTests: [], skippedTests: [] },
  }));
  const succeededProvisional: string[] = [];
  for (const test of suite.tests) {
    const outcome = outcomes.get(test.shortName);
    if (!outcome) continue;
    if (test.provisional && outcome.result === 'passed') succeededProvisional.push(test.shortName);
    for (const { profile, extended } of profilesOf(suite, test)) {
      const report = reports.find((r) => r.name === profile);
      if (!report) continue;
      const part = extended ? report.extended : report.core;
      if (outcome.result === 'passed') part.Passed++;
      else if (outcome.result === 'failed') {
        part.Failed++;
        part.failedTests.push(test.shortName);
      } else {
        part.Skipped++;
        part.skippedTests.push(test.shortName);
      }
    }
  }
  const result = (p: ProfileReport['core']) => (p.Failed > 0 ? 'failure' : p.Passed === 0 && p.Skipped > 0 ? 'skipped' : p.Skipped > 0 ? 'partial' : 'success');
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'ConformanceReport',
    date: new Date().toISOString(),
    gatewayAPIVersion: `${suite.source.repository}@${suite.source.commit}`,
    gatewayAPIChannel: 'experimental',
    implementation,
    mode: 'default',
    profiles: reports.map((r) => {
      const p = suite.profiles[r.name];
      const extendedFeatures = p.extended;
      return {
        name: r.name,
        core: { result: result(r.core), statistics: { Passed: r.core.Passed, Failed: r.core.Failed, Skipped: r.core.Skipped }, ...(r.core.failedTests.length ? { failedTests: r.core.failedTests } : {}), ...(r.core.skippedTests.length ? { skippedTests: r.core.skippedTests } : {}) },
        extended: {
          result: result(r.extended),
          statistics: { Passed: r.extended.Passed, Failed: r.extended.Failed, Skipped: r.extended.Skipped },
          ...(r.extended.failedTests.length ? { failedTests: r.extended.failedTests } : {}),
          ...(r.extended.skippedTests.length ? { skippedTests: r.extended.skippedTests } : {}),
          supportedFeatures: extendedFeatures.filter((f) => declaration.supported.has(f)).sort(),
          unsupportedFeatures: extendedFeatures.filter((f) => !declaration.supported.has(f)).sort(),
        },
        summary: `Core tests ${r.core.Failed ? 'failed' : 'succeeded'}. Extended tests ${r.extended.Failed ? 'failed' : r.extended.Passed ? 'succeeded' : 'skipped'}.`,
      };
    }),
    succeededProvisionalTests: succeededProvisional,
  };
}

export function reportYaml(report: Record<string, unknown>): string {
  return stringify(report, { lineWidth: 0 });
}

/** The report as a Markdown table, one row per profile (the README shows it). */
export function reportTable(report: Record<string, unknown>): string {
  const rows = (report.profiles as { name: string; core: { statistics: Record<string, number> }; extended: { statistics: Record<string, number> } }[]).map((p) => {
    const s = (x: Record<string, number>) => `${x.Passed} / ${x.Failed} / ${x.Skipped}`;
    return `| ${p.name} | ${s(p.core.statistics)} | ${s(p.extended.statistics)} |`;
  });
  return ['| profile | core: passed / failed / skipped | extended: passed / failed / skipped |', '|---|---|---|', ...rows].join('\n');
}
