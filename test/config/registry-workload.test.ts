/**
 * Sinew's own Workload kind (sinew.dev/v1alpha1) and the Kubernetes Service rules the
 * registry relies on: a valid example passes, and each rule rejects what it should, at the
 * field at fault.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateText } from '../../src/config/validate.js';
import { workloadReplicas, type WorkloadSpec } from '../../src/api/resources/workload.js';
import type { Diagnostic } from '../../src/api/diagnostics.js';
import { describeDiagnostics } from './registry-helpers.js';

const validWorkload = `
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata:
  name: reviews-v1
  namespace: bookinfo
  labels:
    app: reviews
    version: v1
spec:
  command: [node, reviews.js]
  args: [--verbose]
  env:
  - name: LOG_LEVEL
    value: info
  ports:
  - name: http
    containerPort: 9080
  replicas: 2
  serviceAccount: bookinfo-reviews
  workingDir: ./apps/reviews
  readinessProbe:
    httpGet:
      path: /health
      port: http
    periodSeconds: 5
    failureThreshold: 3
`;

/** The valid workload with `spec` lines replaced. */
function workloadWith(spec: string): string {
  return `apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata:
  name: w
  labels: {app: w}
spec:
${spec.replace(/^\n/, '').replace(/^/gm, '  ')}`;
}

function errorsOf(text: string): Diagnostic[] {
  return validateText('workload.yaml', text).diagnostics.filter((d) => d.level === 'error');
}

function expectError(text: string, path: string, code: string, words: RegExp): void {
  const r = validateText('test.yaml', text);
  const found = r.diagnostics.find((d) => d.level === 'error' && d.path === path && d.code === code && words.test(d.message));
  assert.ok(found, `expected ${code} at ${path} matching ${words}, got:\n${describeDiagnostics(r.diagnostics)}`);
  assert.equal(r.resources.length, 0);
}

