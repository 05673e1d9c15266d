/**
 * TLSRoute at a Gateway API Gateway: a TLS listener in Passthrough mode becomes SNI filter chains
 * on the Gateway's proxy (the hostnames each route serves there, its weighted backends, a
 * ReferenceGrant for a backend in another namespace), checked and chosen as the proxy does; and
 * the status the suite expects of such listeners and routes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Listener } from '../../src/api/proxy-config.js';
import { gatewayApiStatus } from '../../src/config/gateway-api/status.js';
import { filterChainProblems, selectChain } from '../../src/proxy/transport/filter-chains.js';
import { compile, parse } from './support/mesh.js';

const NS = 'apps';

const world = `apiVersion: v1
kind: Service
metadata: {name: tls-a, namespace: ${NS}}
spec:
  selector: {app: tls-a}
  ports: [{name: tls, port: 8443}]
---
apiVersion: v1
kind: Service
metadata: {name: tls-b, namespace: ${NS}}
spec:
  selector: {app: tls-b}
  ports: [{name: tls, port: 8443}]
---
apiVersion: v1
kind: Service
metadata: {name: tls-other, namespace: backends}
spec:
  selector: {app: tls-other}
  ports: [{name: tls, port: 9443}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${NS}}
spec:
  gatewayClassName: sinew
  listeners:
  - name: tls
    port: 443
    protocol: TLS
    hostname: "*.example.com"
    tls: {mode: Passthrough}
    allowedRoutes: {kinds: [{kind: TLSRoute}]}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: split, namespace: ${NS}, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  parentRefs: [{name: gw}]
  hostnames: [abc.example.com, "*.wild.example.com", abc.other.org]
  rules:
  - backendRefs:
    - {name: tls-a, port: 8443, weight: 3}
    - {name: tls-b, port: 8443, weight: 1}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: later, namespace: ${NS}, creationTimestamp: '2026-01-02T00:00:00Z'}
spec:
  parentRefs: [{name: gw}]
  hostnames: [abc.example.com, xyz.example.com]
  rules:
  - backendRefs: [{name: tls-other, namespace: backends, port: 9443}]
`;

const grant = `---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-apps, namespace: backends}
spec:
  from: [{group: gateway.networking.k8s.io, kind: TLSRoute, namespace: ${NS}}]
  to: [{group: '', kind: Service}]
`;

function gatewayListener(yaml: string): { listener: Listener | undefined; problems: [string, string][] } {
  const config = compile(parse(yaml), new Map(), {
    mode: 'router',
    workload: 'gw-sinew',
    namespace: NS,
    labels: { 'gateway.networking.k8s.io/gateway-name': 'gw' },
    ports: { gateway: { 443: { host: '127.0.0.1', port: 18443 } } },
  });
  const listener = config.listeners.find((l) => l.address.port === 18443);
  return { listener, problems: listener ? filterChainProblems(listener, config.secrets) : [] };
}

const destinationsFor = (l: Listener, serverName: string) =>
  selectChain((l.filterChains ?? []).map((c) => ({ ...c, match: c.match ?? {} })), { serverName, transportProtocol: 'tls' })?.tcp?.routes.map((r) => r.destinations.map((d) => `${d.cluster} ${d.weight}`));

test('a Passthrough listener: a chain per TLSRoute by the hostnames it serves there, to its weighted backends; the older route keeps a shared name', () => {
  const { listener, problems } = gatewayListener(world + grant);
  assert.ok(listener, 'the TLS listener is served');
  assert.equal(listener.protocol, 'tcp');
  assert.deepEqual(problems, [], 'the proxy accepts it');
  const split = [['outbound|8443||tls-a.apps.svc.cluster.local 3', 'outbound|8443||tls-b.apps.svc.cluster.local 1']];
  assert.deepEqual(destinationsFor(listener, 'abc.example.com'), split);
  assert.deepEqual(destinationsFor(listener, 'x.wild.example.com'), split);
  assert.deepEqual(destinationsFor(listener, 'xyz.example.com'), [['outbound|9443||tls-other.backends.svc.cluster.local 1']], 'across namespaces with a ReferenceGrant');
  // abc.other.org is outside the listener's hostname: not served there (GEP-1215).
  assert.equal(destinationsFor(listener, 'abc.other.org'), undefined);
  assert.equal(destinationsFor(listener, 'nope.example.com'), undefined, 'a name no route serves: no chain, the connection is closed');
});

test('without the ReferenceGrant the other namespace\'s backend is not reached: its route\'s connections are closed, and status says RefNotPermitted', () => {
  const { listener } = gatewayListener(world);
  assert.ok(listener);
  assert.deepEqual(destinationsFor(listener, 'xyz.example.com'), [], 'the chain stays, with no destination');
  const resources = parse(world);
  const status = gatewayApiStatus(resources, [{ namespace: NS, gateway: 'gw', synced: true, addresses: ['127.0.0.1'], ports: [443] }]);
  const later = status(resources.find((r) => r.metadata.name === 'later')!) as { parents: { conditions: { type: string; status: string; reason: string }[] }[] };
  const resolved = later.parents[0].conditions.find((c) => c.type === 'ResolvedRefs');
  assert.deepEqual([resolved?.status, resolved?.reason], ['False', 'RefNotPermitted']);
});

test('status: a Passthrough listener is Programmed with its routes attached; a TLS listener in Terminate mode is not Accepted (UnsupportedValue)', () => {
  const resources = parse(
    world.replace(
      '    allowedRoutes: {kinds: [{kind: TLSRoute}]}\n',
      '    allowedRoutes: {kinds: [{kind: TLSRoute}]}\n  - name: terminate\n    port: 8443\n    protocol: TLS\n    hostname: t.example.com\n    tls: {mode: Terminate, certificateRefs: [{name: missing}]}\n',
    ) + grant,
  );
  const status = gatewayApiStatus(resources, [{ namespace: NS, gateway: 'gw', synced: true, addresses: ['127.0.0.1'], ports: [443, 8443] }]);
  const gw = status(resources.find((r) => r.kind === 'Gateway')!) as { listeners: { name: string; attachedRoutes: number; conditions: { type: string; status: string; reason: string }[] }[] };
  const of = (name: string, type: string) => gw.listeners.find((l) => l.name === name)!.conditions.find((c) => c.type === type)!;
  assert.deepEqual([of('tls', 'Programmed').status, of('tls', 'Programmed').reason], ['True', 'Programmed']);
  assert.equal(gw.listeners.find((l) => l.name === 'tls')!.attachedRoutes, 2);
  assert.deepEqual([of('terminate', 'Accepted').status, of('terminate', 'Accepted').reason], ['False', 'UnsupportedValue']);
});
