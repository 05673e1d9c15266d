/**
 * The CA on its own: the root and intermediate it makes on first start (owner-only files,
 * reloaded on restart), and the workload certificates it issues on CSRs — each checked by
 * openssl, the independent judge: chain to the root, the SPIFFE URI SAN, validity, key usage,
 * basic constraints and extended key usages, as Istio's CA makes them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { CaError } from '../../src/ca/errors.js';
import { ManualClock } from '../../src/core/clock.js';
import { splitPemCertificates, summarizeCertificate } from '../../src/core/pki/certificate-info.js';
import { generateKeyAndCsr } from '../../src/core/pki/workload-key.js';
import { certificateText, issueFor, openssl, opensslOk, opensslVerify, scratchDir } from './support.js';

const DAY = 86_400_000;
let scratch: ReturnType<typeof scratchDir>;
let ca: CertificateAuthority;

before(async () => {
  scratch = scratchDir('ca-authority');
  ca = await CertificateAuthority.open({ dir: join(scratch.dir, 'state', 'ca') });
});
after(() => scratch.cleanup());

const rootPem = () => ca.trustBundle().pem();

/** Asserts a CaError with `code` whose message matches `pattern`. */
async function rejectsWith(work: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof CaError, `expected a CaError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('the CA on first start', () => {
  test('keeps its root, intermediate and keys in an owner-only directory (0700, files 0600)', () => {
    const dir = ca.dir;
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const files = readdirSync(dir);
    for (const f of ['ca.json', 'ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem', 'root-key.pem']) assert.ok(files.includes(f), `${f} is written`);
    for (const f of files) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is owner-only`);
  });

  test('the root is self-signed, a CA, valid for 10 years, signing certificates only', async () => {
    const text = await certificateText(rootPem());
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const root = summarizeCertificate(rootPem());
    assert.equal(root.subject, root.issuer);
    assert.match(root.subject, /O=cluster\.local/);
    assert.equal(root.notAfter - root.notBefore, 3650 * DAY);
    const self = await opensslVerify(scratch.dir, rootPem(), '', rootPem());
    assert.equal(self.code, 0, self.stderr);
  });

  test('the intermediate is a CA with path length 0, signed by the root', async () => {
    const intermediate = readFileSync(join(ca.dir, 'ca-cert.pem'), 'utf8');
    const text = await certificateText(intermediate);
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const verified = await opensslVerify(scratch.dir, rootPem(), '', intermediate);
    assert.equal(verified.code, 0, verified.stderr);
  });

  test('is reloaded on restart: the same root and intermediate, not new ones', async () => {
    const again = await CertificateAuthority.open({ dir: ca.dir });
    assert.equal(again.trustBundle().pem(), rootPem());
    assert.equal(again.describe().signingCertificate.fingerprint256, ca.describe().signingCertificate.fingerprint256);
  });

  test('refuses to load keys that others may read, and says how to fix it', async () => {
    const copy = scratchDir('ca-modes');
    try {
      const loose = await CertificateAuthority.open({ dir: join(copy.dir, 'ca') });
      chmodSync(join(loose.dir, 'ca-key.pem'), 0o644);
      chmodSync(loose.dir, 0o755);
      await assert.rejects(CertificateAuthority.load({ dir: loose.dir }), (err: CaError) => {
        assert.equal(err.code, 'SNW_ERR_CA_STATE');
        assert.match(err.message, /ca-key\.pem has mode 0644; it must be owner-only: chmod 600/);
        assert.match(err.message, /ca has mode 0755; it must be owner-only: chmod 700/);
        return true;
      });
    } finally {
      copy.cleanup();
    }
  });

  test('refuses a state directory whose files no longer fit together', async () => {
    const one = scratchDir('ca-mixed');
    try {
      const a = await CertificateAuthority.open({ dir: join(one.dir, 'a') });
      const b = await CertificateAuthority.open({ dir: join(one.dir, 'b') });
      writeFileSync(join(a.dir, 'ca-key.pem'), readFileSync(join(b.dir, 'ca-key.pem')));
      await rejectsWith(CertificateAuthority.load({ dir: a.dir }), 'SNW_ERR_CA_STATE', /ca-key\.pem is not the key of ca-cert\.pem/);
    } finally {
      one.cleanup();
    }
  });

  test('a CA directory that cannot be made is a clear error, not a stack trace', async () => {
    const file = join(scratch.dir, 'a-file');
    writeFileSync(file, 'not a directory');
    await rejectsWith(CertificateAuthority.init({ dir: join(file, 'ca') }), 'SNW_ERR_CA_STATE', /cannot use .*a-file\/ca as the CA's directory/);
  });

  test('damaged bookkeeping files: clear errors for ca.json and revocations.json, a torn issued-log line skipped', async () => {
    const damaged = scratchDir('ca-damaged');
    try {
      const c = await CertificateAuthority.open({ dir: join(damaged.dir, 'ca') });
      const issued = await issueFor(c, 'default', 'x');
      appendFileSync(join(c.dir, 'issued.jsonl'), '{"serial":"ab'); // a crash in the middle of an append
      assert.deepEqual((await c.issued()).map((r) => r.serial), [issued.serial]);
      await issueFor(c, 'default', 'y');
      writeFileSync(join(c.dir, 'revocations.json'), '{ not json', { mode: 0o600 });
      await rejectsWith(CertificateAuthority.load({ dir: c.dir }), 'SNW_ERR_CA_STATE', /revocations\.json cannot be read/);
      writeFileSync(join(c.dir, 'ca.json'), '[]');
      await rejectsWith(CertificateAuthority.load({ dir: c.dir }), 'SNW_ERR_CA_STATE', /ca\.json is not a Sinew CA description/);
    } finally {
      damaged.cleanup();
    }
  });

  test('load without a CA says how to make one; init on an existing CA refuses without --force', async () => {
    const empty = scratchDir('ca-empty');
    try {
      await rejectsWith(CertificateAuthority.load({ dir: join(empty.dir, 'ca') }), 'SNW_ERR_CA_NOT_INITIALIZED', /sinew ca init/);
      await rejectsWith(CertificateAuthority.init({ dir: ca.dir }), 'SNW_ERR_CA_EXISTS', /--force/);
      await rejectsWith(CertificateAuthority.init({ dir: join(empty.dir, 'bad'), trustDomain: 'Not A Domain' }), 'SNW_ERR_CA_BAD_IDENTITY', /trust domain/);
    } finally {
      empty.cleanup();
    }
  });
});

