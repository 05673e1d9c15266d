/**
 * Oracle 3: every ServiceEntry, WorkloadEntry, WorkloadGroup, PeerAuthentication,
 * AuthorizationPolicy, RequestAuthentication, Telemetry, Service and Namespace in Istio's
 * samples and in the YAML the istio.io tasks apply validates without errors. Other kinds in
 * the same files (VirtualService, ... and Deployments) are another suite's concern here.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { validateInputs, validateText } from '../../src/config/validate.js';
import { describeDiagnostics, istioDir, registryKinds, securityKinds, yamlFilesUnder } from './registry-helpers.js';

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

const files = [...yamlFilesUnder(path.join(istioDir, 'data/istio/samples')), ...yamlFilesUnder(path.join(istioDir, 'data/istio.io'))].filter((f) =>
  kindsIn(f).some(ours),
);

describe('Istio samples and istio.io task YAML', () => {
  test('there are files with these kinds to check', () => {
    assert.ok(files.length >= 30, `only ${files.length} files`);
  });

  for (const file of files) {
    test(path.relative(istioDir, file), () => {
      const result = validateText(file, expandShellVariables(readFileSync(file, 'utf8')));
      const mine = result.diagnostics.filter((d) => ours(d.resource?.kind));
      const errors = mine.filter((d) => d.level === 'error');
      assert.equal(errors.length, 0, `expected no errors, got:\n${describeDiagnostics(mine)}`);
      const expected = kindsIn(file).filter(ours).length;
      const accepted = result.resources.filter((r) => ours(r.kind)).length;
      assert.equal(accepted, expected, 'every resource of these kinds is accepted');
    });
  }

  test('an unexpanded shell variable in ipBlocks is reported, not accepted', async () => {
    const file = path.join(istioDir, 'data/istio.io/security/authorization/authz-ingress/snip_ipbased_allow_list_and_deny_list_15.yaml');
    const result = await validateInputs([file]);
    const error = result.diagnostics.find((d) => d.level === 'error');
    assert.equal(error?.path, 'spec.rules[0].from[0].source.ipBlocks[0]');
    assert.match(error?.message ?? '', /bad IP address \(\$CLIENT_IP\)/);
  });

  test('bookinfo.yaml: Services validate, ServiceAccounts and Deployments are skipped with a warning', async () => {
    const result = await validateInputs([path.join(istioDir, 'data/istio/samples/bookinfo/platform/kube/bookinfo.yaml')]);
    const services = result.resources.filter((r) => r.kind === 'Service').map((r) => r.metadata.name);
    assert.deepEqual(services.sort(), ['details', 'productpage', 'ratings', 'reviews']);
    assert.equal(result.diagnostics.filter((d) => d.level === 'error').length, 0, describeDiagnostics(result.diagnostics));
    const skipped = result.diagnostics.filter((d) => d.code === 'SNW0014').map((d) => d.resource?.kind);
    assert.ok(skipped.includes('Deployment') && skipped.includes('ServiceAccount'), describeDiagnostics(result.diagnostics));
    assert.equal(result.skipped, skipped.length);
  });
});
