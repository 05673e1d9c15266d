/**
 * The graph builder over a hand-made window: which series count (no request twice), the four
 * graph types' nodes and edges, rates, error percentages, shares, latency percentiles, TCP
 * bytes, unknown callers, ServiceEntries, health and badges.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RegistryService } from '../../src/api/registry-snapshot.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { buildGraph, GraphMemo } from '../../src/controlplane/console/graph.js';
import type { Inventory } from '../../src/controlplane/console/inventory.js';
import { SampleWindow, type ScrapedSeries } from '../../src/controlplane/console/sample-window.js';
import { buildOverview } from '../../src/controlplane/console/views.js';
import { healthOf } from '../../src/controlplane/console/inventory.js';

const NS = 'default';
const host = (s: string) => `${s}.${NS}.svc.cluster.local`;

function peer(side: 'source' | 'destination', workload: string, app: string, version: string, ns = NS): Record<string, string> {
  return { [`${side}_workload`]: workload, [`${side}_workload_namespace`]: ns, [`${side}_app`]: app, [`${side}_version`]: version, [`${side}_canonical_service`]: app };
}

function http(reporter: 'source' | 'destination', src: Record<string, string>, dst: Record<string, string>, service: string, code: string): Record<string, string> {
  return { reporter, ...src, ...dst, destination_service: host(service), destination_service_name: service, destination_service_namespace: NS, request_protocol: 'http', response_code: code, response_flags: '-' };
}

const gw = peer('source', 'istio-ingressgateway', 'istio-ingressgateway', 'latest', 'istio-system');
const pp = { src: peer('source', 'productpage-v1', 'productpage', 'v1'), dst: peer('destination', 'productpage-v1', 'productpage', 'v1') };
const r1 = peer('destination', 'reviews-v1', 'reviews', 'v1');
const r2 = peer('destination', 'reviews-v2', 'reviews', 'v2');
const noDest = { destination_workload: 'unknown', destination_workload_namespace: 'unknown', destination_app: 'unknown', destination_version: 'unknown', destination_canonical_service: 'unknown' };
const unknownSource = { source_workload: 'unknown', source_workload_namespace: 'unknown', source_app: 'unknown', source_version: 'unknown', source_canonical_service: 'unknown' };

/** Counters that grew by `per60s` over the minute from t=0 to t=60 s (scrapes at 0 and 60 s). */
function mesh(): { window: SampleWindow; inventory: Inventory } {
  const window = new SampleWindow(31 * 60_000);
  const grow = (labels: Record<string, string>, per60s: number, family: ScrapedSeries['family'] = 'requests'): [ScrapedSeries, ScrapedSeries] => [
    { family, labels, value: [100] },
    { family, labels, value: [100 + per60s] },
  ];
  const duration = (labels: Record<string, string>, under10: number, under100: number): [ScrapedSeries, ScrapedSeries] => [
    { family: 'duration', labels, bounds: [10, 100], value: [0, 0, 0] },
    { family: 'duration', labels, bounds: [10, 100], value: [under100, under10, under100] },
  ];
  const targets: Record<string, [ScrapedSeries, ScrapedSeries][]> = {
    gateway: [grow(http('source', gw, pp.dst, 'productpage', '200'), 120), duration(http('source', gw, pp.dst, 'productpage', '200'), 60, 120)],
    productpage: [
      // The destination proxy's report of the gateway's requests: the gateway counted them already.
      grow(http('destination', gw, pp.dst, 'productpage', '200'), 120),
      grow(http('source', pp.src, r1, 'reviews', '200'), 90),
      grow(http('source', pp.src, r2, 'reviews', '200'), 27),
      grow(http('source', pp.src, r2, 'reviews', '500'), 3),
      // Refused by productpage's own proxy (no upstream): the edge ends at the service.
      grow(http('source', pp.src, noDest, 'details', '503'), 30),
      // A TCP stream to a ServiceEntry host.
      grow({ reporter: 'source', ...pp.src, ...noDest, destination_service: 'db.example.com', destination_service_name: 'db.example.com', destination_service_namespace: NS }, 6000, 'tcpSent'),
      // A series with no traffic in the window is no edge.
      grow(http('source', pp.src, r1, 'reviews', '404'), 0),
    ],
    reviews: [
      // A caller without a sidecar: only the destination proxy knows it.
      grow(http('destination', unknownSource, r1, 'reviews', '200'), 60),
    ],
  };
  for (const [id, series] of Object.entries(targets)) {
    window.record(id, 0, series.map((s) => s[0]));
    window.record(id, 60_000, series.map((s) => s[1]));
  }
  const svc = (name: string, workloads: string[], source: RegistryService['source'] = 'Service'): RegistryService => ({
    hostname: source === 'Service' ? host(name) : name,
    namespace: NS,
    name,
    source,
    ports: [],
    resolution: 'EDS',
    location: 'MESH_INTERNAL',
    labels: {},
    endpoints: { '9080': workloads.map((w) => ({ address: '127.0.0.1', port: 1, labels: { version: w.split('-')[1] }, health: 'HEALTHY' as const, workload: { name: w, namespace: NS } })) },
  });
  const workload = (name: string, app: string, version: string, ready = [true]) => ({ name, namespace: NS, labels: { app, version }, kind: 'workload' as const, replicas: ready.map((r, i) => ({ id: `${name}-${i}`, ready: r, sync: 'SYNCED' })) });
  const resources = [
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: NS }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }], timeout: '1s', fault: { delay: { fixedDelay: '1s', percentage: { value: 1 } } } }] } },
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: NS }, spec: { host: 'reviews.default.svc.cluster.local', subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 } } } }] } },
  ] as unknown as Resource[];
  return {
    window,
    inventory: {
      services: [svc('productpage', ['productpage-v1']), svc('reviews', ['reviews-v1', 'reviews-v2']), svc('details', []), svc('db.example.com', [], 'ServiceEntry')],
      workloads: [
        { name: 'istio-ingressgateway', namespace: 'istio-system', labels: { app: 'istio-ingressgateway' }, kind: 'gateway', replicas: [{ id: 'gw', ready: true, sync: 'SYNCED' }] },
        workload('productpage-v1', 'productpage', 'v1'),
        workload('reviews-v1', 'reviews', 'v1'),
        workload('reviews-v2', 'reviews', 'v2', [true, false]),
      ],
      resources,
      configRevision: 3,
    },
  };
}

