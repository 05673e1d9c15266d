/**
 * Trust bundles with several roots, and a root rotation through them: the new root is
 * trusted beside the old one before anything is signed with it, certificates of both roots
 * are accepted during the overlap (mutual TLS between an old-root and a new-root workload),
 * and the old root leaves the bundle once its last certificate has expired.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import tls from 'node:tls';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { CaError } from '../../src/ca/errors.js';
import { ManualClock } from '../../src/core/clock.js';
import { TrustBundle, TrustBundleError } from '../../src/core/pki/trust-bundle.js';
import { issueFor, opensslVerify, scratchDir, type WorkloadCredentials } from './support.js';

const HOUR = 3_600_000;

let scratch: ReturnType<typeof scratchDir>;
before(() => {
  scratch = scratchDir('ca-roots');
});
after(() => scratch.cleanup());

/** One mutual TLS exchange between `server` and `client` creds, each trusting `bundle`; resolves true when the client got an answer. */
async function handshake(server: WorkloadCredentials, client: WorkloadCredentials, bundle: string): Promise<boolean> {
  const srv = tls.createServer({ key: server.privateKeyPem, cert: server.certificateChainPem, ca: bundle, requestCert: true, rejectUnauthorized: true }, (socket) => {
    socket.on('error', () => undefined);
    socket.end('hello');
  });
  srv.on('tlsClientError', () => undefined);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const port = (srv.address() as { port: number }).port;
    return await new Promise<boolean>((resolve) => {
      let answered = false;
      const socket = tls.connect({ host: '127.0.0.1', port, key: client.privateKeyPem, cert: client.certificateChainPem, ca: bundle, checkServerIdentity: () => undefined });
      socket.on('data', () => (answered = true));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(answered));
    });
  } finally {
    await new Promise((resolve) => srv.close(resolve));
  }
}

describe('TrustBundle', () => {
  test('holds several roots once each, in order, and refuses what cannot be a root', async () => {
    const a = await CertificateAuthority.open({ dir: join(scratch.dir, 'a') });
    const b = await CertificateAuthority.open({ dir: join(scratch.dir, 'b') });
    const both = TrustBundle.fromPem(a.trustBundle().pem() + b.trustBundle().pem() + a.trustBundle().pem());
    assert.equal(both.roots.length, 2);
    assert.equal(both.roots[0].fingerprint256, a.trustBundle().roots[0].fingerprint256);
    assert.ok(both.has(b.trustBundle().roots[0].fingerprint256));
    assert.equal(TrustBundle.fromPem(both.pem()).pem(), both.pem(), 'round-trips through PEM');
    assert.equal(a.trustBundle().merge(b.trustBundle()).pem(), both.pem());

    const leaf = await issueFor(a, 'default', 'x');
    assert.throws(() => TrustBundle.fromPem(leaf.certificatePem), (err: TrustBundleError) => err.code === 'SNW_ERR_TRUST_BUNDLE' && /certificate 1 of the trust bundle \(empty subject\) is not a CA certificate/.test(err.message));
    assert.throws(() => TrustBundle.fromPem('no pem here'), /holds no PEM certificate/);
    assert.throws(() => TrustBundle.fromPem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), /certificate 1 of the trust bundle cannot be read/);
  });

  test('drops expired roots but never empties itself', async () => {
    const clock = new ManualClock(Date.now());
    const shortRoot = await CertificateAuthority.open({ dir: join(scratch.dir, 'short'), clock, rootTtlMs: HOUR });
    const long = await CertificateAuthority.open({ dir: join(scratch.dir, 'long') });
    const bundle = shortRoot.trustBundle().merge(long.trustBundle());
    assert.equal(bundle.withoutExpired(clock.now()).roots.length, 2);
    assert.equal(bundle.withoutExpired(clock.now() + 2 * HOUR).roots.length, 1);
    assert.equal(shortRoot.trustBundle().withoutExpired(clock.now() + 2 * HOUR).roots.length, 1, 'a lone expired root stays: an empty bundle would trust nothing at all');
  });
});

