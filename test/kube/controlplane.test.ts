/**
 * The control plane in Kubernetes mode against a real kube-apiserver v1.20 (with etcd):
 * Bookinfo's Services and pods become endpoints; an apply of Bookinfo's networking rules with
 * kubectl reaches a proxy's config within 1 s; an invalid resource is refused and the last
 * good one stays; a watch that falls out of etcd's history (410 Gone) is recovered by a fresh
 * list; a restarted control plane pushes nothing to a proxy that holds the current config.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { PushClient } from '../../src/xds/client.js';
import { startKubeControlPlane, type KubeControlPlane } from '../../src/cli/kube-controlplane.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/api.js';
import { Watch } from '@kubernetes/client-node';
import { clusterSkip, freePort, startCluster, type TestCluster } from './support/cluster.js';
import { applyObjects, clientFor, createBookinfo, createPod, createServiceAccount, installCrds, installGatewayApiCrds, kubectlApply, requestServiceAccountToken, setPodStatus, startRelay, until } from './support/objects.js';
import { fixtures } from '../support/reference-corpus.js';
import { b64, makeCa, makeServerCertificate } from '../support/tls.js';
import { kindKey } from '../../src/api/resources/index.js';
import { GATEWAY_API_GROUP } from '../../src/kube/objects.js';
import { splitPemCertificates, summarizeCertificate } from '../../src/core/pki/certificate-info.js';
import { generateKeyAndCsr } from '../../src/core/pki/workload-key.js';
import { opensslVerify } from '../ca/support.js';
import { generateSigningFiles } from '../../src/ca/authority.js';

const NS = 'default';
const productpage: ProxyNode = { id: `sidecar~productpage-v1-7d9c8b5f4-abcde.${NS}`, mode: 'sidecar', workload: 'productpage-v1', namespace: NS, labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'bookinfo-productpage' };
const REVIEWS = `reviews.${NS}.svc.cluster.local`;

function reviewsRoute(config: ProxyConfig | undefined): string[] {
  const table = config?.routeConfigs.find((rc) => rc.name === '9080');
  const vhost = table?.virtualHosts.find((vh) => vh.domains.includes(REVIEWS));
  const action = vhost?.routes[0]?.action;
  return action?.kind === 'route' ? action.destinations.map((d) => d.cluster) : [];
}

function endpointsOf(config: ProxyConfig | undefined, cluster: string): string[] {
  return (config?.endpoints.find((e) => e.clusterName === cluster)?.endpoints ?? []).map((e) => `${e.address.host}:${e.address.port}`).sort();
}

describe('control plane on a real Kubernetes API server', { skip: clusterSkip }, () => {
  let cluster: TestCluster;
  let client: KubeClient;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let kube: KubeControlPlane | undefined;
  let proxy: PushClient | undefined;
  let latest: ProxyConfig | undefined;
  let pushes = 0;
  let pushPort: number;

  before(async () => {
    // The watch cache off: watches are served by etcd, whose compaction the 410 test uses.
    cluster = await startCluster({ apiExtraArgs: ['--watch-cache=false'] });
    client = clientFor(cluster);
    await installCrds(client);
    await installGatewayApiCrds(client);
    // A node (no kubelet: just the object) whose topology labels give its pods their locality.
    await client.request('POST', '/api/v1/nodes', { body: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/region': 'eu-west', 'topology.kubernetes.io/zone': 'eu-west-2b' } } } });
    await createBookinfo(client, NS, 'node-a');
    // The control plane reaches the API server through a relay the 410 test can cut.
    relay = await startRelay(cluster.apiPort);
    const relayed = join(cluster.dir, 'kubeconfig-relay');
    await writeFile(relayed, (await import('node:fs')).readFileSync(cluster.kubeconfig, 'utf8').replace(`127.0.0.1:${cluster.apiPort}`, `127.0.0.1:${relay.port}`));
    pushPort = await freePort();
    kube = await startKubeControlPlane({ client: new KubeClient(loadKubeConfig({ kubeconfig: relayed })), apiPort: 0, pushPort, monitoringPort: 0, collectTraces: false, debounceMs: 20, backoff: { initialMs: 50, maxMs: 200 }, pageSize: 2 });
    // The proxy presents its pod's service-account token, as an injected one does; it stays
    // valid across a restart of the control plane (the last test).
    const token = await requestServiceAccountToken(client, NS, 'bookinfo-productpage', { pod: 'productpage-v1-7d9c8b5f4-abcde' });
    proxy = new PushClient({ host: '127.0.0.1', port: pushPort, node: productpage, credential: token, apply: (c) => void (latest = c), backoff: { initialMs: 20, maxMs: 100 } });
    proxy.on('config', () => pushes++);
    proxy.start();
    await until(() => latest !== undefined, 10_000, 'the first config');
  });

  after(async () => {
    await proxy?.close();
    await kube?.close();
    await relay?.close();
    await cluster?.stop();
  });

  // Regression (paginated lists read only their first page): with two objects a page, the six
  // pods and four Services span several pages; the server names the next page in
  // `metadata.continue`.
  it('turns Services and pods into endpoints named after their Deployment, with the pod IPs, from every page of the lists', () => {
    assert.deepEqual(endpointsOf(latest, `outbound|9080||${REVIEWS}`), ['10.244.0.13:9080', '10.244.0.14:9080', '10.244.0.15:9080']);
    const ep = latest!.endpoints.find((e) => e.clusterName === `outbound|9080||${REVIEWS}`)!.endpoints.find((e) => e.address.host === '10.244.0.14');
    assert.deepEqual(ep?.workload, { name: 'reviews-v2', namespace: NS });
    assert.equal(ep?.labels.version, 'v2');
    assert.equal(ep?.locality, 'eu-west/eu-west-2b', "the node's topology labels");
    assert.deepEqual(reviewsRoute(latest), [`outbound|9080||${REVIEWS}`]);
  });

  it("a gateway pod's router serves the Gateway's servers on the pod's addresses, 80 moved to 8080", async () => {
    await createServiceAccount(client, NS, 'gw');
    await createPod(client, NS, { name: 'gw-7d9c8b5f4-abcde', workload: 'gw', labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' }, ip: '10.244.0.20', serviceAccount: 'gw' });
    await kubectlApply(cluster, join(fixtures.samples, 'bookinfo/networking/bookinfo-gateway.yaml'));
    let gatewayConfig: ProxyConfig | undefined;
    const token = await requestServiceAccountToken(client, NS, 'gw', { pod: 'gw-7d9c8b5f4-abcde' });
    const router = new PushClient({ host: '127.0.0.1', port: pushPort, node: { id: `router~gw-7d9c8b5f4-abcde.${NS}`, mode: 'router', workload: 'gw', namespace: NS, labels: { istio: 'ingressgateway' }, serviceAccount: 'gw' }, credential: token, apply: (c) => void (gatewayConfig = c), backoff: { initialMs: 20, maxMs: 100 } });
    router.start();
    try {
      await until(() => (gatewayConfig?.listeners ?? []).some((l) => l.direction === 'gateway'), 10_000, "the gateway's listener");
      assert.deepEqual(gatewayConfig!.listeners.filter((l) => l.direction === 'gateway').map((l) => l.address), [{ host: '0.0.0.0', port: 8080 }]);
    } finally {
      await router.close();
    }
  });

  it('a pod that turns unready leaves the endpoints healthy set', async () => {
    await setPodStatus(client, NS, 'reviews-v3-7d9c8b5f4-abcde', '10.244.0.15', false);
    await until(() => latest!.endpoints.find((e) => e.clusterName === `outbound|9080||${REVIEWS}`)!.endpoints.find((e) => e.address.host === '10.244.0.15')?.health === 'UNHEALTHY', 10_000, 'reviews-v3 unhealthy');
    await setPodStatus(client, NS, 'reviews-v3-7d9c8b5f4-abcde', '10.244.0.15', true);
  });

  it("an apply of Bookinfo's rules with kubectl reaches the proxy's config within 1 s", async () => {
    await kubectlApply(cluster, join(fixtures.samples, 'bookinfo/networking/destination-rule-all.yaml'));
    await until(() => (latest?.clusters ?? []).some((c) => c.name === `outbound|9080|v1|${REVIEWS}`), 10_000, 'the subsets');
    // The clock starts when the API server has the change (a bare watch in this process hears
    // it), not when kubectl starts: kubectl's own start-up and discovery are not the mesh's,
    // and on a loaded machine they alone can take a second.
    let accepted = 0;
    const watch = await new Watch(client.config).watch(`/apis/networking.istio.io/v1beta1/namespaces/${NS}/virtualservices`, {}, (type: string, obj: { metadata?: { name?: string } }) => {
      if (type === 'ADDED' && obj.metadata?.name === 'reviews' && accepted === 0) accepted = performance.now();
    }, () => {});
    const started = performance.now();
    try {
      await kubectlApply(cluster, join(fixtures.samples, 'bookinfo/networking/virtual-service-all-v1.yaml'));
      await until(() => reviewsRoute(latest).join() === `outbound|9080|v1|${REVIEWS}`, 5_000, 'reviews routed to v1');
    } finally {
      watch.abort();
    }
    const reached = performance.now();
    assert.ok(accepted > 0, 'the API server told a watch about the VirtualService');
    const elapsed = reached - accepted;
    assert.ok(elapsed < 1000, `the route reached the proxy ${elapsed.toFixed(0)} ms after the API server had it (${(reached - started).toFixed(0)} ms after kubectl started)`);
    assert.deepEqual(endpointsOf(latest, `outbound|9080|v1|${REVIEWS}`), ['10.244.0.13:9080']);
  });

  it('an invalid resource that got in is refused with its errors and the last good one stays', async () => {
    await applyObjects(client, [
      { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: NS }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { hosts: 'reviews', subset: 'v2' } }] }] } },
    ]);
    await until(() => kube!.source.rejected.has(`VirtualService/${NS}/reviews`), 10_000, 'the refusal');
    const refused = kube!.source.rejected.get(`VirtualService/${NS}/reviews`)!;
    assert.ok(refused.diagnostics.some((d) => d.code === 'SNW0104' && /hosts/.test(d.message)), JSON.stringify(refused.diagnostics));
    assert.deepEqual(reviewsRoute(latest), [`outbound|9080|v1|${REVIEWS}`]);
  });

  it('recovers from 410 Gone: a watch resumed after etcd compacted its history lists afresh', async () => {
    const informer = kube!.source.informers.find((i) => i.path.endsWith('/virtualservices'))!;
    const listsBefore = informer.lists;
    relay.cut();
    // While the control plane is cut off: reviews goes to v2, then v3, and etcd forgets the
    // history (a watch resumes at the next revision, so two changes put it out of reach).
    await applyObjects(client, [
      { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: NS }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] } },
    ]);
    await applyObjects(client, [
      { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: NS }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] } },
    ]);
    const etcd = ['--endpoints', `http://127.0.0.1:${cluster.etcdPort}`];
    const status = JSON.parse((await promisify(execFile)('etcdctl', [...etcd, 'endpoint', 'status', '-w', 'json'])).stdout) as { Status: { header: { revision: number } } }[];
    await promisify(execFile)('etcdctl', [...etcd, 'compact', String(status[0]!.Status.header.revision)]);
    relay.restore();
    await until(() => reviewsRoute(latest).join() === `outbound|9080|v3|${REVIEWS}`, 15_000, 'reviews routed to v3 after the outage');
    assert.ok(informer.lists > listsBefore, `a fresh list after 410 (lists ${listsBefore} -> ${informer.lists})`);
    assert.equal(kube!.source.rejected.has(`VirtualService/${NS}/reviews`), false, 'the valid version replaced the refused one');
  });

  it('a restarted control plane resyncs and pushes nothing to a proxy whose config did not change', async () => {
    const held = JSON.stringify(latest);
    await until(() => proxy!.state === 'connected', 5_000, 'connected');
    const pushesBefore = pushes;
    await kube!.close();
    kube = undefined;
    await until(() => proxy!.state !== 'connected', 5_000, 'disconnected');
    kube = await startKubeControlPlane({ kubeconfig: cluster.kubeconfig, apiPort: 0, pushPort, monitoringPort: 0, collectTraces: false, debounceMs: 20 });
    await until(() => proxy!.state === 'connected', 10_000, 'reconnected');
    await until(() => kube!.controlPlane.push.status().length === 1, 5_000, 'the proxy known to the new control plane');
    // A push, if one were coming, follows the hello at once; the status shows what was sent.
    await until(() => kube!.controlPlane.push.metrics.skippedUnchanged + kube!.controlPlane.push.metrics.pushes > 0 || kube!.controlPlane.push.status()[0]?.state === 'SYNCED', 5_000, 'the hello handled');
    assert.equal(pushes, pushesBefore, 'no config was pushed');
    assert.equal(kube.controlPlane.push.metrics.pushes, 0);
    assert.equal(JSON.stringify(latest), held);
  });

  // Regression: the control plane in a cluster read no Gateway API kind at all (only Istio's),
  // so an HTTPRoute applied with kubectl did nothing; and Istio's Gateway and the Gateway API's
  // share a kind name, so they must not share a key.
  it('a GAMMA HTTPRoute applied in the cluster steers the mesh; a Gateway API Gateway and an Istio Gateway of one name both count', async () => {
    await applyObjects(client, [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'reviews-v2', namespace: NS }, spec: { selector: { app: 'reviews', version: 'v2' }, ports: [{ name: 'http', port: 9080 }] } },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'reviews', namespace: NS },
        spec: { parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }], rules: [{ backendRefs: [{ name: 'reviews-v2', port: 9080 }] }] },
      },
      { apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name: 'edge', namespace: NS }, spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] } },
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'edge', namespace: NS }, spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } },
    ]);
    // GAMMA takes precedence over the VirtualService for reviews (the earlier tests left one).
    await until(() => reviewsRoute(latest).join() === `outbound|9080||reviews-v2.${NS}.svc.cluster.local`, 10_000, `reviews routed by the HTTPRoute (now ${reviewsRoute(latest).join()})`);
    const store = kube!.source.store;
    await until(() => store.get(kindKey('Gateway', GATEWAY_API_GROUP), NS, 'edge') !== undefined, 10_000, 'the Gateway API Gateway in the store');
    assert.ok(store.get('Gateway', NS, 'edge'), "Istio's Gateway of the same name is kept beside it");

    // Deleting the route gives reviews back to the VirtualService.
    await client.request('DELETE', `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes/reviews`);
    await until(() => reviewsRoute(latest).join() === `outbound|9080|v3|${REVIEWS}`, 10_000, `reviews routed by the VirtualService again (now ${reviewsRoute(latest).join()})`);
  });

  it('TLS Secrets are read as gateway credentials; other Secrets are neither stored nor kept', async () => {
    const ca = await makeCa();
    const server = await makeServerCertificate(ca, ['bookinfo.example.com']);
    await applyObjects(client, [
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bookinfo-credential', namespace: NS }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(server.cert), 'tls.key': b64(server.key), 'ca.crt': b64(ca.cert) } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-password', namespace: NS }, type: 'Opaque', data: { password: b64('hunter2') } },
    ]);
    const store = kube!.source.store;
    await until(() => store.get('Secret', NS, 'bookinfo-credential') !== undefined, 10_000, 'the credential in the store');
    const spec = store.get('Secret', NS, 'bookinfo-credential')!.spec as { type: string; data: Record<string, string> };
    assert.equal(spec.type, 'kubernetes.io/tls');
    assert.equal(Buffer.from(spec.data['tls.crt']!, 'base64').toString(), server.cert);
    // The other Secret: not in the store, and its value not in the informer's cache either.
    const secrets = kube!.source.informers.find((i) => i.path === '/api/v1/secrets')!;
    await until(() => secrets.get('db-password', NS) !== undefined, 10_000, 'the informer saw db-password');
    assert.equal(store.get('Secret', NS, 'db-password'), undefined);
    assert.equal((secrets.get('db-password', NS) as { data?: unknown }).data, undefined, 'the password is not held by the control plane');
    // Nor are service-account token Secrets listed at all (the field selector).
    assert.ok(secrets.list().every((o) => (o as { type?: string }).type !== 'kubernetes.io/service-account-token'));

    await client.request('DELETE', `/api/v1/namespaces/${NS}/secrets/bookinfo-credential`);
    await until(() => store.get('Secret', NS, 'bookinfo-credential') === undefined, 10_000, 'the credential gone from the store');
  });

  // Regression: in a cluster the control plane ran without a CA (each replica and restart would
  // have made a root of its own), so no proxy in a pod could get a workload certificate.
  it('the mesh CA signs under one root kept in istio-ca-secret: a proxy gets its identity, and another replica signs under the same root', async () => {
    const secret = await client.get<{ type: string; data: Record<string, string> }>(`/api/v1/namespaces/sinew-system/secrets/istio-ca-secret`);
    assert.equal(secret.type, 'istio.io/ca-root');
    const rootPem = Buffer.from(secret.data['root-cert.pem']!, 'base64').toString();
    const rootFingerprint = summarizeCertificate(rootPem).fingerprint256;
    // The restarted control plane of the test before read the root rather than making one.
    assert.deepEqual(kube!.controlPlane.ca!.ca.describe().roots.map((r) => r.fingerprint256), [rootFingerprint]);
    assert.ok(latest!.secrets?.some((s) => s.name === 'ROOTCA' && s.trustedCaPem?.includes(rootPem.trim())), 'the proxy trusts the root');

    const { csrPem } = await generateKeyAndCsr();
    const issued = await proxy!.requestCertificate(csrPem);
    const [leaf, ...chain] = splitPemCertificates(issued.certificateChainPem);
    assert.deepEqual(summarizeCertificate(leaf!).identities, [`spiffe://cluster.local/ns/${NS}/sa/bookinfo-productpage`]);
    const dir = await mkdtemp(join(tmpdir(), 'sinew-kube-ca-'));
    try {
      const verified = await opensslVerify(dir, rootPem, chain.join(''), leaf!);
      assert.equal(verified.code, 0, verified.stderr);
      // A second replica, started while the first runs, signs under the same root.
      const second = await startKubeControlPlane({ kubeconfig: cluster.kubeconfig, apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: false });
      try {
        assert.deepEqual(second.controlPlane.ca!.ca.describe().roots.map((r) => r.fingerprint256), [rootFingerprint]);
      } finally {
        await second.close();
      }
      // An operator's plug-in Secret `cacerts` (istio.io "Plug in CA certificates") wins over it.
      const plugin = await generateSigningFiles(Date.now());
      await applyObjects(client, [
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cacerts', namespace: 'sinew-system' }, data: { 'ca-cert.pem': b64(plugin.caCertPem), 'ca-key.pem': b64(plugin.caKeyPem), 'cert-chain.pem': b64(plugin.certChainPem!), 'root-cert.pem': b64(plugin.rootCertPem) } },
      ]);
      const third = await startKubeControlPlane({ kubeconfig: cluster.kubeconfig, apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: false });
      try {
        assert.deepEqual(third.controlPlane.ca!.ca.describe().roots.map((r) => r.fingerprint256), [summarizeCertificate(plugin.rootCertPem).fingerprint256]);
        assert.equal(third.controlPlane.ca!.ca.describe().source, 'plugin');
      } finally {
        await third.close();
        await client.request('DELETE', '/api/v1/namespaces/sinew-system/secrets/cacerts');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
