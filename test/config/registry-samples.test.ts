/**
 * Oracle 3: every ServiceEntry, WorkloadEntry, WorkloadGroup, PeerAuthentication,
 * AuthorizationPolicy, RequestAuthentication, Telemetry, Service and Namespace in Istio's
 * samples and in the YAML the istio.io tasks apply validates without errors: those the
 * repository carries always, and every one in the reference corpus when it is present. Other
 * kinds in the same files (VirtualService, ... and Deployments) are another suite's concern here.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { validateInputs, validateText } from '../../src/config/validate.js';
import { fixtures, referenceCorpus } from '../support/reference-corpus.js';
import { describeDiagnostics, istioDir, registryKinds, repoRoot, securityKinds, yamlFilesUnder } from './registry-helpers.js';

const ours = (kind: string | undefined): boolean => kind !== undefined && (registryKinds.has(kind) || securityKinds.has(kind));

/** Kinds of the documents in a file, as written. */
function kindsIn(file: string): string[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => (d.toJS() as { kind?: string } | null)?.kind)
    .filter((k): k is string => typeof k === 'string');
}

/**
 * The istio.io snippets are shell heredocs: the authz-ingress task's `$CLIENT_IP` is the
 * caller's address, filled in by the shell before kubectl sees it. Fill it in the same way.
 */
function expandShellVariables(text: string): string {
  return text.replaceAll('$CLIENT_IP', '192.0.2.10');
}

/** The files under `samples` and `istioIo` holding documents of these kinds. */
const filesOfOurKinds = (samples: string, istioIo: string): string[] => [...yamlFilesUnder(samples), ...yamlFilesUnder(istioIo)].filter((f) => kindsIn(f).some(ours));

function validatesWithoutErrors(file: string): void {
  const result = validateText(file, expandShellVariables(readFileSync(file, 'utf8')));
  const mine = result.diagnostics.filter((d) => ours(d.resource?.kind));
  const errors = mine.filter((d) => d.level === 'error');
  assert.equal(errors.length, 0, `expected no errors, got:\n${describeDiagnostics(mine)}`);
  const expected = kindsIn(file).filter(ours).length;
  const accepted = result.resources.filter((r) => ours(r.kind)).length;
  assert.equal(accepted, expected, 'every resource of these kinds is accepted');
}

describe('Istio samples and istio.io task YAML', () => {
  const files = filesOfOurKinds(fixtures.samples, path.join(istioDir, 'data/istio.io'));
  test('there are files with these kinds to check', () => {
    assert.ok(files.length >= 30, `only ${files.length} files`);
  });

  for (const file of files) test(path.relative(repoRoot, file), () => validatesWithoutErrors(file));

  test('an unexpanded shell variable in ipBlocks is reported, not accepted', async () => {
    const file = path.join(istioDir, 'data/istio.io/security/authorization/authz-ingress/snip_ipbased_allow_list_and_deny_list_15.yaml');
    const result = await validateInputs([file]);
    const error = result.diagnostics.find((d) => d.level === 'error');
    assert.equal(error?.path, 'spec.rules[0].from[0].source.ipBlocks[0]');
    assert.match(error?.message ?? '', /bad IP address \(\$CLIENT_IP\)/);
  });

  test('bookinfo.yaml: Services validate, ServiceAccounts and Deployments are skipped with a warning', async () => {
    const result = await validateInputs([path.join(fixtures.samples, 'bookinfo/platform/kube/bookinfo.yaml')]);
    const services = result.resources.filter((r) => r.kind === 'Service').map((r) => r.metadata.name);
    assert.deepEqual(services.sort(), ['details', 'productpage', 'ratings', 'reviews']);
    assert.equal(result.diagnostics.filter((d) => d.level === 'error').length, 0, describeDiagnostics(result.diagnostics));
    const skipped = result.diagnostics.filter((d) => d.code === 'SNW0014').map((d) => d.resource?.kind);
    assert.ok(skipped.includes('Deployment') && skipped.includes('ServiceAccount'), describeDiagnostics(result.diagnostics));
    assert.equal(result.skipped, skipped.length);
  });
});

test('every Istio sample and istio.io task YAML in the reference corpus validates without errors', { skip: referenceCorpus.skip }, async (t) => {
  const files = filesOfOurKinds(referenceCorpus.path('istio/data/istio/samples'), referenceCorpus.path('istio/data/istio.io'));
  assert.ok(files.length >= 30, `only ${files.length} files`);
  for (const file of files) await t.test(path.relative(referenceCorpus.path('istio'), file), () => validatesWithoutErrors(file));
});
