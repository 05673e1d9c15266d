/**
 * Forged identity headers, at the gateway and at both listeners of a sidecar. Regression: a
 * client's x-forwarded-client-cert reached the app unchanged through the gateway (Istio's
 * gateways sanitise it), and a sidecar's inbound listener recorded the peer metadata a
 * plaintext client sent (`source_workload="admin-v1"`). Now x-forwarded-client-cert never
 * passes without mutual TLS (Envoy's rule), and an inbound sidecar trusts only metadata
 * signed with the mesh key (src/proxy/peer-identity.ts): a forged or unsigned one is stripped
 * and the request served as from an unknown source, while sidecar-to-sidecar calls keep
 * their labels.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { peerMetadataHeaders } from '../../src/telemetry/peer-metadata.js';
import { requestSeries } from '../support/metrics.js';
import { h1Client } from './support/client.js';
import { cluster, endpoint, httpListener, proxyConfig, route, routeTo, table, vhost, withMeshKey } from './support/config.js';
import { startRawApp, type RawApp } from './support/raw-app.js';

const node = (mode: 'sidecar' | 'router', workload: string, namespace = 'default'): ProxyNode => ({
  id: `${mode}~${workload}-0.${namespace}`,
  mode,
  workload,
  namespace,
  labels: { app: workload.replace(/-v\d+$/, ''), version: 'v1' },
});
const REVIEWS = 'reviews.default.svc.cluster.local';
const OUT = `outbound|9080||${REVIEWS}`;
const IN = 'inbound|9080||';
/** What an attacker sends: a client certificate header and another workload's identity. */
const FORGED = {
  'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/default/sa/reviews;URI=spiffe://cluster.local/ns/default/sa/admin',
  ...peerMetadataHeaders(node('sidecar', 'admin-v1')),
  'x-sinew-peer-signature': 'x'.repeat(43),
};

function inboundConfig(appPort: number): ProxyConfig {
  return {
    ...proxyConfig({
      listeners: [httpListener('inbound', { routeConfigName: IN }, { direction: 'inbound' })],
      routeConfigs: [table(IN, [vhost('inbound', ['*'], [route('default', {}, routeTo(IN))])])],
      clusters: [cluster(IN, { service: { host: REVIEWS, namespace: 'default', name: 'reviews', port: 9080 } })],
      endpoints: [{ clusterName: IN, endpoints: [endpoint(appPort)] }],
    }),
    node: node('sidecar', 'reviews-v1'),
  };
}

/** A sidecar's outbound listener, or a gateway's listener, in front of `port`. */
function clientConfig(who: ProxyNode, port: number, direction: 'outbound' | 'gateway'): ProxyConfig {
  return {
    ...proxyConfig({
      listeners: [httpListener('edge', { routeConfigName: '9080', acceptAbsoluteUri: true }, { direction })],
      routeConfigs: [table('9080', [vhost('reviews', ['*'], [route('default', {}, routeTo(OUT))])])],
      clusters: [cluster(OUT, { service: { host: REVIEWS, namespace: 'default', name: 'reviews', port: 9080 } })],
      endpoints: [{ clusterName: OUT, endpoints: [endpoint(port, { app: 'reviews', version: 'v1' })] }],
    }),
    node: who,
  };
}

async function scrape(proxy: Proxy): Promise<{ labels: Record<string, string>; value: number }[]> {
  const res = await fetch(`http://127.0.0.1:${proxy.metricsAddress()!.port}/stats/prometheus`);
  return requestSeries(await res.text());
}

