/**
 * Builds after a change are incremental (ProxyConfigBuilder with the compiler's
 * OutboundCache): services whose inputs did not change keep their compiled virtual hosts
 * and clusters, and sidecars whose own inputs did not change keep their own part. That
 * must be invisible: after every change, each proxy's config equals a from-scratch build
 * and a whole compile without any sharing. And it must be incremental: one VirtualService
 * change rebuilds the host it owns, once per proxy class, and nothing else.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { WorkloadRegistration } from '../../src/api/mesh-status.js';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { compileProxyConfig } from '../../src/compiler/index.js';
import { ProxyConfigBuilder } from '../../src/controlplane/compile.js';
import { ServiceRegistry, type WorkloadInstance } from '../../src/registry/index.js';
import { parse } from '../compiler/support/mesh.js';

// === the mesh ===

interface Wl {
  name: string;
  namespace: string;
  app: string;
  version: string;
  ports: number[];
  /** `topology.kubernetes.io/region` of its proxy: clusters with outlier detection name the proxy's locality. */
  region?: string;
}

const WORKLOADS: Wl[] = [
  { name: 'front-v1', namespace: 'shop', app: 'front', version: 'v1', ports: [9080] },
  { name: 'reviews-v1', namespace: 'shop', app: 'reviews', version: 'v1', ports: [9080] },
  { name: 'reviews-v2', namespace: 'shop', app: 'reviews', version: 'v2', ports: [9080] },
  { name: 'ratings-v1', namespace: 'shop', app: 'ratings', version: 'v1', ports: [9080, 3306] },
  { name: 'details-v1', namespace: 'books', app: 'details', version: 'v1', ports: [9080] },
  { name: 'catalog-v1', namespace: 'books', app: 'catalog', version: 'v1', ports: [9080, 9090] },
  { name: 'probe-v1', namespace: 'ops', app: 'probe', version: 'v1', ports: [9080] },
  { name: 'probe-eu', namespace: 'ops', app: 'probe', version: 'eu', ports: [9080], region: 'eu-west' },
];

const service = (app: string, namespace: string, ports: string, exportTo?: string) => `
apiVersion: v1
kind: Service
metadata: {name: ${app}, namespace: ${namespace}${exportTo ? `, annotations: {networking.istio.io/exportTo: "${exportTo}"}` : ''}}
spec:
  selector: {app: ${app}}
  ports: ${ports}
`;

const workload = (w: Wl) => `
apiVersion: sinew.dev/v1alpha1
kind: Workload
metadata: {name: ${w.name}, namespace: ${w.namespace}, labels: {app: ${w.app}, version: ${w.version}}}
spec:
  serviceAccount: ${w.app}
  command: [node, server.js]
  ports: [${w.ports.map((p) => `{name: ${p === 3306 ? 'tcp' : p === 9090 ? 'grpc' : 'http'}-${p}, containerPort: ${p}}`).join(', ')}]
`;

const BASE = [
  service('front', 'shop', '[{name: http, port: 9080}]'),
  // Not exported to books: front's routes (which name reviews) differ between books and ops.
  service('reviews', 'shop', '[{name: http, port: 9080}]', '.,ops'),
  service('ratings', 'shop', '[{name: http, port: 9080}, {name: tcp-db, port: 3306}]'),
  service('details', 'books', '[{name: http, port: 9080}]'),
  service('catalog', 'books', '[{name: http, port: 9080}, {name: grpc, port: 9090}]'),
  service('probe', 'ops', '[{name: http, port: 9080}]'),
  ...WORKLOADS.map(workload),
  `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}, weight: 80}, {destination: {host: reviews, subset: v2}, weight: 20}]
    timeout: 5s
`,
  `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`,
  `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details-root, namespace: books}
spec:
  hosts: [details.books.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /api}}]
    delegate: {name: details-api, namespace: books}
  - route: [{destination: {host: details}}]
`,
  `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details-api, namespace: books}
spec:
  http:
  - route: [{destination: {host: details}}]
    timeout: 3s
`,
  `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front-to-reviews, namespace: shop}
spec:
  hosts: [front]
  http:
  - route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v1}}]
`,
].join('\n---\n');

