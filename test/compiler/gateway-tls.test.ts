/**
 * Istio Gateway servers that terminate TLS, compiled for the ingress gateway: a filter chain per
 * server chosen by SNI, with its own route table and the credential its Secret holds; what is
 * left out when a credential is missing or a later server repeats a name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { makeCa, makeServerCertificate, b64 } from '../support/tls.js';
import { compile, parse } from './support/mesh.js';

const node = { mode: 'router' as const, workload: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway' }, ports: { gateway: { 443: 18443 } } };

const secret = (name: string, namespace: string, data: Record<string, string>) =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: ${namespace}}\ntype: Opaque\ndata:\n${Object.entries(data).map(([k, v]) => `  ${k}: ${b64(v)}`).join('\n')}\n`;

const gateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: web}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: ["web/a.example.com"]
    tls: {mode: SIMPLE, credentialName: a-cred, cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256, NOT-A-CIPHER], minProtocolVersion: TLSV1_2}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: ["*.b.example.com"]
    tls: {mode: OPTIONAL_MUTUAL, credentialName: b-cred}
  - port: {number: 443, name: https-missing, protocol: HTTPS}
    hosts: [c.example.com]
    tls: {mode: SIMPLE, credentialName: nowhere}
  - port: {number: 443, name: https-again, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: b-cred}
`;

test('each terminating server is a chain: SNI from its hosts, its credential, its own route table; a missing credential or a repeated name is left out', async () => {
  const ca = await makeCa();
  const a = await makeServerCertificate(ca, ['a.example.com']);
  const b = await makeServerCertificate(ca, ['x.b.example.com']);
  const resources = parse(
    [
      gateway,
      secret('a-cred', 'istio-system', { 'tls.crt': a.cert, 'tls.key': a.key }),
      secret('b-cred', 'istio-system', { 'tls.crt': b.cert, 'tls.key': b.key }),
      secret('b-cred-cacert', 'istio-system', { cacert: ca.cert }),
      // A credential of the same name in another namespace is not the gateway's.
      secret('nowhere', 'web', { 'tls.crt': a.cert, 'tls.key': a.key }),
    ].join('---\n'),
  );
  const config: ProxyConfig = compile(resources, new Map(), node);
  const listener = config.listeners.find((l) => l.address.port === 18443)!;
  assert.ok(listener, 'the HTTPS port is served');
  assert.deepEqual(
    listener.filterChains!.map((c) => [c.name, c.match?.serverNames, c.tls?.mode, c.tls?.certificate, c.tls?.validationContext, c.tls?.clientCertificateOptional, c.routeConfigName]),
    [
      ['https.443.https-a.gw.web', ['a.example.com'], 'SIMPLE', 'kubernetes://istio-system/a-cred', undefined, undefined, 'https.443.https-a.gw.web'],
      ['https.443.https-b.gw.web', ['*.b.example.com'], 'MUTUAL', 'kubernetes://istio-system/b-cred', 'kubernetes://istio-system/b-cred-cacert', true, 'https.443.https-b.gw.web'],
    ],
  );
  const first = listener.filterChains![0].tls!;
  assert.deepEqual([first.cipherSuites, first.minProtocolVersion], [['ECDHE-ECDSA-AES128-GCM-SHA256'], 'TLSv1.2'], 'invalid suites are left out, as Istio does');
  for (const chain of listener.filterChains!) assert.ok(config.routeConfigs.some((r) => r.name === chain.routeConfigName), `table ${chain.routeConfigName}`);
  // Only the credentials the chains use are pushed.
  const pushed = (config.secrets ?? []).map((s) => s.name).filter((n) => n.startsWith('kubernetes://')).sort();
  assert.deepEqual(pushed, ['kubernetes://istio-system/a-cred', 'kubernetes://istio-system/b-cred', 'kubernetes://istio-system/b-cred-cacert']);
  assert.equal(config.secrets!.find((s) => s.name === 'kubernetes://istio-system/b-cred-cacert')!.trustedCaPem, ca.cert);
});

test('a port whose every server lacks its credential is not served', () => {
  const config = compile(parse(gateway), new Map(), node);
  assert.equal(config.listeners.find((l) => l.address.port === 18443), undefined);
  assert.equal((config.secrets ?? []).some((s) => s.name.startsWith('kubernetes://')), false);
});
