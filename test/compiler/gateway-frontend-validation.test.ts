/**
 * Client certificate validation at a Gateway API Gateway (GEP-91 `spec.tls.frontend`): the
 * status its listeners get (src/semantics/gateway-api/binding.ts through
 * src/config/gateway-api/status.ts) and the TLS its proxy's HTTPS filter chains terminate with
 * (src/compiler/gateway-api/gateway.ts), compiled from YAML. Handshakes with and without the
 * right client certificate are the conformance suite's GatewayFrontendClientCertificateValidation
 * tests (test/gateway-api/conformance.test.ts runs one).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { gatewayApiStatus } from '../../src/config/gateway-api/status.js';
import { gatewayDeployments } from '../../src/config/gateway-api/deployments.js';
import { compile, parse } from './support/mesh.js';
import { b64, makeCa, makeSelfSignedCertificate, type Pem } from '../support/tls.js';

const NS = 'apps';
let ca: Pem;
let serving: Pem;
before(async () => {
  [ca, serving] = await Promise.all([makeCa('client CA'), makeSelfSignedCertificate(['*.example.org'])]);
});

const indent = (pem: string) => pem.trim().split('\n').map((l) => `    ${l}`).join('\n');

function world(validation: string, extra = ''): Resource[] {
  return parse(`apiVersion: v1
kind: Secret
metadata: {name: serving, namespace: ${NS}}
type: kubernetes.io/tls
data: {tls.crt: ${b64(serving.cert)}, tls.key: ${b64(serving.key)}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: client-ca, namespace: ${NS}}
data:
  ca.crt: |
${indent(ca.cert)}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${NS}}
spec:
  gatewayClassName: sinew
  tls:
    frontend:
${validation}
  listeners:
  - {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: serving}]}}
  - {name: other, port: 8443, protocol: HTTPS, tls: {certificateRefs: [{name: serving}]}}
  - {name: http, port: 80, protocol: HTTP}
---
${extra}`);
}

type Conditions = { type: string; status: string; reason: string }[];
function gatewayStatus(resources: Resource[]): { conditions: Conditions; listeners: { name: string; conditions: Conditions }[] } {
  return gatewayApiStatus(resources, [])(resources.find((r) => r.kind === 'Gateway')!) as never;
}
const conditionOf = (conditions: Conditions, type: string) => {
  const c = conditions.find((x) => x.type === type);
  return c ? `${c.status} ${c.reason}` : 'none';
};

function gatewayConfig(resources: Resource[]): ProxyConfig {
  return compile(resources, new Map(), {
    mode: 'router',
    workload: 'gw-sinew',
    namespace: NS,
    labels: { 'gateway.networking.k8s.io/gateway-name': 'gw' },
    ports: { gateway: { 80: { host: '127.0.0.1', port: 18080 }, 443: { host: '127.0.0.1', port: 18443 }, 8443: { host: '127.0.0.1', port: 18444 } } },
  });
}
const chainTls = (config: ProxyConfig, port: number) => config.listeners.find((l) => l.address.port === port)?.filterChains?.[0]?.tls;

const caRef = (name: string, extra = '') => `[{group: "", kind: ConfigMap, name: ${name}${extra}}]`;

describe('client certificate validation at a Gateway', () => {
  test('the default validation makes every HTTPS listener ask for and verify client certificates against the ConfigMap\'s CA; a perPort entry replaces it on its port', () => {
    const resources = world(`      default: {validation: {caCertificateRefs: ${caRef('client-ca')}}}\n      perPort: [{port: 8443, tls: {validation: {caCertificateRefs: ${caRef('client-ca')}, mode: AllowInsecureFallback}}}]`);
    const config = gatewayConfig(resources);
    const tls = chainTls(config, 18443);
    assert.equal(tls?.mode, 'MUTUAL');
    assert.equal(config.secrets?.find((s) => s.name === tls?.validationContext)?.trustedCaPem?.trim(), ca.cert.trim());
    // AllowInsecureFallback lets every client in: nothing is asked for, and the Gateway says so
    assert.equal(chainTls(config, 18444)?.mode, 'SIMPLE');
    const status = gatewayStatus(resources);
    assert.equal(conditionOf(status.conditions, 'InsecureFrontendValidationMode'), 'True ConfigurationChanged');
    for (const l of status.listeners) assert.equal(conditionOf(l.conditions, 'Accepted'), 'True Accepted', l.name);
  });

  test('without the InsecureFallback mode the Gateway has no InsecureFrontendValidationMode condition', () => {
    const status = gatewayStatus(world(`      default: {validation: {caCertificateRefs: ${caRef('client-ca')}}}`));
    assert.equal(conditionOf(status.conditions, 'InsecureFrontendValidationMode'), 'none');
  });

  test('a CA reference that does not resolve leaves the HTTPS listeners unaccepted (NoValidCACertificate), with the reference\'s reason; the HTTP listener is untouched; its port stays planned', () => {
    for (const [refs, reason] of [
      [caRef('nowhere'), 'InvalidCACertificateRef'],
      ['[{group: "", kind: Service, name: client-ca}]', 'InvalidCACertificateKind'],
      [caRef('client-ca', ', namespace: elsewhere'), 'RefNotPermitted'],
    ]) {
      const resources = world(`      default: {validation: {caCertificateRefs: ${refs}}}`);
      const listeners = gatewayStatus(resources).listeners;
      const https = listeners.find((l) => l.name === 'https')!;
      assert.equal(conditionOf(https.conditions, 'Accepted'), 'False NoValidCACertificate', reason);
      assert.equal(conditionOf(https.conditions, 'ResolvedRefs'), `False ${reason}`, reason);
      assert.equal(conditionOf(https.conditions, 'Programmed').split(' ')[0], 'False', reason);
      assert.equal(conditionOf(listeners.find((l) => l.name === 'http')!.conditions, 'Accepted'), 'True Accepted', reason);
      // the proxy serves no TLS on it: no chain that would let clients in unverified
      assert.equal(gatewayConfig(resources).listeners.some((l) => l.address.port === 18443), false, reason);
      assert.deepEqual(gatewayDeployments(resources)[0].ports, [80, 443, 8443], reason);
    }
  });
});