describe('workload certificates', () => {
  test('chain to the root, name the SPIFFE identity, and serve both ends of mutual TLS', async () => {
    const issued = await issueFor(ca, 'default', 'reviews');
    const [leaf, ...chain] = splitPemCertificates(issued.certificateChainPem);
    assert.equal(leaf, issued.certificatePem);
    assert.equal(chain.length, 2, 'the intermediate, then the root (Istio cert-chain.pem layout)');
    for (const purpose of ['sslserver', 'sslclient']) {
      const verified = await opensslVerify(scratch.dir, rootPem(), chain.join(''), leaf, ['-purpose', purpose]);
      assert.equal(verified.code, 0, `${purpose}: ${verified.stderr}`);
    }
    const text = await certificateText(leaf);
    assert.match(text, /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews\n/);
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(text, /Extended Key Usage: \s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /Subject: *\n/, 'an empty subject, as Istio issues');
    assert.match(text, /ASN1 OID: prime256v1/, 'the proxy made an ECDSA P-256 key by default');
    assert.equal(issued.identity, 'spiffe://cluster.local/ns/default/sa/reviews');
  });

  test('are valid for 24 hours by default, from the moment they are issued', async () => {
    const before = Date.now();
    const issued = await issueFor(ca, 'default', 'ratings');
    const dates = await opensslOk(['x509', '-noout', '-startdate', '-enddate'], { input: issued.certificatePem });
    const notBefore = Date.parse(/notBefore=(.*)/.exec(dates)![1]);
    const notAfter = Date.parse(/notAfter=(.*)/.exec(dates)![1]);
    assert.equal(notAfter - notBefore, DAY);
    assert.ok(notBefore <= Date.now() && notBefore >= Math.floor(before / 1000) * 1000, 'starts now (whole seconds)');
  });

  test('carry the caller\'s identity, never the one the CSR asks for', async () => {
    const issued = await issueFor(ca, 'bookinfo', 'productpage', { csrIdentity: 'spiffe://cluster.local/ns/istio-system/sa/istiod' });
    const text = await certificateText(issued.certificatePem);
    assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/productpage\n/);
    assert.doesNotMatch(text, /istiod/);
  });

  test('take the trust domain and lifetime the CA is configured with; refuse lifetimes past the maximum', async () => {
    const other = scratchDir('ca-config');
    try {
      const custom = await CertificateAuthority.open({ dir: join(other.dir, 'ca'), trustDomain: 'example.org', workloadTtlMs: 60_000, maxWorkloadTtlMs: 3_600_000 });
      const issued = await issueFor(custom, 'default', 'reviews');
      assert.match(await certificateText(issued.certificatePem), /URI:spiffe:\/\/example\.org\/ns\/default\/sa\/reviews/);
      assert.equal(issued.notAfter - issued.notBefore, 60_000);
      const hour = await issueFor(custom, 'default', 'reviews', { ttlMs: 3_600_000 });
      assert.equal(hour.notAfter - hour.notBefore, 3_600_000);
      await rejectsWith(issueFor(custom, 'default', 'reviews', { ttlMs: 3_600_001 }), 'SNW_ERR_CA_BAD_TTL', /greater than the maximum the CA allows \(1h\)/);
      // The trust domain is remembered: reopened without one, the CA keeps example.org.
      assert.equal((await CertificateAuthority.load({ dir: custom.dir })).trustDomain, 'example.org');
    } finally {
      other.cleanup();
    }
  });

  test('accept RSA 2048 keys as Istio does', async () => {
    const issued = await issueFor(ca, 'default', 'legacy', { keyType: 'rsa-2048' });
    assert.match(await certificateText(issued.certificatePem), /Public-Key: \(2048 bit\)/);
    const verified = await opensslVerify(scratch.dir, rootPem(), issued.certificateChainPem, issued.certificatePem);
    assert.equal(verified.code, 0, verified.stderr);
  });

  test('refuse keys the mesh does not use: RSA under 2048 bits, other curves, Ed25519', async () => {
    const cases: [string[], RegExp][] = [
      [['-newkey', 'rsa:1024'], /1024-bit RSA key/],
      [['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'], /curve secp521r1/],
      [['-newkey', 'ed25519'], /ed25519 key/],
    ];
    for (const [keyArgs, message] of cases) {
      const csr = await opensslOk(['req', '-new', ...keyArgs, '-nodes', '-keyout', join(scratch.dir, 'unused.key'), '-subj', '/CN=x']);
      await rejectsWith(ca.sign({ csrPem: csr, identity: { namespace: 'default', serviceAccount: 'x' } }), 'SNW_ERR_CA_BAD_CSR', message);
    }
  });

  test('are refused for a CSR that its key did not sign (proof of possession)', async () => {
    const { csrPem } = await generateKeyAndCsr({ identity: 'spiffe://cluster.local/ns/a/sa/bbbb' });
    // Change one character of the SAN inside the signed request: the signature no longer holds.
    const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64');
    const at = der.indexOf('sa/bbbb');
    assert.ok(at > 0);
    der[at + 3] = 'c'.charCodeAt(0);
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    await rejectsWith(ca.sign({ csrPem: tampered, identity: { namespace: 'a', serviceAccount: 'b' } }), 'SNW_ERR_CA_BAD_CSR', /signature does not match its public key/);
  });

  test('are refused for input that is not one CSR, with the reason', async () => {
    const { csrPem } = await generateKeyAndCsr();
    const identity = { namespace: 'default', serviceAccount: 'x' };
    const cases: [string, RegExp][] = [
      ['', /the CSR is empty/],
      ['hello', /found no PEM block/],
      [rootPem(), /found CERTIFICATE/],
      [csrPem + csrPem, /exactly one PEM "CERTIFICATE REQUEST"/],
      ['-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', /not a valid PKCS#10 request/],
      ['x'.repeat(70 * 1024), /larger than 65536 bytes/],
    ];
    for (const [input, message] of cases) await rejectsWith(ca.sign({ csrPem: input, identity }), 'SNW_ERR_CA_BAD_CSR', message);
  });

  test('are refused for an identity that cannot be a SPIFFE ID', async () => {
    const { csrPem } = await generateKeyAndCsr();
    for (const identity of [{ namespace: '', serviceAccount: 'x' }, { namespace: 'default', serviceAccount: '../admin' }, { namespace: 'a/b', serviceAccount: 'x' }]) {
      await rejectsWith(ca.sign({ csrPem, identity }), 'SNW_ERR_CA_BAD_IDENTITY', /cannot make a SPIFFE ID/);
    }
  });

  test('each have their own random serial, even when issued side by side from two CA instances on one directory', async () => {
    const twin = await CertificateAuthority.load({ dir: ca.dir });
    const issued = await Promise.all(Array.from({ length: 12 }, (_, i) => issueFor(i % 2 ? ca : twin, 'default', `sa${i}`)));
    const serials = new Set(issued.map((c) => c.serial));
    assert.equal(serials.size, 12);
    const recorded = new Set((await ca.issued()).map((r) => r.serial));
    for (const serial of serials) assert.ok(recorded.has(serial), `${serial} is in the issued log`);
    const text = await certificateText(issued[0].certificatePem);
    const serialHex = /Serial Number:\s+([0-9a-f:]+)/.exec(text)![1].replace(/:/g, '').replace(/^0+/, '');
    assert.equal(serialHex, issued[0].serial);
  });
});