const edgesOf = (g: ReturnType<typeof buildGraph>) => Object.fromEntries(g.edges.map((e) => [e.id, e]));

describe('buildGraph', () => {
  test('versioned app graph: service nodes between callers and versions; each request counted once', () => {
    const { window, inventory } = mesh();
    const g = buildGraph(window, inventory, { type: 'versionedApp', window: 60, now: 60_000 });
    assert.deepEqual(g.nodes.map((n) => n.id), [
      'gw:istio-system/istio-ingressgateway',
      'svc:default/db.example.com',
      'svc:default/details',
      'svc:default/productpage',
      'svc:default/reviews',
      'unknown',
      'vapp:default/productpage/v1',
      'vapp:default/reviews/v1',
      'vapp:default/reviews/v2',
    ]);
    const e = edgesOf(g);
    assert.deepEqual(Object.keys(e), [
      'gw:istio-system/istio-ingressgateway>svc:default/productpage',
      'svc:default/productpage>vapp:default/productpage/v1',
      'svc:default/reviews>vapp:default/reviews/v1',
      'svc:default/reviews>vapp:default/reviews/v2',
      'unknown>svc:default/reviews',
      'vapp:default/productpage/v1>svc:default/db.example.com#tcp',
      'vapp:default/productpage/v1>svc:default/details',
      'vapp:default/productpage/v1>svc:default/reviews',
    ]);
    assert.equal(e['gw:istio-system/istio-ingressgateway>svc:default/productpage'].rate, 2, '120 requests in 60 s, not 240');
    const toV2 = e['svc:default/reviews>vapp:default/reviews/v2'];
    assert.equal(toV2.rate, 0.5);
    assert.equal(toV2.errorPercent, 10);
    assert.deepEqual(toV2.responses, { '200': 27, '500': 3 });
    // reviews' callers: productpage (90 + 30) and unknown (60): v1 gets 150 of 180.
    assert.equal(e['svc:default/reviews>vapp:default/reviews/v1'].sharePercent, 83.3);
    assert.equal(e['vapp:default/productpage/v1>svc:default/reviews'].sharePercent, 80, 'reviews 120 of productpage\'s 150 requests');
    assert.equal(e['vapp:default/productpage/v1>svc:default/details'].errorPercent, 100);
    assert.equal(e['vapp:default/productpage/v1>svc:default/db.example.com#tcp'].rate, 100, 'bytes per second');
    const latency = e['gw:istio-system/istio-ingressgateway>svc:default/productpage'];
    assert.deepEqual([latency.p50, latency.p95], [10, 91]);
    const byId = Object.fromEntries(g.nodes.map((n) => [n.id, n]));
    assert.equal(byId['svc:default/db.example.com'].kind, 'serviceEntry');
    assert.equal(byId['svc:default/details'].health, 'failure');
    assert.equal(byId['vapp:default/reviews/v2'].health, 'degraded', '10% errors (under 20%) and 1 of 2 replicas ready');
    assert.equal(byId['vapp:default/reviews/v1'].health, 'healthy');
  });

  test('app, workload and service graphs', () => {
    const { window, inventory } = mesh();
    const ids = (type: 'app' | 'workload' | 'service') => buildGraph(window, inventory, { type, window: 60, now: 60_000 }).edges.map((e) => e.id);
    assert.ok(ids('app').includes('svc:default/reviews>app:default/reviews'));
    assert.equal(ids('app').filter((id) => id.endsWith('>app:default/reviews')).length, 1, 'both versions are one app');
    assert.ok(ids('workload').includes('svc:default/reviews>wl:default/reviews-v2'));
    assert.deepEqual(ids('service'), [
      'gw:istio-system/istio-ingressgateway>svc:default/productpage',
      'svc:default/productpage>svc:default/db.example.com#tcp',
      'svc:default/productpage>svc:default/details',
      'svc:default/productpage>svc:default/reviews',
      'unknown>svc:default/reviews',
    ]);
  });

  test('the window decides: nothing outside it is drawn; namespaces narrow the graph to their nodes and peers', () => {
    const { window, inventory } = mesh();
    assert.equal(buildGraph(window, inventory, { type: 'app', window: 60, now: 200_000 }).edges.length, 0);
    const g = buildGraph(window, inventory, { type: 'app', window: 60, now: 60_000, namespaces: ['istio-system'] });
    assert.deepEqual(g.edges.map((e) => e.id), ['gw:istio-system/istio-ingressgateway>svc:default/productpage']);
  });

  test('badges come from the config that names the service; a memo gives the same graph', () => {
    const { window, inventory } = mesh();
    const memo = new GraphMemo();
    const first = buildGraph(window, inventory, { type: 'versionedApp', window: 60, now: 60_000, memo });
    const again = buildGraph(window, inventory, { type: 'versionedApp', window: 60, now: 60_000, memo });
    assert.deepEqual(again, first);
    const reviews = first.nodes.find((n) => n.id === 'svc:default/reviews')!;
    assert.deepEqual(reviews.badges, { virtualService: ['default/reviews'], faultInjection: true, timeout: true, circuitBreaker: true });
    // A config change is a new context: the badge goes.
    const changed = { ...inventory, resources: inventory.resources.filter((r) => r.kind !== 'DestinationRule'), configRevision: 4 };
    const after = buildGraph(window, changed, { type: 'versionedApp', window: 60, now: 60_000, memo });
    assert.equal(after.nodes.find((n) => n.id === 'svc:default/reviews')!.badges.circuitBreaker, undefined);
  });
});

