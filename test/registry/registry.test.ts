/**
 * The service registry: services from Kubernetes Services, ServiceEntries and
 * WorkloadEntries; endpoints through selectors and target ports; host resolution.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateText } from '../../src/config/validate.js';
import { deepFreeze } from '../../src/core/freeze.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { ServiceRegistry, buildRegistrySnapshot, kubeServicePortProtocol, protocolFromPortName, type RegistrySnapshot, type WorkloadInstance } from '../../src/registry/index.js';

function parse(yaml: string): Resource[] {
  const r = validateText('registry.yaml', yaml);
  assert.deepEqual(r.diagnostics.filter((d) => d.level === 'error'), []);
  return r.resources;
}

/** Workloads are built directly: their spec schema belongs to the config part. */
function workload(name: string, labels: Record<string, string>, spec: Record<string, unknown>, namespace = 'default'): Resource {
  return deepFreeze({ apiVersion: 'sinew.dev/v1alpha1', group: 'sinew.dev', kind: 'Workload', metadata: { name, namespace, labels }, spec: { command: ['node', `${name}.js`], ...spec } }) as Resource;
}

function service(snap: RegistrySnapshot, host: string) {
  const s = snap.services.find((x) => x.hostname === host);
  assert.ok(s, `service ${host} missing`);
  return s;
}

describe('Kubernetes Services and Workloads', () => {
  const resources = [
    ...parse(`
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: default}
spec:
  selector: {app: httpbin}
  ports:
  - {name: http, port: 8000, targetPort: web}
  - {name: grpc-api, port: 7070, targetPort: 7070}
  - {name: metrics, port: 9090, appProtocol: http2}
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: foo, annotations: {networking.istio.io/exportTo: "."}}
spec:
  selector: {app: httpbin}
  ports: [{name: tcp, port: 1}]
`),
    workload('httpbin-v1', { app: 'httpbin', version: 'v1' }, {
      serviceAccount: 'httpbin',
      ports: [
        { name: 'web', containerPort: 8080 },
        { name: 'grpc', containerPort: 7070 },
      ],
      readinessProbe: { httpGet: { path: '/ready', port: 'web' }, periodSeconds: 2 },
    }),
    workload('httpbin-v2', { app: 'httpbin', version: 'v2' }, { ports: [{ name: 'grpc', containerPort: 7070 }] }),
    workload('curl', { app: 'curl' }, { ports: [{ name: 'web', containerPort: 8080 }] }),
  ];
  const registry = new ServiceRegistry();
  registry.setResources(resources);
  registry.setWorkloadInstances('default/httpbin-v1', [
    { name: 'httpbin-v1-0', address: '127.0.0.1', ports: { 8080: 21000, 7070: 21001 } },
    { name: 'httpbin-v1-1', address: '127.0.0.2', health: 'UNHEALTHY' },
  ]);
  registry.setWorkloadInstances('default/httpbin-v2', [{ name: 'httpbin-v2-0', address: '127.0.0.3' }]);
  registry.setWorkloadInstances('default/curl', [{ name: 'curl-0', address: '127.0.0.9' }]);
  const snap = registry.snapshot();
  const httpbin = service(snap, 'httpbin.default.svc.cluster.local');

  test('host name, ports and protocols', () => {
    assert.equal(httpbin.namespace, 'default');
    assert.equal(httpbin.resolution, 'EDS');
    assert.deepEqual(httpbin.ports.map((p) => [p.port, p.protocol]), [
      [8000, 'HTTP'],
      [7070, 'GRPC'],
      [9090, 'HTTP2'],
    ]);
  });

  test('named targetPort resolves through the containerPort name; pods without it are skipped', () => {
    const eps = httpbin.endpoints['8000'];
    assert.deepEqual(eps.map((e) => [e.address, e.port, e.health]), [
      ['127.0.0.1', 21000, 'HEALTHY'],
      ['127.0.0.2', 8080, 'UNHEALTHY'],
    ]);
    assert.equal(eps[0].identity, 'spiffe://cluster.local/ns/default/sa/httpbin');
    assert.deepEqual(eps[0].workload, { name: 'httpbin-v1', namespace: 'default' });
    assert.deepEqual(eps[0].labels, { app: 'httpbin', version: 'v1' });
  });

  test('numeric targetPort selects every matching workload; other labels do not', () => {
    const eps = snap.services.find((s) => s.hostname === 'httpbin.default.svc.cluster.local')!.endpoints['7070'];
    assert.deepEqual(eps.map((e) => `${e.address}:${e.port}`), ['127.0.0.1:21001', '127.0.0.2:7070', '127.0.0.3:7070']);
    assert.equal(eps[2].identity, 'spiffe://cluster.local/ns/default/sa/default');
  });

  test('a Service selects workloads of its own namespace only', () => {
    assert.deepEqual(service(snap, 'other.foo.svc.cluster.local').endpoints['1'], []);
    assert.deepEqual(service(snap, 'other.foo.svc.cluster.local').exportTo, ['.']);
  });

  test('readinessProbe becomes an active health check on the mapped port', () => {
    assert.deepEqual(httpbin.endpoints['8000'][0].healthCheck, { httpPath: '/ready', port: 21000, intervalMs: 2000, timeoutMs: 1000, unhealthyThreshold: 3, healthyThreshold: 1 });
  });

  test('snapshots are frozen and change only with the registry', () => {
    assert.ok(Object.isFrozen(snap) && Object.isFrozen(httpbin.endpoints['8000'][0]));
    assert.equal(registry.snapshot(), snap);
  });
});