describe('forged identity headers', () => {
  let app: RawApp;
  const proxies: Proxy[] = [];
  let reviews: Proxy;
  const start = async (config: ProxyConfig): Promise<Proxy> => {
    const p = createProxy({ config, metricsPort: 0 });
    proxies.push(p);
    await p.start();
    return p;
  };
  const port = (p: Proxy) => Object.values(p.listenerAddresses())[0].port;
  /** One request through `p`; what the app saw of it. */
  const through = async (p: Proxy, path: string, headers: Record<string, string> = {}) => {
    const client = h1Client(port(p));
    try {
      const res = await client.request({ host: 'reviews:9080', path, headers });
      assert.equal(res.status, 200);
      const seen = app.heads.find((h) => h.path === path);
      assert.ok(seen, `${path} reached the app`);
      return { res, seen: seen.headers };
    } finally {
      await client.close();
    }
  };

  before(async () => {
    app = await startRawApp();
    reviews = await start(withMeshKey(inboundConfig(app.port)));
  });
  after(async () => {
    for (const p of proxies) await p.close({ drainMs: 0 });
    await app.close();
  });

  test('regression: a sidecar inbound ignores peer metadata a plaintext client forged; the request is served as from an unknown source', async () => {
    const { res, seen } = await through(reviews, '/forged-inbound', FORGED);
    for (const name of Object.keys(FORGED)) assert.equal(seen[name], undefined, `${name} never reaches the app`);
    assert.equal(res.headers['x-envoy-peer-metadata'], undefined, 'a stranger learns nothing of the inbound');
    const series = (await scrape(reviews)).filter((s) => s.labels.reporter === 'destination');
    assert.deepEqual(series.map((s) => [s.labels.source_workload, s.value]), [['unknown', 1]]);
  });

  test('sidecar to sidecar, with the mesh key: both reporters keep each other\'s identity', async () => {
    const before = (await scrape(reviews)).filter((s) => s.labels.source_workload === 'productpage-v1').length;
    const productpage = await start(withMeshKey(clientConfig(node('sidecar', 'productpage-v1'), port(reviews), 'outbound')));
    const { seen } = await through(productpage, '/meshed', { 'x-forwarded-client-cert': FORGED['x-forwarded-client-cert'] });
    assert.equal(seen['x-forwarded-client-cert'], undefined, 'not from the app through its own sidecar either');
    assert.equal(seen['x-envoy-peer-metadata'], undefined);
    const destination = (await scrape(reviews)).filter((s) => s.labels.source_workload === 'productpage-v1');
    assert.equal(destination.length, before + 1);
    assert.equal(destination[0].labels.destination_workload, 'reviews-v1');
    const source = (await scrape(productpage)).filter((s) => s.labels.reporter === 'source');
    assert.deepEqual(source.map((s) => [s.labels.source_workload, s.labels.destination_workload]), [['productpage-v1', 'reviews-v1']]);
  });

  test('a proxy with another key proves nothing: recorded as unknown at both ends', async () => {
    const rogue = await start(withMeshKey(clientConfig(node('sidecar', 'admin-v1'), port(reviews), 'outbound'), Buffer.alloc(32, 9).toString('base64')));
    await through(rogue, '/rogue');
    const destination = (await scrape(reviews)).filter((s) => s.labels.reporter === 'destination');
    assert.equal(destination.find((s) => s.labels.source_workload === 'admin-v1'), undefined);
    const source = (await scrape(rogue)).filter((s) => s.labels.reporter === 'source');
    assert.deepEqual(source.map((s) => s.labels.destination_workload), ['unknown'], 'nor does it trust the inbound\'s answer');
  });

  test('a mesh key the proxy cannot use is refused with the config, never taken for no key', () => {
    for (const [secrets, problem] of [
      [[], /no secret named "sinew-mesh-key"/],
      [[{ name: 'sinew-mesh-key', genericSecret: Buffer.alloc(8).toString('base64') }], /at least 16 bytes/],
    ] as const) {
      const config = { ...inboundConfig(app.port), secrets: [...secrets], peerMetadataKey: 'sinew-mesh-key', version: 'bad-key' };
      assert.throws(() => reviews.apply(config), (err: Error) => problem.test(err.message));
    }
    assert.notEqual(reviews.version, 'bad-key', 'the last good config stays');
  });

  test('regression: the gateway sanitises a client\'s x-forwarded-client-cert and sends its own identity, signed', async () => {
    const gateway = await start(withMeshKey(clientConfig(node('router', 'istio-ingressgateway', 'istio-system'), app.port, 'gateway')));
    const { seen } = await through(gateway, '/via-gateway', FORGED);
    assert.equal(seen['x-forwarded-client-cert'], undefined);
    const md = JSON.parse(Buffer.from(seen['x-envoy-peer-metadata'], 'base64').toString()) as { workload: string };
    assert.equal(md.workload, 'istio-ingressgateway');
    assert.equal(seen['x-envoy-peer-metadata-id'], 'router~istio-ingressgateway-0.istio-system');
    assert.match(seen['x-sinew-peer-signature'], /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(seen['x-sinew-peer-signature'], FORGED['x-sinew-peer-signature']);
  });
});
