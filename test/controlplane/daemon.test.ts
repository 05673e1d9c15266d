import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { once } from 'node:events';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { PushClient } from '../../src/xds/client.js';

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
  let api: string;
  let client: PushClient;

  before(async () => {
    cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5 });
    api = `http://${cp.addresses.api}/api/v1`;
  });
  after(async () => {
    await client?.close();
    await cp.close();
  });

  test('a registered sidecar receives its config, then every change to it', async () => {
    assert.equal((await fetch(`${api}/apply`, { method: 'POST', body: bookinfo })).status, 200);
    for (const [name, labels, port] of [
      ['productpage-v1', { app: 'productpage', version: 'v1' }, 20000],
      ['reviews-v1', { app: 'reviews', version: 'v1' }, 20010],
      ['reviews-v2', { app: 'reviews', version: 'v2' }, 20020],
    ] as const) {
      const res = await fetch(`${api}/registrations/workload/default/${name}`, { method: 'PUT', body: JSON.stringify(registration(name, labels, port)) });
      assert.equal(res.status, 200);
    }
    const [host, port] = cp.addresses.push.split(':');
    client = new PushClient({ host, port: Number(port), node, apply: () => undefined, backoff: { initialMs: 5 } });
    const first = nextConfig(client);
    client.start();
    const config = await first;
    assert.deepEqual(clusterOfReviews(config), ['outbound|9080||reviews.default.svc.cluster.local'], 'no VirtualService: the default route');
    const reviews = config.endpoints.find((e) => e.clusterName === 'outbound|9080||reviews.default.svc.cluster.local')!;
    assert.deepEqual(reviews.endpoints.map((e) => e.address.port).sort(), [20010, 20020], 'endpoints are the sidecars\' inbound ports');

    const routed = nextConfig(client);
    const body = readFileSync(resolve(samples, 'destination-rule-all.yaml'), 'utf8') + '\n---\n' + readFileSync(resolve(samples, 'virtual-service-all-v1.yaml'), 'utf8');
    assert.equal((await fetch(`${api}/apply`, { method: 'POST', body })).status, 200);
    assert.deepEqual(clusterOfReviews(await routed), ['outbound|9080|v1|reviews.default.svc.cluster.local']);
  });

  test('an invalid apply changes nothing and pushes nothing', async () => {
    const pushesBefore = cp.push.metrics.pushes;
    const bad = readFileSync(resolve(samples, 'virtual-service-reviews-v3.yaml'), 'utf8').replace('host: reviews', 'hosts: reviews');
    const res = await fetch(`${api}/apply`, { method: 'POST', body: bad });
    assert.equal(res.status, 422);
    cp.push.flush();
    assert.equal(cp.push.metrics.pushes, pushesBefore);
    const status = (await (await fetch(`${api}/status`)).json()) as { workloads: { name: string; replicas: { proxy: { sync: string } }[] }[] };
    const pp = status.workloads.find((w) => w.name === 'productpage-v1')!;
    assert.equal(pp.replicas[0].proxy.sync, 'SYNCED');
  });

  test('the monitoring port serves Prometheus metrics', async () => {
    const text = await (await fetch(`http://${cp.addresses.monitoring}/metrics`)).text();
    assert.match(text, /^pilot_xds 1$/m);
    assert.match(text, /^pilot_xds_pushes [1-9]/m);
  });
});