describe('targetPort as Kubernetes resolves it', () => {
  // tcp-echo's Service has ports 9000 and 9001; its Workloads declare only 9000.
  const resources = [
    ...parse(`
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: default}
spec:
  selector: {app: tcp-echo}
  ports:
  - {name: tcp, port: 9000}
  - {name: tcp-other, port: 9001}
  - {name: by-name, port: 9100, targetPort: tcp}
  - {name: missing-name, port: 9200, targetPort: nope}
`),
    workload('tcp-echo-v1', { app: 'tcp-echo' }, { ports: [{ name: 'tcp', containerPort: 9000 }] }),
  ];

  test('regression: a Service port no Workload declares (tcp-echo 9001) has no endpoint, where it used to become 127.0.0.1:9001', () => {
    const registry = new ServiceRegistry();
    registry.setResources(resources);
    registry.setWorkloadInstances('default/tcp-echo-v1', [{ name: 'tcp-echo-v1-0', address: '127.0.0.1', ports: { 9000: 21000 } }]);
    const svc = service(registry.snapshot(), 'tcp-echo.default.svc.cluster.local');
    assert.deepEqual(svc.endpoints['9001'], []);
    assert.deepEqual(svc.endpoints['9000'].map((e) => `${e.address}:${e.port}`), ['127.0.0.1:21000']);
    assert.deepEqual(svc.endpoints['9100'].map((e) => `${e.address}:${e.port}`), ['127.0.0.1:21000'], 'a name resolves to the declared containerPort');
    assert.deepEqual(svc.endpoints['9200'], [], 'a name no container port has: no endpoint');
  });

  test('a replica whose reported ports lack the containerPort is left out', () => {
    const registry = new ServiceRegistry();
    registry.setResources(resources);
    registry.setWorkloadInstances('default/tcp-echo-v1', [
      { name: 'tcp-echo-v1-0', address: '127.0.0.1', ports: { 9000: 21000 } },
      { name: 'tcp-echo-v1-1', address: '127.0.0.1', ports: {} },
    ]);
    assert.deepEqual(service(registry.snapshot(), 'tcp-echo.default.svc.cluster.local').endpoints['9000'].map((e) => e.port), [21000]);
  });
});

