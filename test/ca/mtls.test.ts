/**
 * Issued certificates doing what they are for: mutual TLS between a node:tls server and
 * client, each presenting its workload certificate and trusting the mesh root, as two
 * sidecars will. The server refuses a client certificate from another CA and an expired one
 * (node's own verification), and a revoked one (the revocation check the proxy runs after
 * verification); the client refuses a server it cannot trust in the same ways.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import tls from 'node:tls';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { ManualClock } from '../../src/core/clock.js';
import { uriSans } from '../../src/core/pki/certificate-info.js';
import { RevocationChecker } from '../../src/core/pki/revocation.js';
import { issueFor, scratchDir, type WorkloadCredentials } from './support.js';

const DAY = 86_400_000;

interface MtlsServer {
  port: number;
  /** Why each refused client was refused: node's TLS error codes, or the revocation check's reason. */
  refused: string[];
  close(): Promise<void>;
}

/** A server that requires a client certificate from the mesh and answers with the client's identity. */
async function startServer(creds: WorkloadCredentials, trustBundlePem: string, revocations: () => RevocationChecker): Promise<MtlsServer> {
  const refused: string[] = [];
  // rejectUnauthorized stays false so the server can record why it refuses a client (node's
  // own rejection is the same check, made in JavaScript after the handshake, without a reason).
  const server = tls.createServer({ key: creds.privateKeyPem, cert: creds.certificateChainPem, ca: trustBundlePem, requestCert: true, rejectUnauthorized: false }, (socket) => {
    socket.on('error', () => undefined);
    if (!socket.authorized) {
      refused.push(String(socket.authorizationError));
      socket.destroy();
      return;
    }
    const peer = socket.getPeerX509Certificate();
    const revoked = peer && revocations().reason(peer);
    if (!peer || revoked) {
      refused.push(revoked || 'no client certificate');
      socket.destroy();
      return;
    }
    socket.end(JSON.stringify({ client: uriSans(peer) }));
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    refused.push(String(err.code ?? err.message));
    socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return { port, refused, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface CallResult {
  /** What the server answered, when it answered. */
  body?: string;
  /** The server's identity, when the handshake completed on the client's side. */
  server?: string[];
  error?: string;
}

/**
 * One mutual TLS exchange. The client checks the server the way a sidecar does: a chain to
 * the mesh roots (node), the expected SPIFFE identity, and the revocation list.
 */
function call(port: number, creds: WorkloadCredentials, trustBundlePem: string, expectServer: string, revocations = new RevocationChecker(undefined)): Promise<CallResult> {
  return new Promise((resolve) => {
    const result: CallResult = {};
    const chunks: Buffer[] = [];
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      key: creds.privateKeyPem,
      cert: creds.certificateChainPem,
      ca: trustBundlePem,
      // Mesh certificates name a SPIFFE ID, not a host: check that instead (Istio's SAN check).
      checkServerIdentity: (_host, cert) => {
        const x = new X509Certificate(cert.raw);
        const ids = uriSans(x);
        if (!ids.includes(expectServer)) return new Error(`server is ${ids.join(', ') || 'nobody'}, not ${expectServer}`);
        const revoked = revocations.reason(x);
        return revoked ? new Error(revoked) : undefined;
      },
    });
    socket.on('secureConnect', () => {
      const peer = socket.getPeerX509Certificate();
      result.server = peer ? uriSans(peer) : [];
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      result.error ??= String(err.code ?? err.message) + ': ' + err.message;
    });
    socket.on('close', () => {
      if (chunks.length) result.body = Buffer.concat(chunks).toString();
      resolve(result);
    });
  });
}

const id = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

let scratch: ReturnType<typeof scratchDir>;
let ca: CertificateAuthority;
let rogue: CertificateAuthority;
let clock: ManualClock;
let bundle: string;
let server: WorkloadCredentials;
let client: WorkloadCredentials;
let expiredClient: WorkloadCredentials;
let mtls: MtlsServer;

before(async () => {
  scratch = scratchDir('ca-mtls');
  // The CA's clock starts two days back, so it can issue a certificate that has expired by now.
  clock = new ManualClock(Date.now() - 2 * DAY);
  ca = await CertificateAuthority.open({ dir: join(scratch.dir, 'mesh'), clock });
  expiredClient = await issueFor(ca, 'default', 'productpage', { ttlMs: 3_600_000 });
  clock.advance(2 * DAY);
  rogue = await CertificateAuthority.open({ dir: join(scratch.dir, 'rogue') });
  bundle = ca.trustBundle().pem();
  server = await issueFor(ca, 'default', 'reviews');
  client = await issueFor(ca, 'default', 'productpage', { holder: 'productpage-v1-0' });
  mtls = await startServer(server, bundle, () => new RevocationChecker(ca.revocationList()));
});
after(async () => {
  await mtls?.close();
  scratch.cleanup();
});

describe('mutual TLS with issued certificates', () => {
  test('both sides verify each other and see each other\'s SPIFFE identity', async () => {
    const result = await call(mtls.port, client, bundle, id('reviews'));
    assert.equal(result.error, undefined);
    assert.deepEqual(result.server, [id('reviews')]);
    assert.deepEqual(JSON.parse(result.body!), { client: [id('productpage')] });
  });

  test('an RSA 2048 client certificate works beside ECDSA ones', async () => {
    const rsa = await issueFor(ca, 'default', 'legacy', { keyType: 'rsa-2048' });
    const result = await call(mtls.port, rsa, bundle, id('reviews'));
    assert.deepEqual(JSON.parse(result.body!), { client: [id('legacy')] });
  });

  test('the server refuses a client certificate from another CA', async () => {
    const stranger = await issueFor(rogue, 'default', 'productpage');
    const before = mtls.refused.length;
    const result = await call(mtls.port, stranger, bundle, id('reviews'));
    assert.equal(result.body, undefined, 'no answer');
    assert.equal(mtls.refused.length, before + 1);
    // The stranger's chain ends in its own root, which this server does not trust.
    assert.equal(mtls.refused.at(-1), 'SELF_SIGNED_CERT_IN_CHAIN');
  });

  test('the server refuses an expired client certificate', async () => {
    assert.ok(expiredClient.notAfter < Date.now(), 'issued an hour long, two days ago');
    const before = mtls.refused.length;
    const result = await call(mtls.port, expiredClient, bundle, id('reviews'));
    assert.equal(result.body, undefined);
    assert.equal(mtls.refused.length, before + 1);
    assert.equal(mtls.refused.at(-1), 'CERT_HAS_EXPIRED');
  });

  test('the server refuses a revoked client certificate once the CA revoked it, and only that one', async () => {
    const victim = await issueFor(ca, 'default', 'details', { holder: 'details-v1-0' });
    const sibling = await issueFor(ca, 'default', 'details', { holder: 'details-v1-1' });
    assert.ok((await call(mtls.port, victim, bundle, id('reviews'))).body, 'accepted before the revocation');
    await ca.revoke({ serial: victim.serial });
    const before = mtls.refused.length;
    const result = await call(mtls.port, victim, bundle, id('reviews'));
    assert.equal(result.body, undefined);
    assert.equal(mtls.refused.at(-1), `certificate ${victim.serial} is revoked`);
    assert.equal(mtls.refused.length, before + 1);
    assert.deepEqual(JSON.parse((await call(mtls.port, sibling, bundle, id('reviews'))).body!), { client: [id('details')] }, 'another certificate of the same identity still works');
  });

  test('revoking an identity refuses every certificate it held', async () => {
    const a = await issueFor(ca, 'default', 'ratings');
    const b = await issueFor(ca, 'default', 'ratings', { keyType: 'rsa-2048' });
    await ca.revoke({ identity: id('ratings') });
    for (const creds of [a, b]) {
      const result = await call(mtls.port, creds, bundle, id('reviews'));
      assert.equal(result.body, undefined);
      assert.match(mtls.refused.at(-1)!, /identity spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings is revoked/);
    }
  });

  test('the client refuses a server from another CA, a server with another identity, and a revoked server', async () => {
    const strangerServer = await startServer(await issueFor(rogue, 'default', 'reviews'), bundle, () => new RevocationChecker(undefined));
    try {
      const result = await call(strangerServer.port, client, bundle, id('reviews'));
      assert.equal(result.body, undefined);
      assert.match(result.error!, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify|self-signed|local issuer/i);
    } finally {
      await strangerServer.close();
    }
    const impostor = await call(mtls.port, client, bundle, id('ratings'));
    assert.equal(impostor.body, undefined);
    assert.match(impostor.error!, /server is spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews, not spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings/);

    const revokedServerCreds = await issueFor(ca, 'default', 'reviews');
    const revokedServer = await startServer(revokedServerCreds, bundle, () => new RevocationChecker(undefined));
    try {
      await ca.revoke({ serial: revokedServerCreds.serial });
      const result = await call(revokedServer.port, client, bundle, id('reviews'), new RevocationChecker(ca.revocationList()));
      assert.equal(result.body, undefined);
      assert.match(result.error!, new RegExp(`certificate ${revokedServerCreds.serial} is revoked`));
    } finally {
      await revokedServer.close();
    }
  });
});
