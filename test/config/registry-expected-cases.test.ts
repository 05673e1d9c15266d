/**
 * Oracle 1: Istio's own validation table (test/fixtures/istio/validation/expected.yaml). Every case of
 * the kinds Sinew's registry and security validators own becomes one test named after it:
 * valid cases must have no error (and a warning exactly when Istio warns); invalid cases need an
 * error at Istio's field whose message carries the words of Istio's message.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { validateInputs } from '../../src/config/validate.js';
import { containsKeyWords, describeDiagnostics, istioDir, istioFindings, normalisePath, registryKinds, securityKinds } from './registry-helpers.js';

interface ExpectedCase {
  id: string;
  file: string;
  kind: string;
  expect: 'valid' | 'invalid';
  field?: string;
  error_contains?: string;
  warning?: boolean;
  warning_contains?: string;
  note?: string;
}

const validationDir = path.join(istioDir, 'validation');
const cases = (parse(readFileSync(path.join(validationDir, 'expected.yaml'), 'utf8')) as { cases: ExpectedCase[] }).cases.filter(
  (c) => registryKinds.has(c.kind) || securityKinds.has(c.kind),
);

describe("Istio's validation cases for registry and security kinds", () => {
  test('the table has cases for these kinds', () => {
    assert.ok(cases.length >= 40, `only ${cases.length} cases found`);
  });

  for (const c of cases) {
    test(`${c.id} (${c.kind}): ${c.expect}${c.error_contains ? ` - ${c.error_contains}` : ''}`, async () => {
      const result = await validateInputs([path.join(validationDir, c.file)]);
      const errors = result.diagnostics.filter((d) => d.level === 'error');
      const warnings = istioFindings(result.diagnostics).filter((d) => d.level === 'warning');
      const all = describeDiagnostics(result.diagnostics);
      if (c.expect === 'valid') {
        assert.equal(errors.length, 0, `expected no errors, got:\n${all}`);
        assert.equal(result.resources.length, 1, 'the resource is accepted');
      } else {
        const field = c.field ?? 'spec';
        const match = errors.find((d) => normalisePath(d.path).startsWith(field) && containsKeyWords(d.message, c.error_contains ?? ''));
        assert.ok(match, `expected an error at ${field} containing "${c.error_contains}", got:\n${all}`);
        assert.equal(result.resources.length, 0, 'an invalid resource is not accepted');
      }
      if (c.warning) {
        assert.ok(warnings.length > 0, `expected a warning, got:\n${all}`);
        if (c.warning_contains) {
          assert.ok(
            warnings.some((d) => containsKeyWords(d.message, c.warning_contains ?? '')),
            `expected a warning containing "${c.warning_contains}", got:\n${all}`,
          );
        }
      } else {
        assert.equal(warnings.length, 0, `Istio gives no warning here, got:\n${all}`);
      }
    });
  }
});