describe('subscribers', () => {
  test('are told about every change, with the new snapshot', () => {
    const registry = new ServiceRegistry();
    registry.setResources(parse(`
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec: {selector: {app: a}, ports: [{name: http, port: 80, targetPort: 8080}]}
`).concat(workload('a', { app: 'a' }, { ports: [{ containerPort: 8080 }] })));
    const seen: number[] = [];
    const off = registry.subscribe((s) => seen.push(s.services[0].endpoints['80'].length));
    registry.setWorkloadInstances('default/a', [{ name: 'a-0', address: '127.0.0.1' }]);
    registry.setWorkloadInstances('default/a', []);
    off();
    registry.setWorkloadInstances('default/a', [{ name: 'a-0', address: '127.0.0.1' }]);
    assert.deepEqual(seen, [1, 0]);
    assert.ok(registry.snapshot().revision > 2);
  });

  test('a service that did not change keeps its object across snapshots; a changed one gets a new one', () => {
    const registry = new ServiceRegistry();
    const svc = (name: string) => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec: {selector: {app: ${name}}, ports: [{name: http, port: 80, targetPort: 8080}]}
`;
    registry.setResources(parse(svc('a') + svc('b')).concat(workload('a', { app: 'a' }, { ports: [{ containerPort: 8080 }] }), workload('b', { app: 'b' }, { ports: [{ containerPort: 8080 }] })));
    registry.setWorkloadInstances('default/a', [{ name: 'a-0', address: '127.0.0.1' }]);
    registry.setWorkloadInstances('default/b', [{ name: 'b-0', address: '127.0.0.2' }]);
    const before = registry.snapshot();
    registry.setWorkloadInstances('default/a', [{ name: 'a-0', address: '127.0.0.1', health: 'UNHEALTHY' }]);
    const after = registry.snapshot();
    const byName = (snap: RegistrySnapshot, name: string) => snap.services.find((x) => x.name === name)!;
    assert.notEqual(after, before);
    assert.equal(byName(after, 'b'), byName(before, 'b'), 'b is untouched: same object');
    assert.notEqual(byName(after, 'a'), byName(before, 'a'));
    assert.equal(byName(after, 'a').endpoints['80'][0].health, 'UNHEALTHY');
    assert.ok(Object.isFrozen(after) && Object.isFrozen(after.services));
  });

  test('batch: one notification for several updates', () => {
    const registry = new ServiceRegistry();
    let calls = 0;
    registry.subscribe(() => calls++);
    registry.batch(() => {
      registry.setResources([workload('a', { app: 'a' }, {})]);
      registry.setWorkloadInstances('default/a', [{ name: 'a-0', address: '127.0.0.1' }]);
      registry.setWorkloadInstances('default/b', [{ name: 'b-0', address: '127.0.0.1' }]);
    });
    assert.equal(calls, 1);
  });
});

describe('ServiceEntry', () => {
  const registry = new ServiceRegistry();
  registry.setResources(
    parse(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns, namespace: default}
spec:
  hosts: [api.example.com, www.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static, namespace: default}
spec:
  hosts: [db.mesh]
  location: MESH_INTERNAL
  ports: [{number: 5432, name: tcp, protocol: TCP, targetPort: 15432}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, labels: {zone: a}}
  - {address: 10.0.0.2, ports: {tcp: 6000}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm, namespace: default}
spec:
  hosts: [vm.mesh]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: vm}}
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: default}
spec:
  address: 192.168.1.5
  ports: {http: 8081}
  labels: {app: vm}
  serviceAccount: vm-sa
  locality: us-east/zone-a
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none, namespace: default}
spec:
  hosts: ["*.wikipedia.org"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE
`),
  );
  const snap = registry.snapshot();

  test('DNS: one service per host; the host itself is the endpoint', () => {
    const s = service(snap, 'api.example.com');
    assert.equal(s.resolution, 'DNS');
    assert.equal(s.location, 'MESH_EXTERNAL');
    assert.equal(s.ports[0].protocol, 'HTTPS');
    assert.deepEqual(s.endpoints['443'].map((e) => `${e.address}:${e.port}`), ['api.example.com:443']);
    assert.ok(snap.services.some((x) => x.hostname === 'www.example.com'));
  });

  test('STATIC: inline endpoints, with their own port by name, else targetPort', () => {
    const s = service(snap, 'db.mesh');
    assert.equal(s.location, 'MESH_INTERNAL');
    assert.deepEqual(s.endpoints['5432'].map((e) => `${e.address}:${e.port}`), ['10.0.0.1:15432', '10.0.0.2:6000']);
    assert.deepEqual(s.endpoints['5432'][0].labels, { zone: 'a' });
  });

  test('workloadSelector picks WorkloadEntries and their named ports', () => {
    const s = service(snap, 'vm.mesh');
    const [e] = s.endpoints['80'];
    assert.equal(`${e.address}:${e.port}`, '192.168.1.5:8081');
    assert.equal(e.identity, 'spiffe://cluster.local/ns/default/sa/vm-sa');
    assert.equal(e.locality, 'us-east/zone-a');
    assert.deepEqual(s.exportTo, ['.']);
  });

  test('NONE: no endpoints, clients connect where they asked', () => {
    const s = service(snap, '*.wikipedia.org');
    assert.equal(s.resolution, 'NONE');
    assert.deepEqual(s.endpoints['80'], []);
  });
});

