/**
 * Revocation, end to end in the library: the CA keeps the list (by serial or by identity),
 * refuses renewals for what it revoked, lets an identity be issued for again without
 * reviving its old certificates, drops entries once what they cover has expired, and hands
 * proxies a list their `isRevoked` check reads. Time comes from an injected clock.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { CaError } from '../../src/ca/errors.js';
import type { RevocationList } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { normalizeSerial, parseCertificate } from '../../src/core/pki/certificate-info.js';
import { isRevoked, RevocationChecker } from '../../src/core/pki/revocation.js';
import { issueFor, opensslOk, scratchDir } from './support.js';

const MINUTE = 60_000;
const id = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

let scratch: ReturnType<typeof scratchDir>;
let clock: ManualClock;
let ca: CertificateAuthority;

before(async () => {
  scratch = scratchDir('ca-revocation');
  clock = new ManualClock(Date.now());
  ca = await CertificateAuthority.open({ dir: join(scratch.dir, 'ca'), clock, workloadTtlMs: 10 * MINUTE });
});
after(() => scratch.cleanup());

async function refusedWith(work: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(work, (err: unknown) => err instanceof CaError && err.code === code && pattern.test(err.message));
}

describe('revoking one certificate by serial', () => {
  test('puts it on the list proxies get, refuses renewal by its holder, and leaves other certificates alone', async () => {
    const held = await issueFor(ca, 'default', 'reviews', { holder: 'reviews-v1-0' });
    const other = await issueFor(ca, 'default', 'reviews', { holder: 'reviews-v2-0' });
    const versionBefore = ca.revocationList().version;

    const result = await ca.revoke({ serial: held.serial });
    assert.deepEqual(result, { kind: 'serial', target: held.serial, changed: true, expiresAt: held.notAfter, liveCertificates: 1 });
    const list = ca.revocationList();
    assert.equal(list.version, versionBefore + 1);
    assert.deepEqual(list.serials.find((s) => s.serial === held.serial), { serial: held.serial, expiresAt: held.notAfter });
    assert.equal(ca.rootCaSecret().revocations?.version, list.version, 'the ROOTCA secret carries the same list');

    assert.equal(isRevoked(held.certificatePem, list), true);
    assert.equal(isRevoked(other.certificatePem, list), false);

    await refusedWith(issueFor(ca, 'default', 'reviews', { holder: 'reviews-v1-0' }), 'SNW_ERR_CA_REVOKED', new RegExp(`certificate ${held.serial} issued to this caller was revoked`));
    const renewed = await issueFor(ca, 'default', 'reviews', { holder: 'reviews-v2-0' });
    assert.equal(isRevoked(renewed.certificatePem, ca.revocationList()), false);
  });

  test('accepts the serial as openssl prints it, and is idempotent', async () => {
    const issued = await issueFor(ca, 'default', 'details');
    const printed = (await opensslOk(['x509', '-noout', '-serial'], { input: issued.certificatePem })).trim().split('=')[1];
    const colons = printed.match(/../g)!.join(':');
    assert.equal((await ca.revoke({ serial: colons })).changed, true);
    const again = await ca.revoke({ serial: printed.toLowerCase() });
    assert.equal(again.changed, false);
    assert.equal(ca.revocationList().serials.filter((s) => s.serial === issued.serial).length, 1);
  });

  test('refuses a serial the CA never issued, or one that has expired anyway', async () => {
    await refusedWith(ca.revoke({ serial: 'abcdef0123' }), 'SNW_ERR_CA_REVOKE_TARGET', /no record of a certificate with serial abcdef0123/);
    const short = await issueFor(ca, 'default', 'short', { ttlMs: MINUTE });
    clock.advance(MINUTE + 1000);
    await refusedWith(ca.revoke({ serial: short.serial }), 'SNW_ERR_CA_REVOKE_TARGET', /expired at .* every proxy refuses it already/);
  });
});

describe('revoking an identity', () => {
  test('covers every certificate it holds and stops issuance until it is lifted', async () => {
    const a = await issueFor(ca, 'default', 'ratings');
    const b = await issueFor(ca, 'default', 'ratings');
    const bystander = await issueFor(ca, 'default', 'productpage');
    const result = await ca.revoke({ identity: id('ratings') });
    assert.equal(result.kind, 'identity');
    assert.equal(result.liveCertificates, 2);
    assert.equal(result.expiresAt, Math.max(a.notAfter, b.notAfter));
    for (const c of [a, b]) assert.equal(isRevoked(c.certificatePem, ca.revocationList()), true);
    assert.equal(isRevoked(bystander.certificatePem, ca.revocationList()), false);
    await refusedWith(issueFor(ca, 'default', 'ratings'), 'SNW_ERR_CA_REVOKED', /sinew ca unrevoke spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings/);

    // Lifted within the same second: the new certificate starts after the revocation, the old ones stay refused.
    assert.deepEqual(await ca.unrevoke(id('ratings')), { changed: true });
    const fresh = await issueFor(ca, 'default', 'ratings');
    const list = ca.revocationList();
    assert.equal(isRevoked(fresh.certificatePem, list), false);
    assert.equal(isRevoked(a.certificatePem, list), true);
    assert.deepEqual(await ca.unrevoke(id('ratings')), { changed: false });
  });

  test('refuses identities that are not SPIFFE IDs of this trust domain', async () => {
    await refusedWith(ca.revoke({ identity: 'reviews' }), 'SNW_ERR_CA_REVOKE_TARGET', /not a workload identity/);
    await refusedWith(ca.revoke({ identity: 'spiffe://other.domain/ns/default/sa/x' }), 'SNW_ERR_CA_REVOKE_TARGET', /trust domain other\.domain; this CA issues for cluster\.local/);
  });
});

describe('the revocation list over time', () => {
  test('drops entries once what they cover has expired, while a revoked identity stays unissuable', async () => {
    const dir = scratchDir('ca-revocation-expiry');
    try {
      const local = new ManualClock(Date.now());
      const short = await CertificateAuthority.open({ dir: join(dir.dir, 'ca'), clock: local, workloadTtlMs: MINUTE });
      const one = await issueFor(short, 'default', 'one');
      await issueFor(short, 'default', 'two');
      await short.revoke({ serial: one.serial });
      await short.revoke({ identity: id('two') });
      assert.equal(short.revocationList().serials.length, 1);
      assert.equal(short.revocationList().identities.length, 1);
      local.advance(MINUTE + 1000);
      assert.deepEqual(short.revocationList(), { version: 2, serials: [], identities: [] }, 'nothing left to refuse');
      await refusedWith(issueFor(short, 'default', 'two'), 'SNW_ERR_CA_REVOKED', /was revoked/);
    } finally {
      dir.cleanup();
    }
  });

  test('a revocation made by another process (sinew ca revoke) is seen on refresh, and by the next issuance', async () => {
    const issued = await issueFor(ca, 'default', 'mongodb');
    const other = await CertificateAuthority.load({ dir: ca.dir, clock });
    let changes = 0;
    const unsubscribe = ca.onChange(() => changes++);
    try {
      await other.revoke({ identity: id('mongodb') });
      assert.equal(isRevoked(issued.certificatePem, ca.revocationList()), false, 'not yet read');
      assert.equal(await ca.refresh(), true);
      assert.equal(changes, 1);
      assert.equal(isRevoked(issued.certificatePem, ca.revocationList()), true);
      assert.equal(await ca.refresh(), false, 'nothing new');
      await other.unrevoke(id('mongodb'));
      await other.revoke({ identity: id('mongodb') });
      await refusedWith(issueFor(ca, 'default', 'mongodb'), 'SNW_ERR_CA_REVOKED', /was revoked/);
    } finally {
      unsubscribe();
    }
  });
});

describe('RevocationChecker (the proxy side)', () => {
  test('reads serials in any spelling and SPIFFE identities by issue time', async () => {
    const issued = await issueFor(ca, 'default', 'checker');
    const cert = parseCertificate(issued.certificatePem);
    const notBefore = Date.parse(cert.validFrom);
    const bySerial: RevocationList = { version: 1, serials: [{ serial: cert.serialNumber.toUpperCase(), expiresAt: issued.notAfter }], identities: [] };
    assert.equal(normalizeSerial(cert.serialNumber), issued.serial);
    assert.equal(new RevocationChecker(bySerial).reason(cert), `certificate ${issued.serial} is revoked`);
    const before: RevocationList = { version: 1, serials: [], identities: [{ identity: id('checker'), issuedBefore: notBefore, expiresAt: issued.notAfter }] };
    assert.equal(new RevocationChecker(before).isRevoked(cert), false, 'issued at the cutoff: not covered');
    const after: RevocationList = { ...before, identities: [{ ...before.identities[0], issuedBefore: notBefore + 1000 }] };
    assert.match(new RevocationChecker(after).reason(cert)!, /identity spiffe:\/\/cluster\.local\/ns\/default\/sa\/checker is revoked/);
    assert.equal(new RevocationChecker(undefined).empty, true);
    assert.equal(isRevoked(issued.certificatePem, undefined), false);
  });
});
