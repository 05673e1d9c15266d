import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { once } from 'node:events';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import type { PushClient } from '../../src/xds/client.js';
import { OperatorApi, proxyClient } from './helpers.js';

const repo = resolve(import.meta.dirname, '../..');
const samples = resolve(repo, 'samples/bookinfo/networking');
const bookinfo = readFileSync(resolve(repo, 'examples/bookinfo/bookinfo.yaml'), 'utf8');

const node: ProxyNode = {
  id: 'sidecar~productpage-v1-0.default',
  mode: 'sidecar',
  workload: 'productpage-v1',
  namespace: 'default',
  labels: { app: 'productpage', version: 'v1' },
  serviceAccount: 'bookinfo-productpage',
};

function registration(name: string, labels: Record<string, string>, port: number) {
  return {
    kind: 'workload',
    name,
    namespace: 'default',
    labels,
    replicas: [{ id: `${name}-0`, host: '127.0.0.1', ports: { '9080': { inbound: port, app: port + 1 } }, ready: true, restarts: 0, proxy: { inbound: `127.0.0.1:${port}`, outbound: `127.0.0.1:${port + 2}`, admin: `127.0.0.1:${port + 3}` } }],
  };
}

/** Resolves with the next config the client applies. */
function nextConfig(client: PushClient): Promise<ProxyConfig> {
  return once(client, 'config').then(([config]) => config as ProxyConfig);
}

const clusterOfReviews = (config: ProxyConfig) =>
  config.routeConfigs
    .find((rc) => rc.name === '9080')!
    .virtualHosts.find((vh) => vh.domains.includes('reviews'))!
    .routes.map((r) => (r.action.kind === 'route' ? r.action.destinations.map((d) => d.cluster).join(',') : r.action.kind));

describe('control plane daemon', () => {
  let cp: ControlPlane;
  let api: OperatorApi;
  let client: PushClient;

  before(async () => {
    cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5 });
    api = new OperatorApi(cp);
  });
  after(async () => {
    await client?.close();
    await cp.close();
  });

  test('a registered sidecar receives its config, then every change to it', async () => {
    assert.equal((await api.apply(bookinfo)).status, 200);
    for (const [name, labels, port] of [
      ['productpage-v1', { app: 'productpage', version: 'v1' }, 20000],
      ['reviews-v1', { app: 'reviews', version: 'v1' }, 20010],
      ['reviews-v2', { app: 'reviews', version: 'v2' }, 20020],
    ] as const) {
      const res = await api.register(registration(name, labels, port));
      assert.equal(res.status, 200, await res.clone().text());
    }
    client = proxyClient(cp, node);
    const first = nextConfig(client);
    client.start();
    const config = await first;
    assert.deepEqual(clusterOfReviews(config), ['outbound|9080||reviews.default.svc.cluster.local'], 'no VirtualService: the default route');
    const reviews = config.endpoints.find((e) => e.clusterName === 'outbound|9080||reviews.default.svc.cluster.local')!;
    assert.deepEqual(reviews.endpoints.map((e) => e.address.port).sort(), [20010, 20020], 'endpoints are the sidecars\' inbound ports');

    const routed = nextConfig(client);
    const body = readFileSync(resolve(samples, 'destination-rule-all.yaml'), 'utf8') + '\n---\n' + readFileSync(resolve(samples, 'virtual-service-all-v1.yaml'), 'utf8');
    assert.equal((await api.apply(body)).status, 200);
    assert.deepEqual(clusterOfReviews(await routed), ['outbound|9080|v1|reviews.default.svc.cluster.local']);
  });

  test('an invalid apply changes nothing and pushes nothing', async () => {
    const pushesBefore = cp.push.metrics.pushes;
    const bad = readFileSync(resolve(samples, 'virtual-service-reviews-v3.yaml'), 'utf8').replace('host: reviews', 'hosts: reviews');
    const res = await api.apply(bad);
    assert.equal(res.status, 422);
    cp.push.flush();
    assert.equal(cp.push.metrics.pushes, pushesBefore);
    const status = (await api.json('/api/v1/status')) as { workloads: { name: string; replicas: { proxy: { sync: string } }[] }[] };
    const pp = status.workloads.find((w) => w.name === 'productpage-v1')!;
    assert.equal(pp.replicas[0].proxy.sync, 'SYNCED');
  });

  test('the monitoring port serves Prometheus metrics', async () => {
    const text = await (await fetch(`http://${cp.addresses.monitoring}/metrics`, { headers: { authorization: `Bearer ${cp.credentials.apiToken}` } })).text();
    assert.match(text, /^pilot_xds 1$/m);
    assert.match(text, /^pilot_xds_pushes [1-9]/m);
  });
});