describe('Workload', () => {
  test('a complete workload validates and keeps its fields', () => {
    const r = validateText('reviews.yaml', validWorkload);
    assert.equal(r.diagnostics.length, 0, describeDiagnostics(r.diagnostics));
    const spec = r.resources[0].spec as WorkloadSpec;
    assert.deepEqual(spec.command, ['node', 'reviews.js']);
    assert.equal(workloadReplicas(spec), 2);
    assert.equal(r.resources[0].metadata.labels?.app, 'reviews');
  });

  test('replicas default to 1', () => {
    const r = validateText('w.yaml', workloadWith('command: [./server]'));
    assert.equal(r.diagnostics.length, 0, describeDiagnostics(r.diagnostics));
    assert.equal(workloadReplicas(r.resources[0].spec as WorkloadSpec), 1);
  });

  test('command is required and must not be empty', () => {
    expectError(workloadWith('ports: [{containerPort: 80}]'), 'spec.command', 'SNW0102', /required/);
    expectError(workloadWith('command: []'), 'spec.command', 'SNW0340', /must not be empty/);
    expectError(workloadWith("command: ['']"), 'spec.command[0]', 'SNW0340', /program/);
  });

  test('containerPort must be a valid, unique port', () => {
    expectError(workloadWith('command: [x]\nports: [{containerPort: 0}]'), 'spec.ports[0].containerPort', 'SNW0341', /1\.\.65535/);
    expectError(workloadWith('command: [x]\nports: [{containerPort: 70000}]'), 'spec.ports[0].containerPort', 'SNW0341', /1\.\.65535/);
    expectError(workloadWith('command: [x]\nports: [{containerPort: 80}, {containerPort: 80}]'), 'spec.ports[1].containerPort', 'SNW0341', /twice/);
    expectError(workloadWith('command: [x]\nports: [{name: a, containerPort: 80}, {name: a, containerPort: 81}]'), 'spec.ports[1].name', 'SNW0341', /used twice/);
    expectError(workloadWith('command: [x]\nports: [{name: Web_Port, containerPort: 80}]'), 'spec.ports[0].name', 'SNW0341', /lower-case/);
    expectError(workloadWith('command: [x]\nports: [{port: 80}]'), 'spec.ports[0].containerPort', 'SNW0102', /required/);
  });

  test('the probe port must be one of the workload ports, by number or by name', () => {
    const ports = 'command: [x]\nports: [{name: http, containerPort: 8080}]\n';
    expectError(workloadWith(`${ports}readinessProbe: {tcpSocket: {port: 9090}}`), 'spec.readinessProbe.tcpSocket.port', 'SNW0342', /not a containerPort/);
    expectError(workloadWith(`${ports}readinessProbe: {httpGet: {port: metrics}}`), 'spec.readinessProbe.httpGet.port', 'SNW0342', /does not name a port/);
    expectError(workloadWith(`${ports}readinessProbe: {httpGet: {port: 0}}`), 'spec.readinessProbe.httpGet.port', 'SNW0325', /1\.\.65535/);
    assert.deepEqual(errorsOf(workloadWith(`${ports}readinessProbe: {tcpSocket: {port: 8080}}`)), []);
  });

  test('the probe needs exactly one handler, non-negative timings, and no exec', () => {
    const ports = 'command: [x]\nports: [{containerPort: 8080}]\n';
    expectError(workloadWith(`${ports}readinessProbe: {periodSeconds: 5}`), 'spec.readinessProbe', 'SNW0325', /httpGet or tcpSocket/);
    expectError(
      workloadWith(`${ports}readinessProbe: {httpGet: {port: 8080}, tcpSocket: {port: 8080}}`),
      'spec.readinessProbe',
      'SNW0325',
      /only one/,
    );
    expectError(workloadWith(`${ports}readinessProbe: {tcpSocket: {port: 8080}, timeoutSeconds: -1}`), 'spec.readinessProbe.timeoutSeconds', 'SNW0346', /non-negative/);
    expectError(workloadWith(`${ports}readinessProbe: {exec: {command: [true]}}`), 'spec.readinessProbe.exec', 'SNW0104', /unknown field "exec"/);
    expectError(workloadWith(`${ports}readinessProbe: {httpGet: {port: 8080, path: health}}`), 'spec.readinessProbe.httpGet.path', 'SNW0325', /start with/);
  });

  test('replicas must be 0 or more', () => {
    expectError(workloadWith('command: [x]\nreplicas: -1'), 'spec.replicas', 'SNW0343', /0 or more/);
    assert.deepEqual(errorsOf(workloadWith('command: [x]\nreplicas: 0')), []);
  });

  test('env names must be usable and unique; runner variables draw a warning', () => {
    expectError(workloadWith("command: [x]\nenv: [{name: '', value: a}]"), 'spec.env[0].name', 'SNW0344', /non-empty/);
    expectError(workloadWith('command: [x]\nenv: [{name: A=B}]'), 'spec.env[0].name', 'SNW0344', /=/);
    expectError(workloadWith('command: [x]\nenv: [{name: A}, {name: A}]'), 'spec.env[1].name', 'SNW0344', /twice/);
    const r = validateText('w.yaml', workloadWith("command: [x]\nenv: [{name: PORT, value: '1'}]"));
    assert.equal(r.resources.length, 1);
    assert.ok(r.diagnostics.some((d) => d.level === 'warning' && d.code === 'SNW0345' && d.path === 'spec.env[0].name'), describeDiagnostics(r.diagnostics));
  });

  // Regression (port_n_env_not_reserved): PORT_<containerPort> and the lower-case and
  // HTTPS/gRPC proxy variables were replaced by the runner without a word.
  test('PORT_<n> of one of its containerPorts, and every proxy variable, draw the same warning; PORT_<n> of another port does not', () => {
    const r = validateText(
      'w.yaml',
      workloadWith("command: [x]\nports: [{name: http, containerPort: 9080}, {name: grpc, containerPort: 9090}]\nenv: [{name: PORT_9090, value: '1'}, {name: PORT_8000, value: '2'}, {name: https_proxy, value: x}, {name: grpc_proxy, value: y}]"),
    );
    assert.deepEqual(
      r.diagnostics.filter((d) => d.code === 'SNW0345').map((d) => d.path),
      ['spec.env[0].name', 'spec.env[2].name', 'spec.env[3].name'],
      describeDiagnostics(r.diagnostics),
    );
    assert.match(r.diagnostics.find((d) => d.path === 'spec.env[0].name')!.message, /containerPort 9090/);
  });

  test('labels belong in metadata: spec.labels is an unknown field', () => {
    expectError(workloadWith('command: [x]\nlabels: {app: w}'), 'spec.labels', 'SNW0104', /unknown field "labels"/);
  });

  test('a misspelt field gets a suggestion', () => {
    expectError(workloadWith('comand: [x]'), 'spec.comand', 'SNW0104', /did you mean "command"/);
    expectError(workloadWith('command: [x]\nports: [{containerPort: 80, protocol: tcp}]'), 'spec.ports[0].protocol', 'SNW0103', /did you mean "TCP"/);
  });

  test('serviceAccount must be a DNS subdomain', () => {
    expectError(workloadWith('command: [x]\nserviceAccount: My_SA'), 'spec.serviceAccount', 'SNW0347', /DNS-1123/);
  });
});

