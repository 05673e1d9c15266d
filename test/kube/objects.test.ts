/** What the control plane takes from cluster objects, without a cluster: versions and Secrets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GATEWAY_API_KINDS, ISTIO_KINDS, isCredentialSecret, newestVersionFirst, trimSecret } from '../../src/kube/objects.js';

test('versions are tried newest first by Kubernetes priority: GA, then beta, then alpha', () => {
  assert.deepEqual(newestVersionFirst(['v1alpha2', 'v1', 'v1alpha3', 'v1beta1']), ['v1', 'v1beta1', 'v1alpha3', 'v1alpha2']);
  // Istio's kinds list their versions oldest first, the Gateway API's newest first (and
  // TLSRoute's v1alpha3 after v1alpha2): reversing the list, as was done for Istio's kinds
  // alone, would watch HTTPRoute at v1beta1 and TLSRoute at v1alpha3.
  assert.deepEqual(GATEWAY_API_KINDS.find((k) => k.kind === 'HTTPRoute')!.versions, ['v1', 'v1beta1']);
  assert.deepEqual(GATEWAY_API_KINDS.find((k) => k.kind === 'TLSRoute')!.versions, ['v1', 'v1alpha3', 'v1alpha2']);
  assert.deepEqual(ISTIO_KINDS.find((k) => k.kind === 'VirtualService')!.versions, ['v1', 'v1beta1', 'v1alpha3']);
  assert.equal(GATEWAY_API_KINDS.find((k) => k.kind === 'GatewayClass')!.plural, 'gatewayclasses');
});

test("Secrets with a credential's keys (Istio's formats) are credentials; others lose their values", () => {
  assert.ok(isCredentialSecret({ type: 'kubernetes.io/tls', data: { 'tls.crt': 'x', 'tls.key': 'y' } }));
  assert.ok(isCredentialSecret({ type: 'Opaque', data: { cert: 'x', key: 'y', cacert: 'z' } }));
  assert.ok(isCredentialSecret({ type: 'Opaque', data: { cacert: 'z' } }), 'the -cacert Secret of a MUTUAL server');
  assert.ok(!isCredentialSecret({ type: 'Opaque', data: { password: 'x' } }));
  assert.ok(!isCredentialSecret({ type: 'Opaque', data: { 'tls.crt': 'x' } }), 'a certificate without its key');
  const other = trimSecret({ metadata: { name: 'db' }, data: { password: 'aHVudGVyMg==' } });
  assert.equal(other.data, undefined);
  const credential = trimSecret({ metadata: { name: 'tls' }, data: { 'tls.crt': 'x', 'tls.key': 'y' } });
  assert.deepEqual(Object.keys(credential.data!), ['tls.crt', 'tls.key']);
});
