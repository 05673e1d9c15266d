/**
 * DESIGN.md behaviour 12: of several VirtualServices claiming one host for sidecars the oldest
 * (creationTimestamp, then name) wins; at gateways they merge in creation order. The resources
 * go through the real config store, which stamps creationTimestamp as the API server does, so
 * the order is the order in which they were applied.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyConfig, Route } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { MemoryConfigStore } from '../../src/config/store.js';
import { byCreation } from '../../src/semantics/creation-order.js';
import { compile, parse, workload } from './support/mesh.js';

const ECHO = 'echo.default.svc.cluster.local';
const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

const echoService = parse(`
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
`);
const echoWorkload = workload('echo-v1', { labels: { app: 'echo', version: 'v1' }, ports: [{ name: 'http', containerPort: 8080 }] });
const instances = new Map([['default/echo-v1', [{ name: 'echo-v1-0', address: '127.0.0.1', ports: { 8080: 28080 } }]]]);

/** The VirtualService `echo` of the issue: the same host, its own header. */
const echoVirtualService = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo}}]
    headers: {request: {set: {x-routed-by: echo}}}
`);

/** Applies each batch in turn to a store whose clock moves one second per apply; returns what is in force. */
async function applyInOrder(...batches: Resource[][]): Promise<readonly Resource[]> {
  let now = Date.parse('2025-03-01T10:00:00Z');
  const store = new MemoryConfigStore({ now: () => (now += 1000) });
  for (const batch of batches) await store.apply(batch);
  return store.list();
}

function echoRoutes(config: ProxyConfig): Route[] {
  return config.routeConfigs.find((r) => r.name === '80')!.virtualHosts.find((h) => h.name === `${ECHO}:80`)!.routes;
}

describe('oldest VirtualService wins a host for sidecars', () => {
  // Regression: `sinew apply` stamped no creation time, so the VirtualService whose *name*
  // sorted first (`default`) took the host from the older `echo`; Istio keeps `echo`.
  test('set-authority-header.yaml (name "default") applied after VirtualService "echo" leaves the host to "echo"', async () => {
    const inForce = await applyInOrder([...echoService, echoWorkload], echoVirtualService, parse(fixture('set-authority-header.yaml')));
    const routes = echoRoutes(compile(inForce, instances, { workload: 'client', labels: { app: 'client' } }));
    assert.deepEqual(routes.map((r) => r.name), ['default/echo/0']);
    assert.deepEqual(routes[0].requestHeaders, { set: { 'x-routed-by': 'echo' } });
  });

  test('applied the other way round, "default" is the older and keeps the host', async () => {
    const inForce = await applyInOrder([...echoService, echoWorkload], parse(fixture('set-authority-header.yaml')), echoVirtualService);
    const routes = echoRoutes(compile(inForce, instances, { workload: 'client', labels: { app: 'client' } }));
    assert.deepEqual(routes.map((r) => r.name), ['default/default/0']);
    assert.deepEqual(routes[0].requestHeaders, { set: { ':authority': 'my-custom-authority' } });
  });

  test('an update keeps the creation time, so it keeps the host too', async () => {
    let now = Date.parse('2025-03-01T10:00:00Z');
    const store = new MemoryConfigStore({ now: () => (now += 1000) });
    await store.apply([...echoService, echoWorkload]);
    await store.apply(echoVirtualService);
    await store.apply(parse(fixture('set-authority-header.yaml')));
    await store.apply(parse(fixture('set-authority-header.yaml').replace('my-custom-authority', 'another-authority')));
    await store.apply(parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo}}]
    headers: {request: {set: {x-routed-by: echo-updated}}}
`));
    const routes = echoRoutes(compile(store.list(), instances, { workload: 'client', labels: { app: 'client' } }));
    assert.deepEqual(routes[0].requestHeaders, { set: { 'x-routed-by': 'echo-updated' } });
  });

  test('equal creation times fall back to the name, then the namespace (Istio sortConfigByCreationTime)', () => {
    const at = (name: string, namespace: string, creationTimestamp?: string) => ({ metadata: { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) } });
    const sorted = [at('b', 'x', '2025-01-01T00:00:00Z'), at('a', 'y', '2025-01-01T00:00:00.000Z'), at('a', 'x', '2025-01-01T00:00:00Z'), at('z', 'z', '2024-12-31T23:59:59.999Z'), at('c', 'c')]
      .sort(byCreation)
      .map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
    // No timestamp counts as the oldest (Go's zero time); second- and millisecond-precision stamps compare as instants.
    assert.deepEqual(sorted, ['c/c', 'z/z', 'x/a', 'y/a', 'x/b']);
  });
});

describe('VirtualServices merge at gateways in creation order', () => {
  const gateway = parse(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`);
  const bound = (name: string, prefix: string) =>
    parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec:
  hosts: [echo.example.com]
  gateways: [istio-system/edge]
  http:
  - match: [{uri: {prefix: ${prefix}}}]
    route: [{destination: {host: echo}}]
`);
  const gatewayNode = { mode: 'router' as const, workload: 'ingress', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: {} };

  test('the routes of the VirtualService applied first come first, whatever the names', async () => {
    const inForce = await applyInOrder([...echoService, echoWorkload, ...gateway], bound('zeta', '/'), bound('alpha', '/alpha'));
    const config = compile(inForce, instances, gatewayNode);
    const host = config.routeConfigs.find((r) => r.name === 'http.80')!.virtualHosts.find((h) => h.domains.includes('echo.example.com'))!;
    // zeta's catch-all was there first: alpha's /alpha route comes after it (and is shadowed), as in Istio.
    assert.deepEqual(host.routes.map((r) => r.name), ['default/zeta/0', 'default/alpha/0']);
  });
});