describe('the intermediate over time', () => {
  test('is renewed under the same root once half its life is gone (injected clock)', async () => {
    const dir = scratchDir('ca-renew');
    try {
      const clock = new ManualClock(Date.now());
      const renewing = await CertificateAuthority.open({ dir: join(dir.dir, 'ca'), clock, intermediateTtlMs: 10 * DAY });
      const first = renewing.describe().signingCertificate;
      clock.advance(4 * DAY);
      await issueFor(renewing, 'default', 'a');
      assert.equal(renewing.describe().signingCertificate.fingerprint256, first.fingerprint256, 'not renewed before half life');
      clock.advance(2 * DAY);
      const issued = await issueFor(renewing, 'default', 'a');
      const second = renewing.describe().signingCertificate;
      assert.notEqual(second.fingerprint256, first.fingerprint256);
      assert.equal(second.notAfter, Math.floor((clock.now() + 10 * DAY) / 1000) * 1000, 'a full lifetime from now');
      // openssl at the injected time: the new leaf chains through the new intermediate to the same root.
      const at = ['-attime', String(Math.floor(clock.now() / 1000) + 1)];
      const verified = await opensslVerify(dir.dir, renewing.trustBundle().pem(), issued.certificateChainPem, issued.certificatePem, at);
      assert.equal(verified.code, 0, verified.stderr);
      assert.equal(summarizeCertificate(splitPemCertificates(issued.certificateChainPem)[1]).fingerprint256, second.fingerprint256, 'served in the chain');
      // A restart picks up the renewed intermediate.
      const reloaded = await CertificateAuthority.load({ dir: renewing.dir, clock });
      assert.equal(reloaded.describe().signingCertificate.fingerprint256, second.fingerprint256);
    } finally {
      dir.cleanup();
    }
  });

  test('a workload certificate never outlives the root', async () => {
    const dir = scratchDir('ca-short-root');
    try {
      const clock = new ManualClock(Date.now());
      const shortLived = await CertificateAuthority.open({ dir: join(dir.dir, 'ca'), clock, rootTtlMs: 2 * DAY });
      clock.advance(1.5 * DAY);
      const issued = await issueFor(shortLived, 'default', 'a');
      const root = summarizeCertificate(shortLived.trustBundle().pem());
      assert.equal(issued.notAfter, root.notAfter);
      const at = await openssl(['verify', '-attime', String(Math.floor(issued.notAfter / 1000) + 10), '-CAfile', join(shortLived.dir, 'root-cert.pem'), '-untrusted', join(shortLived.dir, 'cert-chain.pem')], { input: issued.certificatePem });
      assert.notEqual(at.code, 0, 'after the root expires nothing verifies, which is why the leaf stops there');
    } finally {
      dir.cleanup();
    }
  });
});