/** One replica per workload; each replica's sidecar has its own ports. */
function registrations(): Map<string, WorkloadRegistration> {
  const out = new Map<string, WorkloadRegistration>();
  WORKLOADS.forEach((w, i) => {
    const base = 20_000 + i * 10;
    const ports: Record<string, { inbound: number; app: number }> = {};
    w.ports.forEach((p, j) => (ports[String(p)] = { inbound: base + j * 2, app: base + j * 2 + 1 }));
    out.set(`workload/${w.namespace}/${w.name}`, {
      kind: 'workload',
      name: w.name,
      namespace: w.namespace,
      labels: { app: w.app, version: w.version },
      serviceAccount: w.app,
      replicas: [{ id: `${w.name}-0`, app: `127.0.0.1:${base + 1}`, host: '127.0.0.1', ports, ready: true, restarts: 0, proxy: { inbound: `127.0.0.1:${base}`, outbound: `127.0.0.1:${base + 8}`, admin: `127.0.0.1:${base + 9}` } }],
    } as WorkloadRegistration);
  });
  return out;
}

const NODES: ProxyNode[] = WORKLOADS.map((w) =>
  Object.freeze({
    id: `sidecar~${w.name}-0.${w.namespace}`,
    mode: 'sidecar',
    workload: w.name,
    namespace: w.namespace,
    labels: Object.freeze({ app: w.app, version: w.version, ...(w.region ? { 'topology.kubernetes.io/region': w.region } : {}) }),
    serviceAccount: w.app,
  }) as ProxyNode,
);

const REGISTRY_KINDS = new Set(['Service', 'ServiceEntry', 'WorkloadEntry', 'Workload']);
const keyOf = (r: Resource) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;

/**
 * The daemon's side of a build: a config revision as one frozen list, and a registry
 * whose snapshot changes only when a registry kind does.
 */
class Mesh {
  readonly registrations = registrations();
  readonly registry = new ServiceRegistry();
  #resources = new Map<string, Resource>();
  #revision = 0;
  #listed: readonly Resource[] = Object.freeze([]);
  #registrySources: readonly Resource[] = [];

  readonly #instances = new Map<string, readonly WorkloadInstance[]>();

  constructor(yaml: string) {
    this.apply(yaml);
    for (const r of this.registrations.values()) this.setInstances(r.name, () => this.instancesOf(r));
  }

  instancesOf(r: WorkloadRegistration): WorkloadInstance[] {
    return r.replicas.map((rep) => ({ name: rep.id, address: rep.host, ports: Object.fromEntries(Object.entries(rep.ports).map(([c, p]) => [Number(c), p.inbound])), health: 'HEALTHY' as const }));
  }

  /** Replaces the running replicas of a workload (by name) with what `change` makes of them. */
  setInstances(workload: string, change: (current: readonly WorkloadInstance[]) => WorkloadInstance[]): void {
    const r = [...this.registrations.values()].find((x) => x.name === workload)!;
    const key = `${r.namespace}/${r.name}`;
    const next = change(this.#instances.get(key) ?? []);
    this.#instances.set(key, next);
    this.registry.setWorkloadInstances(key, next);
  }

  apply(yaml: string): void {
    for (const r of parse(yaml)) this.#resources.set(keyOf(r), r);
    this.#commit();
  }

  delete(kind: string, namespace: string, name: string): void {
    assert.ok(this.#resources.delete(`${kind}/${namespace}/${name}`), `${kind} ${namespace}/${name} exists`);
    this.#commit();
  }

  #commit(): void {
    this.#revision++;
    this.#listed = Object.freeze([...this.#resources.values()]);
    const sources = this.#listed.filter((r) => REGISTRY_KINDS.has(r.kind));
    if (sources.length !== this.#registrySources.length || sources.some((r, i) => r !== this.#registrySources[i])) {
      this.registry.setResources(sources);
      this.#registrySources = sources;
    }
  }

  get resources(): readonly Resource[] {
    return this.#listed;
  }

  get revision(): string {
    return String(this.#revision);
  }
}

/** Every proxy's config from `builder`. */
function buildAll(builder: ProxyConfigBuilder, mesh: Mesh): ProxyConfig[] {
  return NODES.map((node) => builder.build(node, mesh.resources, mesh.registry.snapshot(), mesh.registrations, mesh.revision));
}

/** Every proxy's config compiled whole, nothing shared or kept (a mutable resource list gets no sharing). */
function compileAll(mesh: Mesh): ProxyConfig[] {
  const fresh = new ProxyConfigBuilder();
  return NODES.map((node) => fresh.build(node, [...mesh.resources], mesh.registry.snapshot(), mesh.registrations, mesh.revision));
}

/** Compares as plain data: deep equality, key order included (the push server hashes JSON). */
function assertSame(actual: ProxyConfig[], expected: ProxyConfig[], step: string): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((config, i) => {
    assert.deepStrictEqual(JSON.parse(JSON.stringify(config)), JSON.parse(JSON.stringify(expected[i])), `${step}: ${NODES[i]!.id}`);
    assert.equal(JSON.stringify(config), JSON.stringify(expected[i]), `${step}: ${NODES[i]!.id} serialises the same`);
  });
}

// === the changes ===

const CHANGES: { name: string; change: (mesh: Mesh) => void }[] = [
  {
    name: 'VirtualService added',
    change: (m) =>
      m.apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings, port: {number: 9080}}}]
    retries: {attempts: 5, retryOn: "5xx,503"}
  tcp:
  - route: [{destination: {host: ratings, port: {number: 3306}}}]
