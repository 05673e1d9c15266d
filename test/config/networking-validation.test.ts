/**
 * Networking kinds (VirtualService, DestinationRule, Gateway, Sidecar) against Istio's own
 * oracles: the validation cases taken from istio/istio's webhook tests
 * (test/fixtures/istio/validation/expected.yaml), the CRD example files, the samples and
 * istio.io task YAML the repository carries and, when the reference corpus is present, every
 * one of them.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { validateText } from '../../src/config/validate.js';
import { formatDiagnostic, type Diagnostic } from '../../src/api/diagnostics.js';
import { fixtures, referenceCorpus } from '../support/reference-corpus.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const istio = fixtures.istio;
const KINDS = new Set(['VirtualService', 'DestinationRule', 'Gateway', 'Sidecar']);

interface ExpectedCase {
  id: string;
  file: string;
  kind: string;
  source: { case: string };
  expect: 'valid' | 'invalid';
  warning?: boolean;
  field?: string;
  error_contains?: string;
  warning_contains?: string;
}

const show = (ds: Diagnostic[]) => ds.map((d) => formatDiagnostic(d)).join('\n') || '(none)';
const words = (s: string) => s.toLowerCase().split(/[^a-z0-9_.@*%-]+/).filter((w) => w.length > 0);

/** Every word of Istio's message appears in ours (the wording need not be identical). */
function saysTheSame(ours: string, istios: string): boolean {
  const have = new Set(words(ours));
  const joined = ours.toLowerCase();
  return words(istios).every((w) => have.has(w) || joined.includes(w));
}

const atField = (d: Diagnostic, field: string) => d.path === field || (d.path ?? '').startsWith(field);

function check(file: string): Diagnostic[] {
  return validateText(file, readFileSync(file, 'utf8')).diagnostics;
}

describe('Istio webhook validation cases (expected.yaml)', () => {
  const expected = parse(readFileSync(path.join(istio, 'validation/expected.yaml'), 'utf8')) as { cases: ExpectedCase[] };
  for (const c of expected.cases.filter((x) => KINDS.has(x.kind))) {
    test(`${c.id} ${c.source.case}`, () => {
      const ds = check(path.join(istio, 'validation', c.file));
      const errors = ds.filter((d) => d.level === 'error');
      if (c.expect === 'valid') {
        assert.equal(errors.length, 0, `expected no error, got:\n${show(errors)}`);
        if (c.warning) {
          const warned = ds.some((d) => d.level === 'warning' && (!c.field || atField(d, c.field)) && (!c.warning_contains || saysTheSame(d.message, c.warning_contains)));
          assert.ok(warned, `expected a warning at ${c.field} saying "${c.warning_contains}", got:\n${show(ds)}`);
        }
      } else {
        const hit = errors.some((d) => atField(d, c.field ?? '') && saysTheSame(d.message, c.error_contains ?? ''));
        assert.ok(hit, `expected an error at ${c.field} saying "${c.error_contains}", got:\n${show(ds)}`);
      }
    });
  }
});

/** Splits a multi-document file into documents of our kinds, re-serialised one by one. */
function documentsOf(file: string): { kind: string; text: string; value: Record<string, unknown> }[] {
  const out: { kind: string; text: string; value: Record<string, unknown> }[] = [];
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const value = doc.toJS() as Record<string, unknown> | null;
    // Kubernetes Gateway API also has a `Gateway` (gateway.networking.k8s.io); only Istio's are ours.
    const istioGroup = typeof value?.apiVersion === 'string' && value.apiVersion.startsWith('networking.istio.io/');
    if (value && typeof value === 'object' && typeof value.kind === 'string' && KINDS.has(value.kind) && istioGroup) {
      out.push({ kind: value.kind, text: stringify(value), value });
    }
  }
  return out;
}

describe('Istio CRD example files (pkg/config/validation/testdata/crds)', () => {
  const dir = path.join(istio, 'data/istio/pkg/config/validation/testdata/crds');
  const files = readdirSync(dir).filter((f) => /^(destinationrule|gateway|virtualservice|sidecar)-(valid|invalid)\.yaml$/.test(f));
  test('the example files for our kinds exist', () => assert.ok(files.length >= 2, files.join(', ')));
  for (const f of files.filter((x) => x.endsWith('-valid.yaml'))) {
    // Each document is a separate example (several share a name), so validate them one by one.
    documentsOf(path.join(dir, f)).forEach(({ text }, i) => {
      test(`${f} #${i}: accepted`, () => {
        const ds = validateText(`${f}#${i}`, text).diagnostics.filter((d) => d.level === 'error');
        assert.equal(ds.length, 0, show(ds));
      });
    });
  }
  for (const f of files.filter((x) => x.endsWith('-invalid.yaml'))) {
    documentsOf(path.join(dir, f)).forEach(({ value }, i) => {
      const why = String(value._err);
      test(`${f} #${i}: rejected (${why})`, () => {
        const { _err: _ignored, ...doc } = value;
        const ds = validateText(`${f}#${i}`, stringify(doc)).diagnostics.filter((d) => d.level === 'error');
        assert.ok(ds.length > 0, `expected an error like ${why}`);
        // Istio names the field at fault; we must point at the same one.
        const field = why.split(':')[0];
        assert.ok(ds.some((d) => d.path === field), `expected an error at ${field}, got:\n${show(ds)}`);
      });
    });
  }
});

function yamlFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFilesUnder(p));
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}

/** The files under `dirs` holding documents of our kinds, with those documents. */
function filesOfOurKinds(...dirs: string[]): { file: string; docs: ReturnType<typeof documentsOf> }[] {
  const out: { file: string; docs: ReturnType<typeof documentsOf> }[] = [];
  for (const file of dirs.flatMap(yamlFilesUnder)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (!/kind:\s*(VirtualService|DestinationRule|Gateway|Sidecar)\b/.test(text)) continue;
    const docs = documentsOf(file);
    if (docs.length > 0) out.push({ file, docs });
  }
  return out;
}

function validatesWithoutErrors(file: string, docs: ReturnType<typeof documentsOf>): void {
  for (const { text: doc } of docs) {
    const ds = validateText(file, doc).diagnostics.filter((d) => d.level === 'error');
    assert.equal(ds.length, 0, `${show(ds)}\nin:\n${doc}`);
  }
}

describe('Istio samples and istio.io tasks validate without errors', () => {
  const files = filesOfOurKinds(fixtures.samples, path.join(istio, 'data/istio.io'));
  for (const { file, docs } of files) test(path.relative(repoRoot, file), () => validatesWithoutErrors(file, docs));
  test('there are samples of our kinds to check', () => assert.ok(files.length > 20, `only ${files.length} files`));
});

test('every Istio sample and istio.io task in the reference corpus validates without errors', { skip: referenceCorpus.skip }, async (t) => {
  const files = filesOfOurKinds(referenceCorpus.path('istio/data/istio/samples'), referenceCorpus.path('istio/data/istio.io'));
  assert.ok(files.length > 20, `only ${files.length} files`);
  for (const { file, docs } of files) await t.test(path.relative(referenceCorpus.path('istio'), file), () => validatesWithoutErrors(file, docs));
});
