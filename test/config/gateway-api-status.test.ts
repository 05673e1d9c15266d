/**
 * Gateway API status as the control plane computes it (src/config/gateway-api/status.ts), for
 * the cases the conformance suite found wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayApiStatus } from '../../src/config/gateway-api/status.js';
import { parse } from '../compiler/support/mesh.js';

test('regression: a Gateway whose infrastructure.parametersRef cannot be used is not Accepted (InvalidParameters; it was accepted: conformance GatewayInvalidParametersRef)', () => {
  const resources = parse(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  gatewayClassName: sinew
  listeners: [{name: http, port: 80, protocol: HTTP}]
  infrastructure:
    parametersRef: {group: invalid.io, kind: InvalidParameters, name: invalid}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: plain, namespace: apps}
spec:
  gatewayClassName: sinew
  listeners: [{name: http, port: 80, protocol: HTTP}]
`);
  const statusOf = gatewayApiStatus(resources, []);
  const accepted = (name: string) => ((statusOf(resources.find((r) => r.metadata.name === name)!) as { conditions: { type: string; status: string; reason: string }[] }).conditions.find((c) => c.type === 'Accepted'));
  assert.deepEqual([accepted('gw')?.status, accepted('gw')?.reason], ['False', 'InvalidParameters']);
  assert.deepEqual([accepted('plain')?.status, accepted('plain')?.reason], ['True', 'Accepted']);
});

test('regression: an address requested without a value is the one the gateway listens on (it was shown without a value: conformance GatewayOptionalAddressValue)', () => {
  const resources = parse(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  gatewayClassName: sinew
  addresses: [{type: IPAddress}]
  listeners: [{name: http, port: 8080, protocol: HTTP}]
`);
  const statusOf = gatewayApiStatus(resources, [{ namespace: 'apps', gateway: 'gw', synced: true, addresses: ['127.0.0.1'], ports: [8080] }]);
  const status = statusOf(resources[0]) as { addresses?: { type: string; value?: string }[]; conditions: { type: string; status: string }[] };
  assert.equal(status.conditions.find((c) => c.type === 'Programmed')?.status, 'True');
  assert.deepEqual(status.addresses, [{ type: 'IPAddress', value: '127.0.0.1' }]);
});