`),
  },
  {
    name: 'VirtualService changed',
    change: (m) =>
      m.apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}, weight: 50}, {destination: {host: reviews, subset: v2}, weight: 50}]
    timeout: 7s
`),
  },
  {
    name: 'delegate VirtualService changed',
    change: (m) =>
      m.apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details-api, namespace: books}
spec:
  http:
  - route: [{destination: {host: details}}]
    timeout: 9s
`),
  },
  { name: 'VirtualService deleted', change: (m) => m.delete('VirtualService', 'shop', 'ratings') },
  {
    name: 'DestinationRule changed (read by another host’s routes too)',
    change: (m) =>
      m.apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 3}}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}, {name: v3, labels: {version: v3}}]
`),
  },
  {
    name: 'DestinationRule added in the client namespace',
    change: (m) =>
      m.apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details-from-shop, namespace: shop}
spec:
  host: details.books.svc.cluster.local
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 7}}}
`),
  },
  { name: 'Service added', change: (m) => m.apply(service('inventory', 'books', '[{name: http, port: 9080}]')) },
  { name: 'Service removed', change: (m) => m.delete('Service', 'shop', 'ratings') },
  {
    name: 'a sourceLabels VirtualService tells proxies of one namespace apart',
    change: (m) =>
      m.apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details-by-source, namespace: books}
spec:
  hosts: [catalog]
  http:
  - match: [{sourceLabels: {app: reviews}}]
    route: [{destination: {host: catalog, port: {number: 9080}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
  - route: [{destination: {host: catalog, port: {number: 9080}}}]
`),
  },
  {
    name: 'Sidecar added (egress scoped to its namespace)',
    change: (m) =>
      m.apply(`
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: books}
spec:
  egress: [{hosts: ["./*"]}]
`),
  },
  {
    name: 'Sidecar changed (REGISTRY_ONLY, wider egress)',
    change: (m) =>
      m.apply(`
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: books}
spec:
  egress: [{hosts: ["./*", "shop/reviews.shop.svc.cluster.local"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`),
  },
  { name: 'sourceLabels VirtualService deleted', change: (m) => m.delete('VirtualService', 'books', 'details-by-source') },
  {
    name: 'an AuthorizationPolicy for one workload (its inbound listeners get rbac)',
    change: (m) =>
      m.apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewers, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules: [{from: [{source: {namespaces: [shop]}}]}]
`),
  },
  {
    name: 'a RequestAuthentication for a namespace (its sidecars get jwt_authn)',
    change: (m) =>
      m.apply(`
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: books}
spec:
  jwtRules: [{issuer: "https://issuer.example", jwks: '{"keys":[]}'}]
`),
  },
  {
    name: 'a Telemetry for one namespace (its sidecars sample every request)',
    change: (m) =>
      m.apply(`
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: sampling, namespace: ops}
spec:
  tracing: [{randomSamplingPercentage: 100}]
