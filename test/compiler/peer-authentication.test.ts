/**
 * PeerAuthentication and automatic mutual TLS in the compiled config: Istio's precedence
 * (DESIGN.md behaviour 9: workload, then namespace, then root; UNSET inherits; port level on
 * the workload's container port), the inbound chains each mode gives a sidecar port, and the
 * outbound side's auto mTLS against DestinationRule `tls` (Istio's
 * samples/bookinfo/networking/destination-rule-all-mtls.yaml among them).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster, ClusterLoadAssignment, ProxyConfig } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { composePeerAuthentication, type PeerAuthenticationResource } from '../../src/semantics/peer-authentication.js';
import { bookinfo, compile, parse, sample, workload } from './support/mesh.js';

const pa = (yaml: string) => parse(yaml) as PeerAuthenticationResource[];
const stamp = (r: Resource, at: string) => ({ ...r, metadata: { ...r.metadata, creationTimestamp: at } }) as PeerAuthenticationResource;

describe('PeerAuthentication precedence (semantics/peer-authentication.ts)', () => {
  const policies = pa(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  mtls: {mode: UNSET}
  portLevelMtls:
    "8080": {mode: DISABLE}
    "9090": {mode: UNSET}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: selects-everyone-elsewhere, namespace: istio-system}
spec:
  selector: {matchLabels: {app: httpbin}}
  mtls: {mode: DISABLE}
`);

  test('no policy at all is PERMISSIVE', () => {
    assert.equal(composePeerAuthentication([], 'istio-system', { namespace: 'foo', labels: {} }).mode, 'PERMISSIVE');
  });

  test('the mesh policy applies where nothing closer sets a mode; a selector in the root namespace selects nobody elsewhere', () => {
    const bar = composePeerAuthentication(policies, 'istio-system', { namespace: 'bar', labels: { app: 'httpbin' } });
    assert.equal(bar.mode, 'STRICT');
    assert.deepEqual(bar.from, { mesh: 'istio-system/default' });
  });

  test('the namespace overrides the mesh; a workload policy saying UNSET inherits; its ports override', () => {
    const httpbin = composePeerAuthentication(policies, 'istio-system', { namespace: 'foo', labels: { app: 'httpbin' } });
    assert.equal(httpbin.mode, 'PERMISSIVE');
    assert.deepEqual([...httpbin.ports], [[8080, 'DISABLE'], [9090, 'PERMISSIVE']]);
    const sleep = composePeerAuthentication(policies, 'istio-system', { namespace: 'foo', labels: { app: 'sleep' } });
    assert.equal(sleep.mode, 'PERMISSIVE');
    assert.equal(sleep.ports.size, 0);
  });

  test('of two policies at one level the oldest wins', () => {
    const [newer, older] = pa(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a-newer, namespace: foo}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: z-older, namespace: foo}
spec: {mtls: {mode: STRICT}}
`);
    const list = [stamp(newer, '2024-01-02T00:00:00Z'), stamp(older, '2024-01-01T00:00:00Z')];
    assert.equal(composePeerAuthentication(list, 'istio-system', { namespace: 'foo', labels: {} }).mode, 'STRICT');
  });
});

describe('a sidecar\'s inbound ports follow its PeerAuthentication', () => {
  const { resources, instances } = bookinfo();
  const inbound = (extra: Resource[], mesh = { mtls: true }) =>
    compile([...resources, ...extra], instances, {
      workload: 'reviews-v1',
      labels: { app: 'reviews', version: 'v1' },
      mesh,
      ports: { outbound: 15001, inbound: [{ containerPort: 9080, listen: { host: '127.0.0.1', port: 21000 }, app: { host: '127.0.0.1', port: 22000 } }] },
    }).listeners.find((l) => l.direction === 'inbound')!;
  const strict = (mode: string) => parse(`apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: ${mode}}}\n`);

  test('PERMISSIVE (no policy): Istio mutual TLS beside plaintext', () => {
    assert.deepEqual(inbound([]).tls, { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA', permissive: true });
  });

  test('STRICT: Istio mutual TLS only, the client certificate verified against ROOTCA', () => {
    assert.deepEqual(inbound(strict('STRICT')).tls, { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA' });
  });

  test('DISABLE: plaintext only', () => {
    assert.equal(inbound(strict('DISABLE')).tls, undefined);
  });

  test('a TCP port gets the same chains as an HTTP one: STRICT terminates Istio mutual TLS and routes to the app', () => {
    const tcpInbound = (extra: Resource[]) =>
      compile([...resources, ...extra], instances, {
        workload: 'reviews-v1',
        labels: { app: 'reviews', version: 'v1' },
        mesh: { mtls: true },
        ports: { outbound: 15001, inbound: [{ containerPort: 9080, listen: { host: '127.0.0.1', port: 21000 }, app: { host: '127.0.0.1', port: 22000 }, protocol: 'tcp' }] },
      }).listeners.find((l) => l.direction === 'inbound')!;
    const strictTcp = tcpInbound(strict('STRICT'));
    assert.equal(strictTcp.protocol, 'tcp');
    assert.deepEqual(strictTcp.tls, { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA' });
    assert.deepEqual(strictTcp.tcp?.routes, [{ destinations: [{ cluster: 'inbound|9080||', weight: 100 }] }]);
    assert.equal(tcpInbound([]).tls?.permissive, true);
    assert.equal(tcpInbound(strict('DISABLE')).tls, undefined);
  });

  test('without workload certificates PERMISSIVE is plaintext, and STRICT still admits no plaintext', () => {
    assert.equal(inbound([], { mtls: false }).tls, undefined);
    assert.equal(inbound(strict('STRICT'), { mtls: false }).tls?.permissive, undefined);
  });
});

describe('auto mTLS and DestinationRule tls on the outbound side', () => {
  const { resources, instances } = bookinfo();
  const withSidecars = new Map([...instances].map(([k, list]) => [k, list.map((i) => ({ ...i, sidecar: true }))]));
  const clusterOf = (config: ProxyConfig, name: string): Cluster => config.clusters.find((c) => c.name === name)!;
  const endpointsOf = (config: ProxyConfig, name: string): ClusterLoadAssignment => config.endpoints.find((e) => e.clusterName === name)!;
  const reviews = 'outbound|9080||reviews.default.svc.cluster.local';

  test('sidecar-backed endpoints are called with Istio mutual TLS: Istio SNI, the endpoints\' identities as SANs', () => {
    const config = compile(resources, withSidecars, { mesh: { mtls: true } });
    const cluster = clusterOf(config, reviews);
    assert.equal(cluster.tls, undefined);
    assert.equal(cluster.autoMtls?.mode, 'ISTIO_MUTUAL');
    assert.equal(cluster.autoMtls?.sni, 'outbound_.9080_._.reviews.default.svc.cluster.local');
    assert.deepEqual(cluster.autoMtls?.subjectAltNames, ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews']);
    assert.ok(endpointsOf(config, reviews).endpoints.every((e) => e.tlsMode === 'istio'));
  });

  test('a TCP port of a sidecar-backed service is called with Istio mutual TLS too (auto mTLS)', () => {
    const mongo = parse(`apiVersion: v1\nkind: Service\nmetadata: {name: mongodb, namespace: default}\nspec:\n  selector: {app: mongodb}\n  ports: [{name: mongo, port: 27017}]\n`);
    const db = new Map([...withSidecars, ['default/mongodb', [{ name: 'mongodb-0', address: '127.0.0.1', ports: { 27017: 27017 }, sidecar: true }]]]);
    const config = compile([...resources, ...mongo, workload('mongodb', { labels: { app: 'mongodb' }, serviceAccount: 'mongodb', ports: [{ name: 'mongo', containerPort: 27017 }] })], db as never, { mesh: { mtls: true } });
    const cluster = clusterOf(config, 'outbound|27017||mongodb.default.svc.cluster.local');
    assert.equal(cluster.protocol, 'tcp');
    assert.equal(cluster.autoMtls?.mode, 'ISTIO_MUTUAL');
    assert.equal(cluster.autoMtls?.sni, 'outbound_.27017_._.mongodb.default.svc.cluster.local');
  });

  test('endpoints without a sidecar, or without the mesh CA, are called in plaintext', () => {
    const plain = compile(resources, instances, { mesh: { mtls: true } });
    assert.equal(clusterOf(plain, reviews).autoMtls, undefined);
    const noCa = compile(resources, withSidecars, { mesh: { mtls: false } });
    assert.equal(clusterOf(noCa, reviews).autoMtls, undefined);
  });

  test('a server whose PeerAuthentication DISABLEs mutual TLS is called in plaintext', () => {
    const disable = parse(`apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: reviews, namespace: default}\nspec:\n  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: DISABLE}\n`);
    const config = compile([...resources, ...disable], withSidecars, { mesh: { mtls: true } });
    assert.ok(endpointsOf(config, reviews).endpoints.every((e) => e.tlsMode === undefined));
    assert.ok(endpointsOf(config, 'outbound|9080||ratings.default.svc.cluster.local').endpoints.every((e) => e.tlsMode === 'istio'));
  });

  test('Istio\'s destination-rule-all-mtls.yaml: ISTIO_MUTUAL on every cluster and subset; DISABLE turns auto mTLS off', () => {
    const config = compile([...resources, ...sample('bookinfo/networking/destination-rule-all-mtls.yaml')], withSidecars, { mesh: { mtls: true } });
    for (const name of [reviews, 'outbound|9080|v2|reviews.default.svc.cluster.local', 'outbound|9080|v1|ratings.default.svc.cluster.local']) {
      const cluster = clusterOf(config, name);
      assert.equal(cluster.tls?.mode, 'ISTIO_MUTUAL', name);
      assert.equal(cluster.tls?.certificate, 'default');
      assert.equal(cluster.tls?.validationContext, 'ROOTCA');
      assert.equal(cluster.autoMtls, undefined, 'the rule decides for every endpoint');
    }
    assert.equal(clusterOf(config, 'outbound|9080|v2|reviews.default.svc.cluster.local').tls?.sni, 'outbound_.9080_.v2_.reviews.default.svc.cluster.local');
    const disabled = compile([...resources, ...parse('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  trafficPolicy: {tls: {mode: DISABLE}}\n')], withSidecars, { mesh: { mtls: true } });
    assert.equal(clusterOf(disabled, reviews).tls, undefined);
    assert.equal(clusterOf(disabled, reviews).autoMtls, undefined);
  });
});
