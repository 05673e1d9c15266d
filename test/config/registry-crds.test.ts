/**
 * Oracle 2: istio/istio's CRD test data (pkg/config/validation/testdata/crds): every document
 * of a *-valid.yaml validates without errors, and every document of a *-invalid.yaml (after
 * its `_err:` key, the API server's expected message, is removed) yields at least one error.
 * Kinds Sinew does not implement (EnvoyFilter, ProxyConfig, WasmPlugin) are not read here.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import { validateText } from '../../src/config/validate.js';
import { describeDiagnostics, istioDir } from './registry-helpers.js';

const crdsDir = path.join(istioDir, 'data/istio/pkg/config/validation/testdata/crds');
const families = ['serviceentry', 'workloadentry', 'workloadgroup', 'authz', 'peerauth', 'reqauth', 'telemetry'];

interface CrdCase {
  name: string;
  expectedError?: string;
  text: string;
}

/**
 * serviceentry-valid.yaml writes `addresses: [1.2.3.4, 001:db8::]`. Under YAML 1.2 (the
 * `yaml` package, and PyYAML alike) a `:` before `]` in a flow sequence makes
 * `{"001:db8:": null}`; Go's YAML reader keeps the string the test meant. The address is
 * quoted here so the case tests validation rather than that parser difference.
 */
function readCases(file: string): string {
  return readFileSync(file, 'utf8').replace('[1.2.3.4, 001:db8::]', '[1.2.3.4, "001:db8::"]');
}

function casesOf(file: string): CrdCase[] {
  const out: CrdCase[] = [];
  for (const doc of parseAllDocuments(readCases(file))) {
    const value = doc.toJS() as Record<string, unknown> | null;
    if (!value || typeof value !== 'object') continue; // commented-out documents
    const { _err, ...resource } = value;
    const meta = resource.metadata as { name?: string } | undefined;
    out.push({ name: meta?.name ?? '?', expectedError: typeof _err === 'string' ? _err : undefined, text: stringify(resource) });
  }
  return out;
}

for (const family of families) {
  describe(`${family} CRD test data`, () => {
    for (const c of casesOf(path.join(crdsDir, `${family}-valid.yaml`))) {
      test(`valid: ${c.name}`, () => {
        const r = validateText(`${family}-valid/${c.name}`, c.text);
        const errors = r.diagnostics.filter((d) => d.level === 'error');
        assert.equal(errors.length, 0, `expected no errors, got:\n${describeDiagnostics(r.diagnostics)}`);
        assert.equal(r.resources.length, 1);
      });
    }
    for (const c of casesOf(path.join(crdsDir, `${family}-invalid.yaml`))) {
      test(`invalid: ${c.name} (${c.expectedError})`, () => {
        const r = validateText(`${family}-invalid/${c.name}`, c.text);
        const errors = r.diagnostics.filter((d) => d.level === 'error');
        assert.ok(errors.length > 0, `expected an error like "${c.expectedError}", got:\n${describeDiagnostics(r.diagnostics)}`);
        assert.equal(r.resources.length, 0);
      });
    }
  });
}