describe('ExternalName Services', () => {
  test('are DNS services whose endpoint is the external name', () => {
    const registry = new ServiceRegistry();
    registry.setResources(parse(`
apiVersion: v1
kind: Service
metadata: {name: search, namespace: default}
spec:
  type: ExternalName
  externalName: www.example.com
  ports: [{name: http, port: 80}]
`));
    const s = service(registry.snapshot(), 'search.default.svc.cluster.local');
    assert.equal(s.resolution, 'DNS');
    assert.deepEqual(s.endpoints['80'].map((e) => `${e.address}:${e.port}`), ['www.example.com:80']);
  });
});

describe('host resolution', () => {
  const registry = new ServiceRegistry();
  registry.setResources(parse(`
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
`));

  test('Kubernetes search path', () => {
    assert.equal(registry.resolveHost('reviews', 'default'), 'reviews.default.svc.cluster.local');
    assert.equal(registry.resolveHost('reviews.default', 'foo'), 'reviews.default.svc.cluster.local');
    assert.equal(registry.resolveHost('reviews.default.svc', 'foo'), 'reviews.default.svc.cluster.local');
    assert.equal(registry.resolveHost('Reviews.default.svc.cluster.local.', 'foo'), 'reviews.default.svc.cluster.local');
    assert.equal(registry.resolveHost('example.com', 'default'), 'example.com');
    // Unknown single labels are Services of the caller's namespace; unknown dotted names are external.
    assert.equal(registry.resolveHost('ratings', 'foo'), 'ratings.foo.svc.cluster.local');
    assert.equal(registry.resolveHost('unknown.org', 'foo'), 'unknown.org');
  });

  test('findService prefers the caller\'s namespace', () => {
    assert.equal(registry.findService('reviews.default.svc.cluster.local')?.name, 'reviews');
  });
});

