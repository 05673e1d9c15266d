/**
 * BackendTLSPolicy: its status (src/semantics/gateway-api/backend-tls.ts through
 * src/config/gateway-api/status.ts) and the TLS a Gateway's proxy originates under it
 * (src/compiler/gateway-api/backend-tls.ts), compiled from YAML. The traffic itself — a gateway
 * verifying a real TLS backend, and refusing one signed by another CA — is the conformance
 * suite's BackendTLSPolicy test, run by test/gateway-api/conformance.test.ts.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import type { WorkloadInstance } from '../../src/registry/index.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { gatewayApiStatus } from '../../src/config/gateway-api/status.js';
import { validateText } from '../../src/config/validate.js';
import { compile, parse, workload } from './support/mesh.js';
import { makeCa, type Pem } from '../support/tls.js';

const NS = 'apps';

const base = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${NS}}
spec:
  gatewayClassName: sinew
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: secure, namespace: ${NS}}
spec:
  selector: {app: secure}
  ports: [{name: https, port: 443, targetPort: 8443}, {name: other, port: 8443, targetPort: 8443}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-secure, namespace: ${NS}}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: secure, port: 443}]
---
`;

const caConfigMap = (name: string, pem: string) => `apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}, namespace: ${NS}}
data:
  ca.crt: |
${pem
  .trim()
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
---
`;

const policy = (name: string, validation: string, target = '{group: "", kind: Service, name: secure}') => `apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: ${name}, namespace: ${NS}}
spec:
  targetRefs: [${target}]
  validation:
${validation}
---
`;

const withCa = (ref = 'ca') => `    caCertificateRefs: [{group: "", kind: ConfigMap, name: ${ref}}]\n    hostname: secure.example.com\n`;

type Conditions = { type: string; status: string; reason: string }[];

function policyStatus(resources: Resource[], name: string): { ancestorRef: { name: string; kind: string }; conditions: Conditions }[] {
  const statusOf = gatewayApiStatus(resources, []);
  const status = statusOf(resources.find((r) => r.kind === 'BackendTLSPolicy' && r.metadata.name === name)!) as { ancestors: { ancestorRef: { name: string; kind: string }; conditions: Conditions }[] };
  return status.ancestors;
}

const conditionOf = (conditions: Conditions, type: string) => {
  const c = conditions.find((x) => x.type === type);
  return `${c?.status} ${c?.reason}`;
};

function gatewayConfig(resources: Resource[]): ProxyConfig {
  const instances = new Map<string, WorkloadInstance[]>([[`${NS}/secure`, [{ name: 'secure-0', address: '127.0.0.1', ports: { 8443: 20443 } }]]]);
  return compile([...resources, workload('secure', { namespace: NS, labels: { app: 'secure' }, ports: [{ name: 'https', containerPort: 8443 }] })], instances, {
    mode: 'router',
    workload: 'gw-sinew',
    namespace: NS,
    labels: { 'gateway.networking.k8s.io/gateway-name': 'gw' },
    ports: { gateway: { 80: { host: '127.0.0.1', port: 18080 } } },
  });
}

const clusterTls = (config: ProxyConfig, port: number) => config.clusters.find((c) => c.name === `outbound|${port}||secure.${NS}.svc.cluster.local`)?.tls;

let ca: Pem;
before(async () => {
  ca = await makeCa('backend CA');
});

describe('BackendTLSPolicy status', () => {
  test('a policy whose CA resolves is Accepted with ResolvedRefs, under each Gateway that routes to its Service', () => {
    const resources = parse(base + caConfigMap('ca', ca.cert) + policy('ok', withCa()));
    const ancestors = policyStatus(resources, 'ok');
    assert.deepEqual(ancestors.map((a) => [a.ancestorRef.kind, a.ancestorRef.name]), [['Gateway', 'gw']]);
    assert.equal(conditionOf(ancestors[0].conditions, 'Accepted'), 'True Accepted');
    assert.equal(conditionOf(ancestors[0].conditions, 'ResolvedRefs'), 'True ResolvedRefs');
  });

  test('a missing ConfigMap, one without a PEM ca.crt, or a ref of another kind: not Accepted (NoValidCACertificate), with the ref\'s reason', () => {
    const resources = parse(
      base +
        `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty, namespace: ${NS}}\ndata: {ca.crt: "not a certificate"}\n---\n` +
        policy('missing', withCa('nowhere')) +
        policy('malformed', withCa('empty')) +
        policy('other-kind', '    caCertificateRefs: [{group: invalid.io, kind: InvalidKind, name: x}]\n    hostname: secure.example.com\n'),
    );
    for (const [name, reason] of [
      ['missing', 'InvalidCACertificateRef'],
      ['malformed', 'InvalidCACertificateRef'],
      ['other-kind', 'InvalidKind'],
    ]) {
      const [ancestor] = policyStatus(resources, name);
      assert.equal(conditionOf(ancestor.conditions, 'Accepted'), 'False NoValidCACertificate', name);
      assert.equal(conditionOf(ancestor.conditions, 'ResolvedRefs'), `False ${reason}`, name);
    }
  });

  test('of two policies on one Service and section, the older wins; the newer is Conflicted; one naming a section and one not do not conflict', () => {
    const resources = parse(
      base +
        caConfigMap('ca', ca.cert) +
        policy('a-first', withCa()) +
        policy('b-second', withCa()) +
        policy('c-section', withCa(), '{group: "", kind: Service, name: secure, sectionName: https}'),
    );
    assert.equal(conditionOf(policyStatus(resources, 'a-first')[0].conditions, 'Accepted'), 'True Accepted');
    assert.equal(conditionOf(policyStatus(resources, 'b-second')[0].conditions, 'Accepted'), 'False Conflicted');
    assert.equal(conditionOf(policyStatus(resources, 'c-section')[0].conditions, 'Accepted'), 'True Accepted');
  });

  test('a policy that names both CA certificates and the system\'s, or neither, is refused (the CRD\'s CEL rules)', () => {
    const result = validateText(
      'p.yaml',
      policy('both', '    caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]\n    wellKnownCACertificates: System\n    hostname: a.example.com\n') + policy('neither', '    hostname: a.example.com\n'),
    );
    const errors = result.diagnostics.filter((d) => d.level === 'error').map((d) => d.message);
    assert.ok(errors.some((m) => /must not contain both CACertificateRefs and WellKnownCACertificates/.test(m)), JSON.stringify(errors));
    assert.ok(errors.some((m) => /must specify either CACertificateRefs or WellKnownCACertificates/.test(m)), JSON.stringify(errors));
  });
});

describe('a Gateway\'s proxy under a BackendTLSPolicy', () => {
  test('originates TLS to the targeted Service: SNI the policy\'s hostname, verified against the ConfigMap\'s CA, which is pushed to it', () => {
    const config = gatewayConfig(parse(base + caConfigMap('ca', ca.cert) + policy('ok', withCa())));
    const tls = clusterTls(config, 443);
    assert.deepEqual(tls, { mode: 'SIMPLE', sni: 'secure.example.com', validationContext: `backendtlspolicy://${NS}/ok`, alpn: [] });
    const secret = config.secrets?.find((s) => s.name === `backendtlspolicy://${NS}/ok`);
    assert.equal(secret?.trustedCaPem?.trim(), ca.cert.trim());
    // no autoMtls beside it: the policy's TLS is the only one spoken to the backend
    assert.equal(config.clusters.find((c) => c.name === `outbound|443||secure.${NS}.svc.cluster.local`)?.autoMtls, undefined);
  });

  test('subjectAltNames replace the hostname check; wellKnownCACertificates System trusts the system\'s roots (no CA pushed)', () => {
    const config = gatewayConfig(
      parse(base + policy('sans', '    wellKnownCACertificates: System\n    hostname: secure.example.com\n    subjectAltNames: [{type: Hostname, hostname: alt.example.com}, {type: URI, uri: "spiffe://example.com/backend"}]\n')),
    );
    assert.deepEqual(clusterTls(config, 443), { mode: 'SIMPLE', sni: 'secure.example.com', subjectAltNames: ['alt.example.com', 'spiffe://example.com/backend'], alpn: [] });
    assert.equal(config.secrets?.some((s) => s.name.startsWith('backendtlspolicy://')) ?? false, false);
  });

  test('a sectionName narrows it to that port; a policy not Accepted sends no TLS settings in its place', () => {
    const sectioned = gatewayConfig(parse(base + caConfigMap('ca', ca.cert) + policy('https-only', withCa(), '{group: "", kind: Service, name: secure, sectionName: https}')));
    assert.equal(clusterTls(sectioned, 443)?.sni, 'secure.example.com');
    assert.equal(clusterTls(sectioned, 8443), undefined);
    const invalid = gatewayConfig(parse(base + policy('missing', withCa('nowhere'))));
    assert.equal(clusterTls(invalid, 443), undefined);
  });

  test('sidecars are not shaped by it (the policy\'s status names Gateways only)', () => {
    const resources = parse(base + caConfigMap('ca', ca.cert) + policy('ok', withCa()));
    const instances = new Map<string, WorkloadInstance[]>([[`${NS}/secure`, [{ name: 'secure-0', address: '127.0.0.1', ports: { 8443: 20443 } }]]]);
    const config = compile([...resources, workload('secure', { namespace: NS, labels: { app: 'secure' }, ports: [{ name: 'https', containerPort: 8443 }] })], instances, { namespace: NS });
    assert.equal(clusterTls(config, 443), undefined);
  });
});
