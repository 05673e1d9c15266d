/**
 * SPIFFE identities and reading them back from certificates: the forms Istio writes, the
 * forms it must refuse, and a certificate that tries to smuggle a second identity into one
 * SAN entry. Also the proxy-side key and CSR generation, checked by openssl.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTrustDomain, parseSpiffeId, spiffeId } from '../../src/core/pki/spiffe.js';
import { looksLikeSerial, normalizeSerial, parseCertificate, summarizeCertificate, uriSans } from '../../src/core/pki/certificate-info.js';
import { generateKeyAndCsr } from '../../src/core/pki/workload-key.js';
import { webcrypto, x509 } from '../../src/ca/x509-library.js';
import { opensslOk } from './support.js';

describe('SPIFFE IDs', () => {
  test('are written and read as spiffe://<trust domain>/ns/<namespace>/sa/<service account>', () => {
    const id = spiffeId({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'bookinfo-reviews' });
    assert.equal(id, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    assert.deepEqual(parseSpiffeId(id), { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'bookinfo-reviews' });
  });

  test('refuse anything that is not exactly an Istio workload identity', () => {
    for (const bad of [
      'https://cluster.local/ns/default/sa/x',
      'spiffe://cluster.local',
      'spiffe://cluster.local/ns/default',
      'spiffe://cluster.local/ns/default/sa/x/extra',
      'spiffe://cluster.local/sa/x/ns/default',
      'spiffe://Cluster.Local/ns/default/sa/x',
      'spiffe://cluster.local/ns//sa/x',
      'spiffe://cluster.local/ns/../sa/x',
      'spiffe://cluster.local/ns/a b/sa/x',
      `spiffe://cluster.local/ns/default/sa/${'x'.repeat(2100)}`,
    ]) assert.equal(parseSpiffeId(bad), undefined, bad);
    assert.throws(() => spiffeId({ trustDomain: 'cluster.local', namespace: 'a/b', serviceAccount: 'x' }), /namespace "a\/b" may hold only/);
    assert.match(checkTrustDomain('UPPER')!, /lower-case letters/);
    assert.equal(checkTrustDomain('example.org'), undefined);
  });
});

describe('reading certificates', () => {
  test('a SAN value holding ", URI:" stays one value and is no identity (node quotes it; CVE-2021-44532)', async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const smuggled = 'spiffe://evil.example/ns/a/sa/b, URI:spiffe://cluster.local/ns/default/sa/admin';
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=attacker',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: smuggled }, { type: 'dns', value: 'a.example' }])],
    });
    const node = parseCertificate(cert.toString('pem'));
    assert.deepEqual(uriSans(node), [smuggled]);
    assert.equal(summarizeCertificate(node).spiffe, undefined);
  });

  test('serials are compared in one spelling', () => {
    assert.equal(normalizeSerial('0A:1B:FF'), 'a1bff');
    assert.equal(normalizeSerial('00'), '0');
    assert.ok(looksLikeSerial('0a:1b:ff') && looksLikeSerial('A1BFF'));
    assert.ok(!looksLikeSerial('default/reviews') && !looksLikeSerial('0a:1'));
  });
});

describe('key and CSR generation (the proxy side)', () => {
  test('makes an ECDSA P-256 key by default and a CSR signed with it, with an empty subject', async () => {
    const { keyType, privateKeyPem, csrPem } = await generateKeyAndCsr({ identity: 'spiffe://cluster.local/ns/default/sa/reviews' });
    assert.equal(keyType, 'ecdsa-p256');
    const text = await opensslOk(['req', '-noout', '-text', '-verify'], { input: csrPem });
    assert.match(text, /Subject: *\n/);
    assert.match(text, /NIST CURVE: P-256/);
    assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/);
    const key = await opensslOk(['pkey', '-noout', '-text'], { input: privateKeyPem });
    assert.match(key, /Private-Key: \(256 bit/);
  });

  test('writes long identities (multi-byte DER lengths) and refuses ones a URI SAN cannot hold', async () => {
    const long = `spiffe://cluster.local/ns/default/sa/${'a'.repeat(200)}`;
    const { csrPem } = await generateKeyAndCsr({ identity: long });
    assert.match(await opensslOk(['req', '-noout', '-text', '-verify'], { input: csrPem }), new RegExp(`URI:${long}`));
    await assert.rejects(generateKeyAndCsr({ identity: 'spiffe://cluster.local/ns/d\u00e9faut/sa/x' }), /cannot be a URI SAN: it must be printable ASCII/);
  });

  test('makes RSA 2048 keys on request, and a new key every time', async () => {
    const a = await generateKeyAndCsr({ keyType: 'rsa-2048' });
    const b = await generateKeyAndCsr({ keyType: 'rsa-2048' });
    assert.notEqual(a.privateKeyPem, b.privateKeyPem);
    assert.match(await opensslOk(['req', '-noout', '-text', '-verify'], { input: a.csrPem }), /Public-Key: \(2048 bit\)/);
  });
});