describe('protocol detection (Istio ConvertProtocol)', () => {
  test('port name prefixes and appProtocol', () => {
    const cases: [Parameters<typeof kubeServicePortProtocol>[0], string][] = [
      [{ name: 'http' }, 'HTTP'],
      [{ name: 'http-web' }, 'HTTP'],
      [{ name: 'HTTP2' }, 'HTTP2'],
      [{ name: 'grpc-api' }, 'GRPC'],
      [{ name: 'grpc-web' }, 'GRPC-WEB'],
      [{ name: 'https' }, 'HTTPS'],
      [{ name: 'tls-foo' }, 'TLS'],
      [{ name: 'tcp' }, 'TCP'],
      [{ name: 'mongo' }, 'MONGO'],
      [{ name: 'web' }, 'UNSUPPORTED'],
      [{}, 'UNSUPPORTED'],
      [{ name: 'web', appProtocol: 'http' }, 'HTTP'],
      [{ name: 'tcp', appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
      [{ name: 'http', appProtocol: 'kubernetes.io/ws' }, 'HTTP'],
      [{ name: 'http', protocol: 'UDP' }, 'UDP'],
      [{ name: 'grpc', appProtocol: 'custom' }, 'GRPC'],
    ];
    for (const [port, expected] of cases) assert.equal(kubeServicePortProtocol(port), expected, JSON.stringify(port));
    assert.equal(protocolFromPortName('httpx'), 'UNSUPPORTED');
  });
});

describe('instance changes build only the services that select the workload', () => {
  const resources = [
    ...parse(`
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: all-apps, namespace: default}
spec:
  selector: {tier: app}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: other}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm-reviews, namespace: default}
spec:
  hosts: [reviews.vm.example]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: reviews}}
`),
    workload('reviews-v1', { app: 'reviews', tier: 'app' }, { ports: [{ name: 'http', containerPort: 9080 }] }),
    workload('reviews-v1', { app: 'reviews' }, { ports: [{ name: 'http', containerPort: 9080 }] }, 'other'),
    workload('ratings-v1', { app: 'ratings', tier: 'app' }, { ports: [{ name: 'http', containerPort: 9080 }] }),
  ];
  const instance = (name: string, address: string, health: 'HEALTHY' | 'UNHEALTHY' = 'HEALTHY') => ({ name, address, health });
  /** What a registry was given, kept beside it to build the same snapshot from scratch. */
  class Given {
    resources: readonly Resource[] = resources;
    readonly instances = new Map<string, WorkloadInstance[]>();
    constructor(readonly registry: ServiceRegistry) {
      registry.setResources(resources);
    }
    setInstances(key: string, list: WorkloadInstance[]): void {
      if (list.length) this.instances.set(key, list);
      else this.instances.delete(key);
      this.registry.setWorkloadInstances(key, list);
    }
    setResources(list: readonly Resource[]): void {
      this.resources = list;
      this.registry.setResources(list);
    }
  }
  const steps: [string, (g: Given) => void][] = [
    ['a replica turns unready', (g) => g.setInstances('default/reviews-v1', [instance('reviews-v1-0', '10.0.0.1', 'UNHEALTHY'), instance('reviews-v1-1', '10.0.0.2')])],
    ['a replica joins', (g) => g.setInstances('default/reviews-v1', [instance('reviews-v1-0', '10.0.0.1', 'UNHEALTHY'), instance('reviews-v1-1', '10.0.0.2'), instance('reviews-v1-2', '10.0.0.3')])],
    ['the same replicas again', (g) => g.setInstances('default/reviews-v1', [instance('reviews-v1-0', '10.0.0.1', 'UNHEALTHY'), instance('reviews-v1-1', '10.0.0.2'), instance('reviews-v1-2', '10.0.0.3')])],
    ['instances of a Workload the resources do not have', (g) => g.setInstances('default/ghost', [instance('ghost-0', '10.0.0.9')])],
    ['the workload in another namespace', (g) => g.setInstances('other/reviews-v1', [instance('reviews-v1-0', '10.1.0.1')])],
    ['a workload loses every replica', (g) => g.setInstances('default/ratings-v1', [])],
    ['the resources change (a Service removed)', (g) => g.setResources(resources.filter((x) => !(x.kind === 'Service' && x.metadata.name === 'ratings')))],
    ['a replica turns ready after the resources changed', (g) => g.setInstances('default/reviews-v1', [instance('reviews-v1-0', '10.0.0.1')])],
    ['two workloads change in one batch', (g) => g.registry.batch(() => {
      g.setInstances('default/reviews-v1', [instance('reviews-v1-0', '10.0.0.1', 'UNHEALTHY')]);
      g.setInstances('default/ratings-v1', [instance('ratings-v1-0', '10.0.0.5')]);
    })],
  ];

  test('each snapshot equals one built from scratch, and unchanged services keep their objects', () => {
    const given = new Given(new ServiceRegistry());
    given.setInstances('default/reviews-v1', [instance('reviews-v1-0', '10.0.0.1'), instance('reviews-v1-1', '10.0.0.2')]);
    given.setInstances('default/ratings-v1', [instance('ratings-v1-0', '10.0.0.5')]);
    let before = given.registry.snapshot();
    for (const [step, change] of steps) {
      change(given);
      const after = given.registry.snapshot();
      const scratch = buildRegistrySnapshot(given.resources, given.instances, after.revision);
      assert.equal(JSON.stringify(after), JSON.stringify(scratch), step);
      for (const s of after.services) {
        const old = before.services.find((o) => o.hostname === s.hostname && o.namespace === s.namespace);
        if (old && JSON.stringify(old) === JSON.stringify(s)) assert.equal(s, old, `${step}: ${s.hostname} keeps its object`);
      }
      assert.ok(Object.isFrozen(after) && after.services.every((s) => Object.isFrozen(s)), `${step}: frozen`);
      before = after;
    }
  });

  test('a replica turning unready builds the services that select it, no others (regression: every service was built again)', () => {
    const registry = new ServiceRegistry();
    registry.setResources(resources);
    registry.setWorkloadInstances('default/reviews-v1', [instance('reviews-v1-0', '10.0.0.1'), instance('reviews-v1-1', '10.0.0.2')]);
    registry.snapshot();
    const built = registry.servicesBuilt;
    registry.setWorkloadInstances('default/reviews-v1', [instance('reviews-v1-0', '10.0.0.1', 'UNHEALTHY'), instance('reviews-v1-1', '10.0.0.2')]);
    const snap = registry.snapshot();
    // reviews and all-apps in default, and the ServiceEntry selecting app=reviews there.
    assert.equal(registry.servicesBuilt - built, 3);
    assert.equal(service(snap, 'reviews.default.svc.cluster.local').endpoints['9080']![0]!.health, 'UNHEALTHY');
    assert.equal(service(snap, 'reviews.vm.example').endpoints['9080']![0]!.health, 'UNHEALTHY');
  });
});

describe('Services without a selector take their endpoints from the EndpointSlices that name them', () => {
  // As in the Gateway API suite's HTTPRouteServiceTypes (conformance/tests/httproute-service-types.yaml):
  // a Service without a selector, headless or not, and slices written by hand for it.
  const resources = [
    ...parse(`
apiVersion: v1
kind: Service
metadata: {name: manual, namespace: infra}
spec:
  ports: [{name: first-port, port: 8080, targetPort: 3000}]
---
apiVersion: v1
kind: Service
metadata: {name: headless-manual, namespace: infra}
spec:
  clusterIP: None
  ports: [{name: first-port, port: 8080, targetPort: 3000}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: infra}
spec:
  clusterIP: None
  selector: {app: backend}
  ports: [{name: first-port, port: 8080, targetPort: 3000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-ip4, namespace: infra, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
ports: [{name: first-port, port: 3000, protocol: TCP}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: backend-0, namespace: infra}
- addresses: [192.0.2.7]
- addresses: [192.0.2.8]
  conditions: {ready: false}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-ip6, namespace: infra, labels: {kubernetes.io/service-name: manual}}
addressType: IPv6
ports: [{name: first-port, port: 3000, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: headless-manual-ip4, namespace: infra, labels: {kubernetes.io/service-name: headless-manual}}
addressType: IPv4
ports: [{name: other-port, port: 3000}]
endpoints:
- addresses: [127.0.0.1]
  targetRef: {kind: Pod, name: backend-0, namespace: infra}
`),
    workload('backend', { app: 'backend' }, { ports: [{ name: 'http', containerPort: 3000 }] }, 'infra'),
  ];
  const registry = new ServiceRegistry();
  registry.setResources(resources);
  // the embedded runner's replica: containerPort 3000 reached through its sidecar on 41000
  registry.setWorkloadInstances('infra/backend', [{ name: 'backend-0', address: '127.0.0.1', ports: { 3000: 41000 }, sidecar: true }]);
  const snap = registry.snapshot();

  test('an endpoint naming a running pod is that replica, through its sidecar; another address is reached as written; an unready one is left out', () => {
    const eps = service(snap, 'manual.infra.svc.cluster.local').endpoints['8080'];
    assert.deepEqual(
      eps.map((e) => [e.address, e.port, e.tlsMode ?? 'none', e.workload?.name ?? '-']),
      [
        ['127.0.0.1', 41000, 'istio', 'backend'],
        ['192.0.2.7', 3000, 'none', '-'],
      ],
    );
  });

  test('a slice port pairs with the Service port of its name: another name gives no endpoints', () => {
    assert.deepEqual(service(snap, 'headless-manual.infra.svc.cluster.local').endpoints['8080'], []);
  });

  test('a headless Service with a selector selects its workloads as any other', () => {
    const eps = service(snap, 'headless.infra.svc.cluster.local').endpoints['8080'];
    assert.deepEqual(eps.map((e) => [e.address, e.port]), [['127.0.0.1', 41000]]);
  });

  test('a slice of a Service with a selector adds nothing to it', () => {
    const withSlice = new ServiceRegistry();
    withSlice.setResources([...resources, ...parse(`
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: headless-extra, namespace: infra, labels: {kubernetes.io/service-name: headless}}
addressType: IPv4
ports: [{name: first-port, port: 3000}]
endpoints: [{addresses: [192.0.2.9]}]
`)]);
    withSlice.setWorkloadInstances('infra/backend', [{ name: 'backend-0', address: '127.0.0.1', ports: { 3000: 41000 }, sidecar: true }]);
    assert.deepEqual(service(withSlice.snapshot(), 'headless.infra.svc.cluster.local').endpoints['8080'].map((e) => e.address), ['127.0.0.1']);
  });

  test('a replica behind a slice changing is seen by the incremental build as by a build from scratch (its sidecar port moved)', () => {
    // Enough other Services that one workload's change is built incrementally (a quarter or more rebuilds all).
    const others = Array.from({ length: 8 }, (_, i) => parse(`
apiVersion: v1
kind: Service
metadata: {name: other-${i}, namespace: default}
spec:
  selector: {app: other-${i}}
  ports: [{name: http, port: 80}]
`)).flat();
    const all = [...resources, ...others];
    const registry = new ServiceRegistry();
    registry.setResources(all);
    const before: WorkloadInstance[] = [{ name: 'backend-0', address: '127.0.0.1', ports: { 3000: 41000 }, sidecar: true }];
    registry.setWorkloadInstances('infra/backend', before);
    registry.snapshot();
    const after: WorkloadInstance[] = [{ name: 'backend-0', address: '127.0.0.1', ports: { 3000: 42000 }, sidecar: true }];
    registry.setWorkloadInstances('infra/backend', after);
    const incremental = registry.snapshot();
    const scratch = buildRegistrySnapshot(all, new Map([['infra/backend', after]]), incremental.revision);
    assert.equal(JSON.stringify(incremental), JSON.stringify(scratch));
    assert.ok(service(incremental, 'manual.infra.svc.cluster.local').endpoints['8080'].some((e) => e.port === 42000));
  });
});
