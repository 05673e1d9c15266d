/**
 * Upstream TLS (DestinationRule tls: SIMPLE / ISTIO_MUTUAL): the pool verifies the server
 * against the pushed CA and Istio's subjectAltNames (a SPIFFE URI SAN), and presents the
 * client certificate for mutual TLS. Certificates are made with openssl at test time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import type { Secret } from '../../src/api/proxy-config.js';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import { upstreamTransport, type UpstreamTransport } from '../../src/proxy/transport/transport-socket.js';
import { echoCluster, send } from './upstream-fixtures.js';

const SPIFFE = 'spiffe://cluster.local/ns/default/sa/echo';

function makePki(dir: string) {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-root');
  const leaf = (name: string, san: string) => {
    writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  };
  leaf('server', `URI:${SPIFFE},DNS:localhost`);
  leaf('client', 'URI:spiffe://cluster.local/ns/default/sa/client');
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
  return { ca: read('ca.pem'), serverCert: read('server.pem'), serverKey: read('server.key'), clientCert: read('client.pem'), clientKey: read('client.key') };
}

describe('upstream TLS', () => {
  let dir = '';
  let pki: ReturnType<typeof makePki>;
  let server: https.Server;
  let port = 0;
  let lastPeer: string | undefined;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sinew-upstream-tls-'));
    pki = makePki(dir);
    server = https.createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      lastPeer = peer && peer.subjectaltname ? peer.subjectaltname : undefined;
      res.end('secure');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const secrets = (): Secret[] => [
    { name: 'root', trustedCaPem: pki.ca },
    { name: 'default', certificateChainPem: pki.clientCert, privateKeyPem: pki.clientKey },
  ];
  const endpoint = () => ({ address: { host: '127.0.0.1', port }, labels: {}, health: 'HEALTHY' as const });

  test('ISTIO_MUTUAL: verifies the SPIFFE SAN and presents the client certificate', async () => {
    const m = createClusterManager();
    m.update([echoCluster('mtls', { tls: { mode: 'ISTIO_MUTUAL', validationContext: 'root', certificate: 'default', subjectAltNames: [SPIFFE] } })], [{ clusterName: 'mtls', endpoints: [endpoint()] }], secrets());
    const res = await send(m.get('mtls')!);
    assert.equal(res.body, 'secure');
    assert.match(lastPeer ?? '', /sa\/client/);
    await m.close();
  });

  test('a SAN mismatch fails the connection with a coded error', async () => {
    const m = createClusterManager();
    m.update([echoCluster('bad', { tls: { mode: 'SIMPLE', validationContext: 'root', subjectAltNames: ['spiffe://cluster.local/ns/other/sa/x'] } })], [{ clusterName: 'bad', endpoints: [endpoint()] }], secrets());
    await assert.rejects(send(m.get('bad')!), { code: 'SNW_ERR_UPSTREAM_SAN_MISMATCH' });
    await m.close();
  });

  test('a cluster naming a secret that was not pushed stays warming (UH) while the others serve, and serves once it arrives', async () => {
    const m = createClusterManager();
    const mtls = echoCluster('mtls', { tls: { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'root', subjectAltNames: [SPIFFE] } });
    const plain = echoCluster('plain');
    const assignments = [{ clusterName: 'mtls', endpoints: [endpoint()] }, { clusterName: 'plain', endpoints: [endpoint()] }];
    m.update([mtls, plain], assignments, []);
    const warming = m.get('mtls')!.acquire({});
    assert.deepEqual(warming.ok ? 'leased' : [warming.flag, warming.detail], ['UH', 'cluster_warming']);
    assert.equal(m.stats().find((c) => c.name === 'mtls')!.unavailable, 'TLS secrets "root", "default" not pushed');
    assert.ok(m.get('plain')!.acquire({}).ok, 'the rest of the update applied');
    m.update([mtls, plain], assignments, secrets());
    assert.equal((await send(m.get('mtls')!)).body, 'secure');
    assert.equal(m.stats().find((c) => c.name === 'mtls')!.unavailable, undefined);
    await m.close();
  });

  // Regression (tls-upstream-nagle): tls.connect ignores net's noDelay option, so TLS upstreams
  // kept Nagle's algorithm on. A request written in two pieces (a head, then its body as it
  // streams in) had its second piece held until the server's delayed ACK (~40 ms on Linux
  // loopback): the mTLS pair's p90 was 8.6 ms and p99 153 ms at 1000 req/s, plaintext 1.1 ms.
  test('a TLS upstream connection sends a second small write without waiting for the delayed ACK (tls-upstream-nagle)', async () => {
    // A TLS server that answers once it has both pieces, as an app answers a complete request.
    const answerAfter = 20;
    const replier = tls.createServer({ key: pki.serverKey, cert: pki.serverCert }, (socket) => {
      let got = 0;
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= answerAfter) {
          got = 0;
          socket.write('ok');
        }
      });
    });
    replier.listen(0, '127.0.0.1');
    await once(replier, 'listening');
    const transport = upstreamTransport({ mode: 'SIMPLE', validationContext: 'root', subjectAltNames: [SPIFFE] }, new Map(secrets().map((s) => [s.name, s])), 'http1') as UpstreamTransport;
    const socket = transport.connect('127.0.0.1', (replier.address() as AddressInfo).port, { noDelay: true });
    socket.on('error', () => {});
    try {
      await once(socket, transport.readyEvent);
      const exchanges: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        socket.write('a'.repeat(answerAfter / 2));
        await new Promise((resolve) => setImmediate(resolve)); // a separate write, as a streamed body is
        socket.write('b'.repeat(answerAfter / 2));
        await once(socket, 'data');
        exchanges.push(performance.now() - started);
      }
      exchanges.sort((a, b) => a - b);
      const median = exchanges[Math.floor(exchanges.length / 2)];
      // Nagle with a delayed ACK costs >= 40 ms per exchange; 20 ms leaves a loaded machine room.
      assert.ok(median < 20, `median exchange ${median.toFixed(1)} ms: the second write waited for an ACK (Nagle on)`);
    } finally {
      socket.destroy();
      await new Promise<void>((resolve) => replier.close(() => resolve()));
    }
  });
});
