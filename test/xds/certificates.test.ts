/**
 * Certificate requests on the push connection (protocol.ts `csr` / `certificate`): a real
 * push server and push clients over TCP on ephemeral ports. The server signs only for a node
 * past HELLO, answers refusals with their code, bounds what one proxy has in flight, and a
 * client's pending request ends when its connection does.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';
import { SinewError } from '../../src/core/errors.js';
import { PushClient } from '../../src/xds/client.js';
import { MAX_CSR_CHARS, XdsErrorCode, parseClientMessage, parseServerMessage } from '../../src/xds/protocol.js';
import { PushServer, type CertificateIssuer } from '../../src/xds/server.js';

const node: ProxyNode = { id: 'sidecar~reviews-v1-0.default', mode: 'sidecar', workload: 'reviews-v1', namespace: 'default', labels: { app: 'reviews' }, serviceAccount: 'bookinfo-reviews' };
const config = (n: ProxyNode): ProxyConfig => ({ version: 'x', node: n, listeners: [], routeConfigs: [], clusters: [], endpoints: [] });

async function withServer(issueCertificate: CertificateIssuer | undefined, body: (server: PushServer, client: PushClient) => Promise<void>): Promise<void> {
  const server = new PushServer({ source: config, issueCertificate, authenticate: (_n, credential) => (credential === 'good' ? undefined : 'bad credential') });
  const { port } = await server.listen(0);
  const client = new PushClient({ host: '127.0.0.1', port, node, credential: 'good', apply: () => undefined, backoff: { initialMs: 5_000, maxMs: 5_000 } });
  try {
    client.start();
    await body(server, client);
  } finally {
    await client.close();
    await server.close();
  }
}

describe('certificate requests over the push connection', () => {
  test('the issuer signs for the node the HELLO proved, whatever the CSR says', async () => {
    const seen: { node: ProxyNode; csr: string }[] = [];
    await withServer(
      async (n, csr) => {
        seen.push({ node: n, csr });
        return { certificateChainPem: `chain for ${n.namespace}/${n.serviceAccount}` };
      },
      async (server, client) => {
        const answer = await client.requestCertificate('CSR-1');
        assert.equal(answer.certificateChainPem, 'chain for default/bookinfo-reviews');
        assert.deepEqual(seen.map((s) => [s.node.id, s.csr]), [[node.id, 'CSR-1']]);
        assert.equal(server.metrics.certificatesIssued, 1);
      },
    );
  });

  test('a refusal comes back with its code and message; the connection stays up', async () => {
    await withServer(
      async () => {
        throw new SinewError('SNW_ERR_CA_REVOKED', 'identity spiffe://cluster.local/ns/default/sa/bookinfo-reviews was revoked');
      },
      async (server, client) => {
        await assert.rejects(client.requestCertificate('CSR'), (err: SinewError) => {
          assert.equal(err.code, XdsErrorCode.CertificateRefused);
          assert.match(err.message, /SNW_ERR_CA_REVOKED: identity .* was revoked/);
          return true;
        });
        assert.equal(server.metrics.certificatesRefused, 1);
        assert.equal(client.state, 'connected');
      },
    );
  });

  test('a control plane without a CA refuses, saying so', async () => {
    await withServer(undefined, async (_server, client) => {
      await assert.rejects(client.requestCertificate('CSR'), /has no certificate authority/);
    });
  });

  test('more than two requests in flight from one proxy are refused at once', async () => {
    const waiting: (() => void)[] = [];
    await withServer(
      (n) => new Promise((resolve) => waiting.push(() => resolve({ certificateChainPem: n.id }))),
      async (server, client) => {
        const first = client.requestCertificate('A');
        const second = client.requestCertificate('B');
        await assert.rejects(client.requestCertificate('C'), /at most 2 certificate requests at once/);
        assert.equal(waiting.length, 2);
        for (const release of waiting) release();
        assert.deepEqual(await Promise.all([first, second]), [{ certificateChainPem: node.id }, { certificateChainPem: node.id }]);
        assert.equal(server.metrics.certificatesRefused, 1);
      },
    );
  });

  test('a request made before the connection is up waits for it', async () => {
    const server = new PushServer({ source: config, issueCertificate: async () => ({ certificateChainPem: 'late' }) });
    const { port } = await server.listen(0);
    const client = new PushClient({ host: '127.0.0.1', port, node, apply: () => undefined });
    try {
      const pending = client.requestCertificate('CSR');
      client.start();
      assert.deepEqual(await pending, { certificateChainPem: 'late' });
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('a proxy whose HELLO is refused gets no certificate: its request ends with the connection', async () => {
    const server = new PushServer({ source: config, issueCertificate: async () => assert.fail('nothing may be signed'), authenticate: () => 'the credential was issued for another node' });
    const { port } = await server.listen(0);
    const client = new PushClient({ host: '127.0.0.1', port, node, credential: 'stolen', apply: () => undefined, backoff: { initialMs: 5_000, maxMs: 5_000 } });
    try {
      client.start();
      await assert.rejects(client.requestCertificate('CSR'), (err: SinewError) => err.code === XdsErrorCode.CertificateUnanswered && /SNW_ERR_XDS_UNAUTHENTICATED/.test(err.message));
      assert.equal(server.metrics.certificatesIssued, 0);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('a CSR before HELLO closes the connection and is logged', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {}, child() { return logger; } };
    const server = new PushServer({ source: config, issueCertificate: async () => assert.fail('nothing may be signed'), logger: logger as never });
    const { port } = await server.listen(0);
    const socket = net.connect({ host: '127.0.0.1', port });
    try {
      await once(socket, 'connect');
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (c: string) => (received += c));
      socket.write(JSON.stringify({ type: 'csr', id: 1, csr: 'CSR' }) + '\n');
      await once(socket, 'close');
      assert.match(received, /"type":"close","code":"SNW_ERR_XDS_UNEXPECTED_MESSAGE","reason":"csr before hello"/);
      assert.ok(warnings.some((w) => /certificate request without a credential/.test(w)), warnings.join('\n'));
    } finally {
      socket.destroy();
      await server.close();
    }
  });

  test('the closed client rejects what it still waits for', async () => {
    const client = new PushClient({ host: '127.0.0.1', port: 9, node, apply: () => undefined });
    const pending = client.requestCertificate('CSR');
    await client.close();
    await assert.rejects(pending, (err: SinewError) => err.code === XdsErrorCode.NotConnected);
  });

  test('frames are checked: an oversized CSR, an answer with neither chain nor error', () => {
    assert.throws(() => parseClientMessage(JSON.stringify({ type: 'csr', id: 1, csr: 'x'.repeat(MAX_CSR_CHARS + 1) })), /longer than 16384/);
    assert.throws(() => parseClientMessage(JSON.stringify({ type: 'csr', id: -1, csr: 'x' })), /csr.id must be a non-negative integer/);
    assert.throws(() => parseServerMessage(JSON.stringify({ type: 'certificate', id: 1 })), /either certificateChainPem or error/);
    assert.deepEqual(parseServerMessage(JSON.stringify({ type: 'certificate', id: 2, error: { code: 'X', message: 'no' } })), { type: 'certificate', id: 2, error: { code: 'X', message: 'no' } });
  });
});