const service = (spec: string): string => `apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
${spec.replace(/^\n/, '').replace(/^/gm, '  ')}`;

describe('Kubernetes Service', () => {
  test('a typical Service (with kubectl-added fields and status) validates', () => {
    const r = validateText(
      'svc.yaml',
      `${service(`
selector: {app: reviews}
clusterIP: 10.96.0.12
sessionAffinity: None
ipFamilies: [IPv4]
ports:
- name: http
  port: 9080
  targetPort: 9080
  protocol: TCP
  appProtocol: http
- name: grpc
  port: 9090
  targetPort: grpc-web`)}
status:
  loadBalancer: {}
`,
    );
    assert.equal(r.diagnostics.length, 0, describeDiagnostics(r.diagnostics));
    assert.equal(r.resources.length, 1);
  });

  test('port numbers are checked', () => {
    expectError(service('selector: {app: r}\nports: [{port: 0}]'), 'spec.ports[0].port', 'SNW0330', /1\.\.65535/);
    expectError(service('selector: {app: r}\nports: [{port: 80, targetPort: 70000}]'), 'spec.ports[0].targetPort', 'SNW0330', /1\.\.65535/);
    expectError(service('selector: {app: r}\nports: [{port: 80, targetPort: Not_A_Name}]'), 'spec.ports[0].targetPort', 'SNW0330', /lower-case/);
  });

  test('with several ports every port needs a unique name', () => {
    expectError(service('selector: {app: r}\nports: [{name: a, port: 80}, {port: 81}]'), 'spec.ports[1].name', 'SNW0331', /required/);
    expectError(service('selector: {app: r}\nports: [{name: a, port: 80}, {name: a, port: 81}]'), 'spec.ports[1].name', 'SNW0331', /twice/);
    expectError(service('selector: {app: r}\nports: [{name: a, port: 80}, {name: b, port: 80}]'), 'spec.ports[1]', 'SNW0332', /twice/);
    assert.deepEqual(errorsOf(service('selector: {app: r}\nports: [{port: 80}]')), []);
  });

  test('fields inside ports are strict; the rest of the spec is open', () => {
    expectError(service('selector: {app: r}\nports: [{port: 80, tagetPort: 8080}]'), 'spec.ports[0].tagetPort', 'SNW0104', /did you mean "targetPort"/);
    expectError(service('selector: {app: r}\nports: [{port: 80, protocol: HTTP}]'), 'spec.ports[0].protocol', 'SNW0103', /TCP, UDP, SCTP/);
    assert.deepEqual(errorsOf(service('selector: {app: r}\nports: [{port: 80}]\nhealthCheckNodePort: 0')), []);
  });

  test('type rules: nodePort needs NodePort or LoadBalancer, ExternalName needs a name', () => {
    expectError(service('selector: {app: r}\nports: [{port: 80, nodePort: 30080}]'), 'spec.ports[0].nodePort', 'SNW0330', /ClusterIP/);
    assert.deepEqual(errorsOf(service('type: NodePort\nselector: {app: r}\nports: [{port: 80, nodePort: 30080}]')), []);
    expectError(service('type: ExternalName'), 'spec.externalName', 'SNW0333', /externalName/);
    assert.deepEqual(errorsOf(service('type: ExternalName\nexternalName: db.example.com')), []);
    expectError(service('type: Headless\nports: [{port: 80}]'), 'spec.type', 'SNW0103', /ClusterIP/);
  });

  test('a Service needs ports unless headless or ExternalName', () => {
    expectError(service('selector: {app: r}'), 'spec.ports', 'SNW0330', /at least one port/);
    assert.deepEqual(errorsOf(service('clusterIP: None\nselector: {app: r}')), []);
  });

  test('a Namespace validates', () => {
    const r = validateText('ns.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n  labels: {istio-injection: enabled}\n');
    assert.equal(r.diagnostics.length, 0, describeDiagnostics(r.diagnostics));
    assert.equal(r.resources[0].metadata.namespace, '');
  });
});
