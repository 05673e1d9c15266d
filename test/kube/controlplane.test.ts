/**
 * The control plane in Kubernetes mode against a real kube-apiserver v1.20 (with etcd):
 * Bookinfo's Services and pods become endpoints; an apply of Bookinfo's networking rules with
 * kubectl reaches a proxy's config within 1 s; an invalid resource is refused and the last
 * good one stays; a watch that falls out of etcd's history (410 Gone) is recovered by a fresh
 * list; a restarted control plane pushes nothing to a proxy that holds the current config.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { PushClient } from '../../src/xds/client.js';
import { startKubeControlPlane, type KubeControlPlane } from '../../src/cli/kube-controlplane.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/api.js';
import { Watch } from '@kubernetes/client-node';
import { clusterSkip, freePort, startCluster, type TestCluster } from './support/cluster.js';
import { applyObjects, clientFor, createBookinfo, createPod, createServiceAccount, installCrds, kubectlApply, requestServiceAccountToken, setPodStatus, startRelay, until } from './support/objects.js';
import { fixtures } from '../support/reference-corpus.js';

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
});