`),
  },
  // Registry changes without a config change: what an endpoint's own proxy reads (its inbound
  // listeners' protocol and service) must follow them, and a kept own part must still be right.
  { name: 'a replica turns unready', change: (m) => m.setInstances('reviews-v1', (i) => [{ ...i[0]!, health: 'UNHEALTHY' }]) },
  { name: 'a workload scales up (a second replica)', change: (m) => m.setInstances('reviews-v1', (i) => [...i, { ...i[0]!, name: 'reviews-v1-1', address: '127.0.0.2' }]) },
  { name: 'a replica moves to another address', change: (m) => m.setInstances('details-v1', (i) => [{ ...i[0]!, address: '127.0.0.3' }]) },
  { name: 'a replica reports another port', change: (m) => m.setInstances('catalog-v1', (i) => [{ ...i[0]!, ports: { ...i[0]!.ports, 9090: 21_999 } }]) },
  { name: 'a workload loses its replicas', change: (m) => m.setInstances('ratings-v1', () => []) },
  { name: 'a workload gets its replica back', change: (m) => m.setInstances('ratings-v1', () => m.instancesOf(m.registrations.get('workload/shop/ratings-v1')!)) },
  { name: 'a Service port turns to gRPC (the inbound protocol of the pods it selects)', change: (m) => m.apply(service('catalog', 'books', '[{name: http, port: 9080}, {name: tcp-rpc, port: 9090}]')) },
];

describe('incremental builds', () => {
  test('after each change every proxy’s config equals a from-scratch build and a whole compile', () => {
    const mesh = new Mesh(BASE);
    const incremental = new ProxyConfigBuilder();
    assertSame(buildAll(incremental, mesh), compileAll(mesh), 'initial');
    for (const { name, change } of CHANGES) {
      change(mesh);
      const built = buildAll(incremental, mesh);
      assertSame(built, buildAll(new ProxyConfigBuilder(), mesh), `${name} (vs a new builder)`);
      assertSame(built, compileAll(mesh), `${name} (vs a whole compile)`);
    }
    assert.ok(incremental.stats.servicesReused > 0, 'later builds reused service parts');
  });

  test('one VirtualService change recompiles only the host it owns, once per proxy class', () => {
    const compiled: { host: string; classKey: string }[] = [];
    const mesh = new Mesh(BASE);
    const builder = new ProxyConfigBuilder({}, { onServiceCompiled: (host, classKey) => compiled.push({ host, classKey }) });
    buildAll(builder, mesh);
    const classes = builder.sharedClasses;
    assert.ok(classes >= 2, `the mesh has ${classes} proxy classes`);
    // The first build compiled each service once per distinct view of it, not once per class:
    // a service looks the same from every namespace but its own (where its short name works).
    const services = mesh.registry.snapshot().services.length;
    assert.ok(compiled.length < services * classes, `${compiled.length} service builds for ${services} services in ${classes} classes`);

    compiled.length = 0;
    const ownBefore = builder.stats.ownCompiled;
    mesh.apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
    timeout: 1s
`);
    const after = buildAll(builder, mesh);
    assert.deepEqual(new Set(compiled.map((c) => c.host)), new Set(['reviews.shop.svc.cluster.local']), 'only the changed host was compiled');
    assert.equal(compiled.length, new Set(compiled.map((c) => c.classKey)).size, 'at most once per class');
    assert.ok(compiled.length <= classes);
    assert.equal(builder.stats.ownCompiled, ownBefore, 'no sidecar’s own part was compiled again');
    assertSame(after, compileAll(mesh), 'after the change');
  });

  test('a replica turning unready recompiles only the services that select it', () => {
    const compiled: string[] = [];
    const mesh = new Mesh(BASE);
    const builder = new ProxyConfigBuilder({}, { onServiceCompiled: (host) => compiled.push(host) });
    buildAll(builder, mesh);
    compiled.length = 0;
    const registration = [...mesh.registrations.values()].find((r) => r.name.startsWith('reviews'))!;
    mesh.registry.setWorkloadInstances(
      `${registration.namespace}/${registration.name}`,
      registration.replicas.map((rep) => ({ name: rep.id, address: rep.host, ports: Object.fromEntries(Object.entries(rep.ports).map(([c, p]) => [Number(c), p.inbound])), health: 'UNHEALTHY' as const })),
    );
    const after = buildAll(builder, mesh);
    // reviews' own part, and front's, whose VirtualService (front-to-reviews) routes to reviews.
    assert.deepEqual(new Set(compiled), new Set(['reviews.shop.svc.cluster.local', 'front.shop.svc.cluster.local']), 'only what reads the changed service was compiled');
    assert.ok(mesh.registry.snapshot().services.length > 4);
    assertSame(after, compileAll(mesh), 'after the readiness change');
  });

  test('endpoint changes compile no sidecar’s own part: readiness, scaling, addresses (regression: every proxy was compiled again)', () => {
    const mesh = new Mesh(BASE);
    const builder = new ProxyConfigBuilder();
    buildAll(builder, mesh);
    const ownBefore = builder.stats.ownCompiled;
    mesh.setInstances('reviews-v1', (i) => [{ ...i[0]!, health: 'UNHEALTHY' }]);
    assertSame(buildAll(builder, mesh), compileAll(mesh), 'after the readiness change');
    mesh.setInstances('reviews-v1', (i) => [...i, { ...i[0]!, name: 'reviews-v1-1', address: '127.0.0.2' }]);
    assertSame(buildAll(builder, mesh), compileAll(mesh), 'after scaling up');
    mesh.setInstances('details-v1', (i) => [{ ...i[0]!, address: '127.0.0.3' }]);
    assertSame(buildAll(builder, mesh), compileAll(mesh), 'after an address change');
    assert.equal(builder.stats.ownCompiled, ownBefore, 'no own part was compiled again');
    // What the own part does read: the port an endpoint of the workload is on.
    mesh.setInstances('catalog-v1', (i) => [{ ...i[0]!, ports: { ...i[0]!.ports, 9090: 21_999 } }]);
    assertSame(buildAll(builder, mesh), compileAll(mesh), 'after a port change');
    assert.ok(builder.stats.ownCompiled > ownBefore, 'a port change compiles own parts again');
  });

  test('an AuthorizationPolicy applied after a sidecar’s first config reaches its inbound listeners (regression: the builder kept the own part without it)', () => {
    const mesh = new Mesh(BASE);
    const builder = new ProxyConfigBuilder();
    buildAll(builder, mesh);
    mesh.apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: shop}
spec: {}
`);
    const reviews = buildAll(builder, mesh)[NODES.findIndex((n) => n.workload === 'reviews-v1')]!;
    const inbound = reviews.listeners.filter((l) => l.direction === 'inbound' && l.http);
    assert.ok(inbound.length > 0);
    for (const l of inbound) assert.ok(l.http!.filters?.some((f) => f.name === 'sinew.filters.http.rbac'), `${l.name} enforces the policy`);
  });

  test('a VirtualService change compiles no sidecar’s telemetry; a Telemetry change does', () => {
    const mesh = new Mesh(BASE);
    const builder = new ProxyConfigBuilder();
    buildAll(builder, mesh);
    const before = builder.stats.telemetryCompiled;
    mesh.apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
    timeout: 2s
`);
    assertSame(buildAll(builder, mesh), compileAll(mesh), 'after the VirtualService change');
    assert.equal(builder.stats.telemetryCompiled, before);
    mesh.apply(`
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: sampling, namespace: shop}
spec:
  tracing: [{randomSamplingPercentage: 100}]
`);
    assertSame(buildAll(builder, mesh), compileAll(mesh), 'after the Telemetry change');
    assert.ok(builder.stats.telemetryCompiled > before);
  });

  test('a change that no route reads compiles nothing', () => {
    const compiled: string[] = [];
    const mesh = new Mesh(BASE);
    const builder = new ProxyConfigBuilder({}, { onServiceCompiled: (host) => compiled.push(host) });
    buildAll(builder, mesh);
    compiled.length = 0;
    // A Gateway-bound VirtualService does not reach sidecars.
    mesh.apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: shop}
spec:
  hosts: [shop.example.com]
  gateways: [edge]
  http:
  - route: [{destination: {host: front}}]
`);
    const after = buildAll(builder, mesh);
    assert.deepEqual(compiled, []);
    assertSame(after, compileAll(mesh), 'after the change');
  });

  test('a proxy compiled alone by the compiler equals the builder’s', () => {
    const mesh = new Mesh(BASE);
    const builder = new ProxyConfigBuilder();
    const built = buildAll(builder, mesh);
    const alone = compileAll(mesh);
    assertSame(built, alone, 'builder vs whole');
    // compileProxyConfig is what the builder's whole compile rests on; spot-check it directly.
    const node = NODES[0]!;
    const direct = compileProxyConfig({ version: `${mesh.revision}.${mesh.registry.snapshot().revision}`, config: { resources: [...mesh.resources] }, registry: mesh.registry.snapshot(), node, mesh: builder.mesh, ports: { outbound: { host: '127.0.0.1', port: 20_008 }, inbound: [{ containerPort: 9080, listen: { host: '127.0.0.1', port: 20_000 }, app: { host: '127.0.0.1', port: 20_001 } }] } });
    assert.equal(JSON.stringify(direct), JSON.stringify(built[0]));
  });
});
