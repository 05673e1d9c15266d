/**
 * TLS origination from a Secret (DestinationRule `tls` SIMPLE / MUTUAL with credentialName),
 * as Istio's egress TLS origination tasks configure it: the proxy whose clusters name the
 * credential gets it from its own namespace (the roots from `ca.crt`, or the `<name>-cacert`
 * Secret's `cacert`; MUTUAL also the client certificate), nobody else does, and the cluster
 * offers ALPN as Istio's does (h2 for an HTTP/2 cluster, nothing for HTTP/1.1).
 *
 * Regression (dr_credential_never_pushed): a DestinationRule credentialName named secrets
 * the control plane never sent, so its clusters stayed warming (503 UH) for good.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { compile, parse } from './support/mesh.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const CA = '-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n';

const external = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: edition-cnn-com, namespace: default}
spec:
  hosts: [edition.cnn.com]
  ports:
  - {number: 80, name: http-port, protocol: HTTP, targetPort: 443}
  - {number: 8443, name: grpc, protocol: GRPC}
  resolution: DNS
---
`;

function dr(tls: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: edition-cnn-com, namespace: default}
spec:
  host: edition.cnn.com
  trafficPolicy:
    tls: ${tls}
---
`;
}

function secret(name: string, namespace: string, data: Record<string, string>): string {
  return `apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${namespace}}
type: ${data['tls.crt'] ? 'kubernetes.io/tls' : 'Opaque'}
data: {${Object.entries(data).map(([k, v]) => `"${k}": ${b64(v)}`).join(', ')}}
---
`;
}

const secretNames = (config: ProxyConfig) => (config.secrets ?? []).map((s) => s.name).filter((n) => n !== 'sinew-mesh-key').sort();

describe('DestinationRule credentialName: TLS origination from a Secret', () => {
  test('SIMPLE: the roots from the Secret in the proxy namespace (ca.crt), the SNI, no ALPN on HTTP/1.1 and h2 on HTTP/2', () => {
    const rs = parse(external + dr('{mode: SIMPLE, credentialName: cnn-ca, sni: edition.cnn.com}') + secret('cnn-ca', 'default', { 'ca.crt': CA }));
    const config = compile(rs, new Map());
    const http = config.clusters.find((c) => c.name === 'outbound|80||edition.cnn.com')!;
    assert.deepEqual(http.tls, { mode: 'SIMPLE', validationContext: 'cnn-ca-cacert', sni: 'edition.cnn.com', alpn: [] });
    assert.deepEqual(config.clusters.find((c) => c.name === 'outbound|8443||edition.cnn.com')!.tls!.alpn, ['h2']);
    assert.deepEqual(config.secrets?.find((s) => s.name === 'cnn-ca-cacert'), { name: 'cnn-ca-cacert', trustedCaPem: CA });
    // A proxy of another namespace, where the Secret is not, gets nothing (Istio reads it from the proxy's namespace).
    const other = compile(rs, new Map(), { namespace: 'other', workload: 'sleep', labels: { app: 'sleep' } });
    assert.deepEqual(secretNames(other), []);
  });

  test('MUTUAL: the client certificate and key, and the roots from the <name>-cacert Secret', () => {
    const rs = parse(
      external +
        dr('{mode: MUTUAL, credentialName: client-credential, sni: edition.cnn.com}') +
        secret('client-credential', 'default', { 'tls.crt': CERT, 'tls.key': KEY }) +
        secret('client-credential-cacert', 'default', { cacert: CA }),
    );
    const config = compile(rs, new Map());
    const tls = config.clusters.find((c) => c.name === 'outbound|80||edition.cnn.com')!.tls!;
    assert.equal(tls.certificate, 'client-credential');
    assert.equal(tls.validationContext, 'client-credential-cacert');
    assert.deepEqual(config.secrets?.find((s) => s.name === 'client-credential'), { name: 'client-credential', certificateChainPem: CERT, privateKeyPem: KEY });
    assert.deepEqual(config.secrets?.find((s) => s.name === 'client-credential-cacert'), { name: 'client-credential-cacert', trustedCaPem: CA });
  });

  test('a missing Secret sends nothing (the cluster waits for it); Secrets no cluster names are never sent', () => {
    const missing = compile(parse(external + dr('{mode: SIMPLE, credentialName: nowhere}')), new Map());
    assert.deepEqual(secretNames(missing), []);
    const unused = compile(parse(external + secret('cnn-ca', 'default', { 'ca.crt': CA })), new Map());
    assert.deepEqual(secretNames(unused), []);
  });
});