test('overview: a card per namespace with health, readiness and sync', () => {
  const { window, inventory } = mesh();
  const o = buildOverview(window, inventory, { window: 60, now: 60_000 });
  assert.deepEqual(o.namespaces.map((n) => n.name), ['default', 'istio-system']);
  const def = o.namespaces[0];
  assert.deepEqual(def.workloads.map((w) => [w.name, w.ready, w.replicas, w.health]), [
    ['productpage-v1', 1, 1, 'healthy'],
    ['reviews-v1', 1, 1, 'healthy'],
    ['reviews-v2', 1, 2, 'degraded'],
  ]);
  assert.equal(def.services.find((s) => s.name === 'details')!.health, 'failure');
  assert.equal(def.health, 'failure');
  assert.deepEqual(def.proxies, { synced: 4, total: 4 });
});

test('health follows Kiali\'s default tolerances: application errors and client errors apart, and readiness', () => {
  const t = (errorPercent: number, clientErrorPercent = 0) => healthOf({ requests: 100, errorPercent, clientErrorPercent });
  assert.deepEqual([t(0), t(0.05), t(0.1), t(10), t(10.5)], ['healthy', 'healthy', 'degraded', 'degraded', 'failure']);
  assert.deepEqual([t(0, 9), t(0, 10), t(0, 20), t(0, 21)], ['healthy', 'degraded', 'degraded', 'failure']);
  assert.equal(healthOf(undefined), 'na');
  assert.equal(healthOf(undefined, { ready: 0, total: 2 }), 'failure');
  assert.equal(healthOf({ requests: 10, errorPercent: 0 }, { ready: 1, total: 2 }), 'degraded');
});
