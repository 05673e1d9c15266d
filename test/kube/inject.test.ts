/**
 * Injection without a server: Istio's selection rules, the shape of what is added, and
 * `sinew kube-inject` on workload kinds. (The webhook against a real server: webhooks.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { injectDocument, injectionDecision, injectPod } from '../../src/kube/inject.js';
import { workloadNameOf } from '../../src/kube/objects.js';
import { installObjects, installValues } from '../../src/kube/install.js';
import { CONTROL_PLANE_NODE_FLAGS } from '../../src/core/node-flags.js';
import { CONTROL_PLANE_SERVICE } from '../../src/kube/defaults.js';
import { spawnSync } from 'node:child_process';

const settings = { image: 'sinew:test', controlPlane: 'sinew.sinew-system.svc:15010' };
const pod = (labels: Record<string, string> = {}, annotations: Record<string, string> = {}, spec: Record<string, unknown> = {}) => ({
  metadata: { name: 'p', labels, annotations },
  spec: { containers: [{ name: 'app', image: 'app:1' }], ...spec },
});

describe('injection: which pods (Istio injectRequired and the webhook selectors)', () => {
  const cases: [string, ReturnType<typeof pod>, Record<string, string>, boolean][] = [
    ['labelled namespace', pod(), { 'istio-injection': 'enabled' }, true],
    ['unlabelled namespace', pod(), {}, false],
    ['namespace disabled, pod asks', pod({ 'sidecar.istio.io/inject': 'true' }), { 'istio-injection': 'disabled' }, false],
    ['labelled namespace, pod opts out by label', pod({ 'sidecar.istio.io/inject': 'false' }), { 'istio-injection': 'enabled' }, false],
    ['labelled namespace, pod opts out by annotation', pod({}, { 'sidecar.istio.io/inject': 'false' }), { 'istio-injection': 'enabled' }, false],
    ['revision label on the namespace', pod(), { 'istio.io/rev': 'default' }, true],
    ['unlabelled namespace, pod opts in', pod({ 'sidecar.istio.io/inject': 'true' }), {}, true],
    ['host network', pod({}, {}, { hostNetwork: true }), { 'istio-injection': 'enabled' }, false],
    ['already injected', pod({}, { 'sidecar.istio.io/status': '{}' }), { 'istio-injection': 'enabled' }, false],
  ];
  for (const [name, p, nsLabels, expected] of cases) {
    it(`${name}: ${expected ? 'injected' : 'not injected'}`, () => assert.equal(injectionDecision(p, { name: 'apps', labels: nsLabels }).inject, expected));
  }
  it('never in kube-system or the control plane namespace', () => {
    assert.equal(injectionDecision(pod({ 'sidecar.istio.io/inject': 'true' }), { name: 'kube-system', labels: { 'istio-injection': 'enabled' } }).inject, false);
    assert.equal(injectionDecision(pod(), { name: 'sinew-system', labels: { 'istio-injection': 'enabled' } }).inject, false);
  });
});

describe('injection: what is added', () => {
  it('a native sidecar where the server runs them: an init container with restartPolicy Always, the app containers untouched', () => {
    const out = injectPod(pod(), { ...settings, nativeSidecars: true }, 'web');
    assert.deepEqual(out.spec.initContainers.map((c: any) => [c.name, c.restartPolicy]), [['istio-init', undefined], ['istio-proxy', 'Always']]);
    assert.deepEqual(out.spec.containers.map((c: any) => c.name), ['app']);
  });

  it('the proxy names its workload and the control plane, and runs as 1337; the init container only with NET_ADMIN and NET_RAW', () => {
    const out = injectPod(pod(), settings, 'web-v1');
    const proxy = out.spec.containers[0];
    assert.equal(proxy.securityContext.runAsUser, 1337);
    assert.ok(proxy.args.includes('sinew.sinew-system.svc:15010') && proxy.args.includes('--capture'));
    assert.deepEqual(proxy.env.find((e: any) => e.name === 'ISTIO_META_WORKLOAD_NAME'), { name: 'ISTIO_META_WORKLOAD_NAME', value: 'web-v1' });
    assert.deepEqual(out.spec.initContainers[0].securityContext.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
    assert.equal(out.metadata.labels['service.istio.io/canonical-name'], 'web-v1');
  });

  it("mounts Istio's istio-token (a projected service-account token for istio-ca) and the proxy presents it", () => {
    const out = injectPod(pod(), settings, 'web-v1');
    const proxy = out.spec.containers[0];
    assert.deepEqual(out.spec.volumes.find((v: any) => v.name === 'istio-token'), {
      name: 'istio-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] },
    });
    assert.ok(proxy.volumeMounts.some((m: any) => m.name === 'istio-token' && m.mountPath === '/var/run/secrets/tokens'));
    assert.equal(proxy.args[proxy.args.indexOf('--token-file') + 1], '/var/run/secrets/tokens/istio-token');
    assert.ok(JSON.parse(out.metadata.annotations['sidecar.istio.io/status']).volumes.includes('istio-token'));
  });

  it('leaves the input alone and keeps a pod that does not want metrics merged', () => {
    const input = pod({}, { 'prometheus.io/scrape': 'false' });
    const before = JSON.stringify(input);
    const out = injectPod(input, settings, 'p');
    assert.equal(JSON.stringify(input), before);
    assert.equal(out.metadata.annotations['prometheus.io/scrape'], 'false');
  });
});

describe('sinew kube-inject on workload kinds', () => {
  const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'reviews-v1' }, spec: { template: pod({ app: 'reviews' }) } };
  it('injects the pod template of a Deployment, naming the Deployment as the workload', () => {
    const { object, injected } = injectDocument(deployment, settings);
    assert.equal(injected, true);
    assert.equal((object as any).spec.template.spec.containers[0].env.find((e: any) => e.name === 'ISTIO_META_WORKLOAD_NAME').value, 'reviews-v1');
  });
  it('passes other documents through and leaves templates that opt out', () => {
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: {} };
    assert.deepEqual(injectDocument(service, settings), { object: service, injected: false, reason: 'Service has no pod template' });
    const optedOut = { ...deployment, spec: { template: pod({ 'sidecar.istio.io/inject': 'false' }) } };
    assert.equal(injectDocument(optedOut, settings).injected, false);
  });
});

describe('the workload a pod belongs to (Istio GetDeployMetaFromPod)', () => {
  it('a Deployment through its ReplicaSet, a CronJob through its Job, a bare pod by its name', () => {
    const owned = (kind: string, name: string, labels: Record<string, string>) => ({ metadata: { name: 'x', labels, ownerReferences: [{ kind, name, controller: true }] } });
    assert.equal(workloadNameOf(owned('ReplicaSet', 'reviews-v1-7d9c8b5f4', { 'pod-template-hash': '7d9c8b5f4' })), 'reviews-v1');
    assert.equal(workloadNameOf(owned('ReplicaSet', 'plain-rs', {})), 'plain-rs');
    assert.equal(workloadNameOf(owned('Job', 'backup-27890510', { 'job-name': 'backup-27890510' })), 'backup');
    assert.equal(workloadNameOf(owned('StatefulSet', 'db', {})), 'db');
    assert.equal(workloadNameOf({ metadata: { name: 'lonely' } }), 'lonely');
  });
});

describe('sinew install: what proxies authenticate with', () => {
  it("gives the control plane create on tokenreviews, and the gateway its own service account's istio-token", async () => {
    const objects: any[] = await installObjects(installValues([]));
    const role = objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'sinew-controlplane');
    assert.ok(role.rules.some((r: any) => r.apiGroups.includes('authentication.k8s.io') && r.resources.includes('tokenreviews') && r.verbs.includes('create')));
    const gateway = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'sinew-ingressgateway');
    const spec = gateway.spec.template.spec;
    assert.ok(objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === spec.serviceAccountName));
    assert.deepEqual(spec.volumes.find((v: any) => v.name === 'istio-token').projected.sources[0].serviceAccountToken.audience, 'istio-ca');
    const proxy = spec.containers[0];
    assert.equal(proxy.args[proxy.args.indexOf('--token-file') + 1], '/var/run/secrets/tokens/istio-token');
    assert.ok(proxy.env.some((e: any) => e.name === 'SERVICE_ACCOUNT' && e.valueFrom.fieldRef.fieldPath === 'spec.serviceAccountName'));
  });
});

describe('sinew install: the control plane process', () => {
  it('starts with the V8 flags `sinew up` gives its control plane, in a form node accepts from the environment', async () => {
    const objects: any[] = await installObjects(installValues([]));
    const controlPlane = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === CONTROL_PLANE_SERVICE).spec.template.spec.containers[0];
    const nodeOptions = controlPlane.env.find((e: any) => e.name === 'NODE_OPTIONS').value;
    assert.deepEqual(nodeOptions.split(' '), [...CONTROL_PLANE_NODE_FLAGS]);
    // node refuses to start on a flag NODE_OPTIONS may not carry; with these it starts, and V8
    // caps the young generation at two 2 MB semi-spaces (16 MB each by default).
    const probe = spawnSync(process.execPath, ['-e', "const s = require('v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space'); let a = []; for (let i = 0; i < 2e6; i++) { a.push({ i }); if (a.length > 1e5) a = []; } console.log(require('v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space').space_size)"], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8' });
    assert.equal(probe.status, 0, probe.stderr);
    assert.ok(Number(probe.stdout) <= 4 * 1024 * 1024, `new space ${probe.stdout.trim()} bytes`);
  });
});
