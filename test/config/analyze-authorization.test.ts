/**
 * `sinew analyze` on AuthorizationPolicies: Kiali's checks (a namespace, principal or host
 * that is not in the mesh) and HTTP-only fields on a TCP-only workload, each with a case that
 * must be reported and one that must not.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze } from '../../src/config/analyze/index.js';
import { validateText } from '../../src/config/validate.js';

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
---
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: httpbin, namespace: foo, labels: {app: httpbin}}
spec: {command: [node, httpbin.js], serviceAccount: httpbin, ports: [{name: http, containerPort: 80}]}
---
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: sleep, namespace: bar, labels: {app: sleep}}
spec: {command: [node, sleep.js], serviceAccount: sleep}
---
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: foo}
spec:
  selector: {app: tcp-echo}
  ports: [{name: tcp, port: 9000}]
---
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: tcp-echo, namespace: foo, labels: {app: tcp-echo}}
spec: {command: [node, tcp-echo.js], ports: [{name: tcp, containerPort: 9000}]}
`;

function findings(policy: string): [string, string | undefined][] {
  const result = validateText('input.yaml', `${MESH}---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\nspec:\n${policy.replace(/^/gm, '  ')}\n`);
  assert.deepEqual(result.diagnostics.filter((d) => d.level === 'error'), []);
  return analyze(result.resources)
    .filter((d) => ['SNW1015', 'SNW1016', 'SNW1017', 'SNW1018'].includes(d.code))
    .map((d) => [d.code, d.path]);
}

describe('sinew analyze: AuthorizationPolicy', () => {
  test('SNW1015: a source namespace with nothing in it', () => {
    assert.deepEqual(findings('rules: [{from: [{source: {namespaces: [bar, baz, "prod-*"]}}]}]'), [['SNW1015', 'spec.rules[0].from[0].source.namespaces[1]']]);
    assert.deepEqual(findings('rules: [{when: [{key: source.namespace, values: [nowhere]}]}]'), [['SNW1015', 'spec.rules[0].when[0].values[0]']]);
    assert.deepEqual(findings('rules: [{from: [{source: {namespaces: [bar, istio-system]}}]}]'), []);
  });

  test('SNW1016: a principal no Workload runs as', () => {
    assert.deepEqual(findings('rules: [{from: [{source: {principals: ["cluster.local/ns/bar/sa/sleep", "cluster.local/ns/bar/sa/curl", "*/sa/anything"]}}]}]'), [['SNW1016', 'spec.rules[0].from[0].source.principals[1]']]);
  });

  test('SNW1017: a host not in the mesh', () => {
    assert.deepEqual(findings('rules: [{to: [{operation: {hosts: ["httpbin.foo", "httpbin.foo:8000", "HTTPBIN.foo.svc.cluster.local", "nothing.example.com"]}}]}]'), [['SNW1017', 'spec.rules[0].to[0].operation.hosts[3]']]);
  });

  test('SNW1018: methods on a TCP-only workload, not on an HTTP one', () => {
    assert.deepEqual(findings('selector: {matchLabels: {app: tcp-echo}}\nrules: [{to: [{operation: {ports: ["9000"], methods: [GET]}}]}]'), [['SNW1018', 'spec.rules[0].to[0].operation.methods']]);
    assert.deepEqual(findings('selector: {matchLabels: {app: tcp-echo}}\nrules: [{to: [{operation: {ports: ["9000"]}}]}]'), []);
    assert.deepEqual(findings('selector: {matchLabels: {app: httpbin}}\nrules: [{to: [{operation: {methods: [GET]}}]}]'), []);
  });
});