describe('root rotation', () => {
  test('both roots are trusted during the overlap; the old one leaves when its last certificate expires', async () => {
    const clock = new ManualClock(Date.now());
    const ca = await CertificateAuthority.open({ dir: join(scratch.dir, 'rotating'), clock, workloadTtlMs: 24 * HOUR });
    const oldRoot = ca.trustBundle().roots[0];
    const oldServer = await issueFor(ca, 'default', 'reviews');

    const newRoot = await ca.beginRootRotation();
    const overlap = ca.trustBundle();
    assert.deepEqual(overlap.roots.map((r) => r.fingerprint256), [oldRoot.fingerprint256, newRoot.fingerprint256]);
    const stillOld = await issueFor(ca, 'default', 'ratings');
    const oldOnly = await opensslVerify(scratch.dir, oldRoot.pem, stillOld.certificateChainPem, stillOld.certificatePem);
    assert.equal(oldOnly.code, 0, 'until the rotation completes the old intermediate signs, so proxies with the old bundle still verify');
    await assert.rejects(ca.beginRootRotation(), (err: CaError) => err.code === 'SNW_ERR_CA_ROTATION' && /already under way/.test(err.message));

    const { oldRootTrustedUntil } = await ca.completeRootRotation();
    assert.equal(oldRootTrustedUntil, Math.max(oldServer.notAfter, stillOld.notAfter));
    const newClient = await issueFor(ca, 'default', 'productpage');
    const newRootPem = ca.trustBundle().roots.find((r) => r.fingerprint256 === newRoot.fingerprint256)!.pem;
    const newOnly = await opensslVerify(scratch.dir, newRootPem, newClient.certificateChainPem, newClient.certificatePem);
    assert.equal(newOnly.code, 0, newOnly.stderr);
    const againstOld = await opensslVerify(scratch.dir, oldRoot.pem, newClient.certificateChainPem, newClient.certificatePem);
    assert.notEqual(againstOld.code, 0, 'the new certificates chain to the new root only');

    const bundle = ca.trustBundle();
    assert.equal(bundle.roots.length, 2);
    assert.equal(bundle.roots[0].fingerprint256, newRoot.fingerprint256, 'the signing root comes first');
    assert.equal(await handshake(oldServer, newClient, bundle.pem()), true, 'old-root server, new-root client');
    assert.equal(await handshake(newClient, oldServer, bundle.pem()), true, 'new-root server, old-root client');

    const reloaded = await CertificateAuthority.load({ dir: ca.dir, clock });
    assert.equal(reloaded.trustBundle().pem(), bundle.pem(), 'the overlap survives a restart');
    assert.equal(reloaded.describe().retiringRoots[0].trustedUntil, oldRootTrustedUntil);

    // Past the old root's last certificate (the clock runs ahead of real time now, so openssl checks at the CA's time).
    clock.advance(oldRootTrustedUntil - clock.now() + 1000);
    const after = ca.trustBundle();
    assert.deepEqual(after.roots.map((r) => r.fingerprint256), [newRoot.fingerprint256]);
    const at = ['-attime', String(Math.floor(clock.now() / 1000))];
    const later = await issueFor(ca, 'default', 'reviews');
    assert.equal((await opensslVerify(scratch.dir, after.pem(), later.certificateChainPem, later.certificatePem, at)).code, 0);
    const oldCert = await opensslVerify(scratch.dir, after.pem(), oldServer.certificateChainPem, oldServer.certificatePem, ['-no_check_time']);
    assert.notEqual(oldCert.code, 0, 'an old-root certificate no longer chains to anything trusted');
  });

  test('is refused for a plug-in CA and without a rotation under way', async () => {
    const plain = await CertificateAuthority.open({ dir: join(scratch.dir, 'plain') });
    await assert.rejects(plain.completeRootRotation(), (err: CaError) => err.code === 'SNW_ERR_CA_ROTATION' && /no root rotation is under way/.test(err.message));
    const plugin = await CertificateAuthority.init({ dir: join(scratch.dir, 'plugged'), pluginDir: plain.dir });
    assert.equal(plugin.source, 'plugin');
    await assert.rejects(plugin.beginRootRotation(), (err: CaError) => err.code === 'SNW_ERR_CA_ROTATION' && /both roots in root-cert\.pem/.test(err.message));
  });
});
