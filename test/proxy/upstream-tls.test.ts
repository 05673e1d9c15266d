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
import type { TLSSocket } from 'node:tls';
import type { Secret } from '../../src/api/proxy-config.js';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
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
});
