import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { renderDiagnosticsDoc, diagnosticsDocPath } from '../../scripts/gen-diagnostics-doc.js';
import { diagnosticCodes } from '../../src/api/diagnostics.js';

test('docs/diagnostics.md lists every diagnostic code as the code tables define it', () => {
  const hint = 'docs/diagnostics.md is out of date: run `npx tsx scripts/gen-diagnostics-doc.ts` and commit the result';
  assert.ok(existsSync(diagnosticsDocPath), hint);
  assert.equal(readFileSync(diagnosticsDocPath, 'utf8'), renderDiagnosticsDoc(), hint);
});

test('each code appears once, in its range, with level, name and description', () => {
  const doc = renderDiagnosticsDoc({
    SNW0002: { level: 'error', name: 'InvalidEncoding', description: 'Not UTF-8 | binary.' },
    SNW1001: { level: 'error', name: 'ReferencedSubsetNotFound', description: 'No subset.' },
    SNW0107: { level: 'warning', name: 'X', description: 'Y.' },
  });
  assert.match(doc, /## Reading input \(SNW00xx\)\n\n\| Code \| Level \| Name \| Description \|\n\|---\|---\|---\|---\|\n\| SNW0002 \| error \| InvalidEncoding \| Not UTF-8 \\\| binary\. \|\n/);
  assert.match(doc, /## Structure \(SNW01xx\)\n\n[^#]*\| SNW0107 \| warning \| X \| Y\. \|/);
  assert.match(doc, /## Cross-resource analysis[^\n]*\n\n[^#]*\| SNW1001 \| error \| ReferencedSubsetNotFound \|/);
  assert.match(doc, /## Networking semantics \(SNW02xx\)\n\nNo codes yet\./);
  for (const code of Object.keys(diagnosticCodes)) {
    assert.equal(renderDiagnosticsDoc().split(`| ${code} |`).length, 2, code);
  }
});
