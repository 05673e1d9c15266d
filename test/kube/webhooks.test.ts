/**
 * The admission webhooks and `sinew install` against a real kube-apiserver v1.20: the
 * injector injects a pod created in a labelled namespace and not one in an unlabelled one,
 * and the pod it makes equals `sinew kube-inject` output created through the same server;
 * the validator refuses an invalid VirtualService with Sinew's errors; `sinew install` is
 * accepted by a server-side dry run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KubeApiError, type KubeClient } from '../../src/kube/api.js';
import { startWebhookServer, type WebhookServer } from '../../src/kube/webhook.js';
import { clusterInjectSettings } from '../../src/cli/kube-controlplane.js';
import { installObjects, installValues, toYaml } from '../../src/kube/install.js';
import { runKubeInject, parseYamlDocuments } from '../../src/cli/kube-commands.js';
import { clusterSkip, kubectlPath, startCluster, type TestCluster } from './support/cluster.js';
import { clientFor, collectionPath, installCrds } from './support/objects.js';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));

const appPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', labels: { app: 'web', version: 'v1' }, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9100' } },
  spec: {
    // Named, as the ServiceAccount admission plugin names "default" on a real server: this one
    // runs without it, and a projected service-account token (the injected istio-token
    // volume) is refused in a pod that names no service account.
    serviceAccountName: 'default',
    containers: [
      {
        name: 'web',
        image: 'example/web:1',
        ports: [{ name: 'http', containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5 },
      },
    ],
  },
};

describe('admission webhooks and install on a real Kubernetes API server', { skip: clusterSkip }, () => {
  let cluster: TestCluster;
  let client: KubeClient;
  let webhook: WebhookServer;
  let dir: string;

  before(async () => {
    cluster = await startCluster();
    client = clientFor(cluster);
    dir = await mkdtemp(join(tmpdir(), 'sinew-inject-'));
    await installCrds(client);
    const settings = await clusterInjectSettings(client, { image: 'sinew:test', controlPlane: 'sinew.sinew-system.svc:15010' });
    webhook = await startWebhookServer({
      port: 0,
      host: '127.0.0.1',
      certPem: await readFile(join(cluster.pki, 'webhook.crt'), 'utf8'),
      keyPem: await readFile(join(cluster.pki, 'webhook.key'), 'utf8'),
      inject: settings,
      namespaceLabels: async (name) => (await client.get<{ metadata: { labels?: Record<string, string> } }>(`/api/v1/namespaces/${name}`)).metadata.labels,
    });
    // The webhook configurations `sinew install` makes, pointed at this test's server.
    const caBundle = Buffer.from(await readFile(join(cluster.pki, 'ca.crt'))).toString('base64');
    const url = `https://127.0.0.1:${webhook.address().port}`;
    for (const o of await installObjects(installValues([]))) {
      if (o.kind !== 'MutatingWebhookConfiguration' && o.kind !== 'ValidatingWebhookConfiguration') continue;
      const webhooks = (o.webhooks as any[]).map((w) => ({ ...w, clientConfig: { url: url + w.clientConfig.service.path, caBundle } }));
      const plural = o.kind === 'MutatingWebhookConfiguration' ? 'mutatingwebhookconfigurations' : 'validatingwebhookconfigurations';
      await client.request('POST', `/apis/admissionregistration.k8s.io/v1/${plural}`, { body: { ...o, webhooks } });
    }
    for (const [name, labels] of [['injected', { 'istio-injection': 'enabled' }], ['plain', {}]] as const) {
      await client.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } } });
    }
  });

  after(async () => {
    await webhook?.close();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('injects a pod created in a namespace labelled istio-injection=enabled, and not one in an unlabelled namespace', async () => {
    const injected = await client.request<any>('POST', '/api/v1/namespaces/injected/pods', { body: appPod });
    const plain = await client.request<any>('POST', '/api/v1/namespaces/plain/pods', { body: appPod });
    assert.deepEqual(injected.spec.containers.map((c: any) => c.name), ['istio-proxy', 'web'], 'the proxy first, the app held behind it (v1.20 has no native sidecars)');
    assert.deepEqual(injected.spec.initContainers.map((c: any) => c.name), ['istio-init']);
    assert.deepEqual(injected.spec.initContainers[0].args.slice(0, 7), ['iptables', '-p', '15001', '-z', '15006', '-u', '1337']);
    assert.deepEqual(injected.spec.containers[1].readinessProbe.httpGet, { path: '/app-health/web/readyz', port: 15021, scheme: 'HTTP' });
    assert.equal(injected.metadata.annotations['prometheus.io/port'], '15020');
    assert.ok(injected.spec.containers[0].args.includes('http://127.0.0.1:9100/metrics'), 'the app\'s own metrics are merged');
    assert.deepEqual(JSON.parse(injected.metadata.annotations['sidecar.istio.io/status']).containers, ['istio-proxy']);
    assert.deepEqual(plain.spec.containers.map((c: any) => c.name), ['web']);
    assert.equal(plain.spec.initContainers, undefined);
    assert.equal(plain.metadata.annotations['sidecar.istio.io/status'], undefined);
  });

  it('the injected pod equals sinew kube-inject output created through the same server', async () => {
    const input = join(dir, 'pod.yaml');
    await writeFile(input, stringify(appPod));
    let out = '';
    const code = await runKubeInject({ filename: [input], image: 'sinew:test', controlPlane: 'sinew.sinew-system.svc:15010' }, { out: (t) => (out += t), err: () => {} });
    assert.equal(code, 0);
    const [offline] = parseYamlDocuments(out) as any[];
    // The server's defaults applied to both: created in a namespace the injector leaves alone.
    const viaServer = await client.request<any>('POST', '/api/v1/namespaces/plain/pods', { query: { dryRun: 'All' }, body: { ...offline, metadata: { ...offline.metadata, name: 'web-offline' } } });
    const webhookPod = await client.get<any>('/api/v1/namespaces/injected/pods/web');
    for (const field of ['initContainers', 'containers', 'volumes'] as const) assert.deepEqual(viaServer.spec[field], webhookPod.spec[field], field);
    assert.deepEqual(viaServer.metadata.labels, webhookPod.metadata.labels);
    assert.deepEqual(viaServer.metadata.annotations, webhookPod.metadata.annotations);
  });

  it('refuses an invalid VirtualService with every error, and accepts a valid one', async () => {
    const bad = { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'plain' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { hosts: 'reviews' }, weight: -1 }] }] } };
    const refused = await client.request('POST', collectionPath(bad), { body: bad }).then(() => undefined, (err: unknown) => err);
    assert.ok(refused instanceof KubeApiError, 'the server refused it');
    assert.match(refused.message, /denied the request: sinew refuses VirtualService/);
    assert.match(refused.message, /SNW0104.*hosts/);
    const good = { ...bad, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] } };
    await client.request('POST', collectionPath(good), { body: good });
    assert.ok(webhook.calls['/validate']! >= 2);
  });
});

describe('sinew install and sinew controlplane --kubernetes on a fresh Kubernetes API server', { skip: clusterSkip }, () => {
  let cluster: TestCluster;
  let client: KubeClient;
  before(async () => {
    cluster = await startCluster();
    client = clientFor(cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('sinew install is accepted by a server-side dry run', async () => {
    const objects = await installObjects(installValues(['replicas=2']));
    // Namespaced objects need their namespace to exist, even in a dry run.
    await client.request('POST', '/api/v1/namespaces', { body: objects[0] });
    if (kubectlPath) {
      const printed = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], toYaml(objects));
      assert.equal(printed.trim().split('\n').length, objects.length, printed);
      assert.match(printed, /deployment.apps\/sinew created \(server dry run\)/);
    } else {
      for (const o of objects.slice(1)) {
        const path = apiPath(o);
        await client.request('POST', path, { query: { dryRun: 'All' }, body: o });
      }
    }
  });

  it('sinew controlplane --kubernetes lists the cluster, says what it watches, and stops on SIGTERM', async () => {
    // The control plane keeps the mesh key in a Secret of its namespace (sinew install makes it).
    await client.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sinew-system' } } }).catch((err: unknown) => {
      if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
    });
    const child = spawn(process.execPath, [join(repo, 'bin/sinew.js'), 'controlplane', '--kubernetes', '--kubeconfig', cluster.kubeconfig, '--api-port', '0', '--push-port', '0', '--monitoring-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', () => {});
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const deadline = Date.now() + 60_000;
      while (!/control plane: api /.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no start line; output: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(out, new RegExp(`kubernetes: https://127\\.0\\.0\\.1:${cluster.apiPort}, watching \\d+ kinds`));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

function apiPath(o: Record<string, any>): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const plural: Record<string, string> = {
    CustomResourceDefinition: 'customresourcedefinitions', ServiceAccount: 'serviceaccounts', ClusterRole: 'clusterroles', ClusterRoleBinding: 'clusterrolebindings',
    Role: 'roles', RoleBinding: 'rolebindings', Secret: 'secrets', Deployment: 'deployments', Service: 'services',
    MutatingWebhookConfiguration: 'mutatingwebhookconfigurations', ValidatingWebhookConfiguration: 'validatingwebhookconfigurations', Namespace: 'namespaces',
  };
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const ns = o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : '';
  return `${base}${ns}/${plural[o.kind]}`;
}
