/**
 * TLS termination on HTTP listeners (gateway servers with tls SIMPLE / MUTUAL, permissive
 * ports): HTTP/1.1 and HTTP/2 chosen by ALPN on one port, client certificates, plaintext beside
 * TLS, certificate rotation without dropping connections, bad handshakes, and validation of
 * the secrets a listener names. Certificates are made with openssl at test time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { DownstreamTls, HttpConnectionManager, Listener, ProxyConfig, Secret } from '../../src/api/proxy-config.js';
import { ProxyConfigError } from '../../src/proxy/errors.js';
import { h1Client, h2Client, rawExchange as raw } from './support/client.js';
import { cluster, endpoint, httpListener, proxyConfig, route, routeTo, table, vhost } from './support/config.js';
import { until } from './support/drive.js';
import { startEcho, type EchoReply, type EchoServer } from './support/echo.js';
import { startProxy, type Harness } from './support/harness.js';

const ECHO = 'outbound|80||echo.default.svc.cluster.local';
const HOST = 'bookinfo.example.com';

interface Pki {
  ca: string;
  server: { cert: string; key: string };
  rotated: { cert: string; key: string };
  client: { cert: string; key: string };
  /** Signed by a CA the gateway does not trust. */
  rogue: { cert: string; key: string };
}

function makePki(dir: string): Pki {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-root');
  run('req', '-x509', ...ec, '-keyout', 'rogue-ca.key', '-out', 'rogue-ca.pem', '-days', '1', '-subj', '/CN=rogue-root');
  const leaf = (name: string, ca: string, san: string) => {
    writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    run('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
    return { cert: readFileSync(path.join(dir, `${name}.pem`), 'utf8'), key: readFileSync(path.join(dir, `${name}.key`), 'utf8') };
  };
  return {
    ca: readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    server: leaf('server', 'ca', `DNS:${HOST},IP:127.0.0.1`),
    rotated: leaf('rotated', 'ca', `DNS:${HOST},IP:127.0.0.1`),
    client: leaf('client', 'ca', 'URI:spiffe://cluster.local/ns/default/sa/client'),
    rogue: leaf('rogue', 'rogue-ca', 'URI:spiffe://cluster.local/ns/default/sa/rogue'),
  };
}

interface TlsReply {
  status: number;
  body: string;
  alpn: string | false | null;
  /** CN of the certificate the proxy presented. */
  serverCn: string;
}

/** One HTTP/1.1 request over a fresh TLS connection (closed after the response). */
function h1s(port: number, ca: string, opts: { alpn?: string[]; cert?: string; key?: string; path?: string } = {}): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    // ALPNProtocols reaches tls.connect; @types/node leaves it out of https.RequestOptions.
    const options: https.RequestOptions & tls.ConnectionOptions = {
      host: '127.0.0.1', port, path: opts.path ?? '/', servername: HOST, ca, cert: opts.cert, key: opts.key, ALPNProtocols: opts.alpn, agent: false, headers: { host: HOST },
    };
    const req = https.request(
      options,
      (res) => {
        const socket = res.socket as tls.TLSSocket;
        const alpn = socket.alpnProtocol;
        const serverCn = String(socket.getPeerCertificate().subject?.CN);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), alpn, serverCn }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** An HTTP/2 session negotiated by ALPN, and a request helper on it. */
async function h2s(port: number, ca: string, opts: { cert?: string; key?: string } = {}) {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: HOST, cert: opts.cert, key: opts.key });
  session.on('error', () => {});
  await once(session, 'connect');
  const request = (p = '/') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': p, ':authority': HOST });
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
      stream.on('error', reject);
    });
  const socket = session.socket as tls.TLSSocket;
  return {
    session,
    request,
    alpn: session.alpnProtocol,
    serverCn: String(socket.getPeerCertificate().subject?.CN),
    close: () => new Promise<void>((resolve) => session.close(() => resolve())),
  };
}


const seen = (body: string) => JSON.parse(body) as EchoReply;

describe('TLS termination on HTTP listeners', () => {
  let dir = '';
  let pki: Pki;
  let echo: EchoServer;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sinew-downstream-tls-'));
    pki = makePki(dir);
    echo = await startEcho('echo');
  });
  after(async () => {
    await echo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const secrets = (server = pki.server): Secret[] => [
    { name: 'bookinfo-credential', certificateChainPem: server.cert, privateKeyPem: server.key },
    { name: 'bookinfo-credential-cacert', trustedCaPem: pki.ca },
  ];
  /** A gateway port as the compiler builds it for an HTTPS server with credentialName bookinfo-credential. */
  const gateway = (t: Partial<DownstreamTls> = {}, http: Partial<HttpConnectionManager> = {}, version = 'v1', s = secrets()): ProxyConfig => ({
    ...proxyConfig({
      version,
      listeners: [httpListener('0.0.0.0_443', { routeConfigName: 'http.443', ...http }, { direction: 'gateway', tls: { mode: 'SIMPLE', certificate: 'bookinfo-credential', ...t } })],
      routeConfigs: [table('http.443', [vhost('bookinfo', [HOST, `${HOST}:*`], [route('r', {}, routeTo(ECHO))])])],
      clusters: [cluster(ECHO)],
      endpoints: [{ clusterName: ECHO, endpoints: [endpoint(echo.port)] }],
    }),
    secrets: s,
  });
  const noLeaks = (h: Harness) => until(() => h.proxy.connections() === 0, 'proxy connections to close');

  test('SIMPLE: HTTP/1.1 and HTTP/2 share one port, chosen by ALPN; requests are https', async () => {
    const h = await startProxy(gateway());
    try {
      const port = h.port();
      const viaH1 = await h1s(port, pki.ca, { alpn: ['http/1.1'] });
      assert.equal(viaH1.status, 200);
      assert.equal(viaH1.alpn, 'http/1.1');
      assert.equal(viaH1.serverCn, 'server');
      const up = seen(viaH1.body);
      assert.equal(up.headers['x-forwarded-proto'], 'https');
      assert.equal(up.host, HOST);

      const noAlpn = await h1s(port, pki.ca);
      assert.equal(noAlpn.status, 200, 'a client without ALPN speaks HTTP/1.1');
      assert.equal(noAlpn.alpn, false);

      const c = await h2s(port, pki.ca);
      try {
        assert.equal(c.alpn, 'h2');
        const res = await c.request('/reviews/1');
        assert.equal(res.status, 200);
        assert.equal(seen(res.body).path, '/reviews/1');
        assert.equal(seen(res.body).headers['x-forwarded-proto'], 'https');
      } finally {
        await c.close();
      }
      await noLeaks(h);
      assert.ok(h.proxy.stats.get('downstream_rq_2xx') >= 3);
    } finally {
      await h.close();
    }
  });

  test('ALPN offers h2 only with http.http2, and DownstreamTls.alpn when it is given', async () => {
    const offered = async (config: ProxyConfig) => {
      const h = await startProxy(config);
      try {
        const socket = tls.connect({ host: '127.0.0.1', port: h.port(), servername: HOST, ca: pki.ca, ALPNProtocols: ['h2', 'http/1.1'] });
        await once(socket, 'secureConnect');
        const alpn = socket.alpnProtocol;
        socket.destroy();
        await noLeaks(h);
        return alpn;
      } finally {
        await h.close();
      }
    };
    assert.equal(await offered(gateway({}, { http2: false })), 'http/1.1');
    assert.equal(await offered(gateway({ alpn: ['http/1.1'] })), 'http/1.1');
    assert.equal(await offered(gateway({ alpn: ['h2', 'http/1.1'] })), 'h2');
  });

  test('MUTUAL: a client certificate from the validation context CA is required', async () => {
    const h = await startProxy(gateway({ mode: 'MUTUAL', validationContext: 'bookinfo-credential-cacert' }));
    try {
      const port = h.port();
      assert.equal((await h1s(port, pki.ca, { cert: pki.client.cert, key: pki.client.key })).status, 200);
      const c = await h2s(port, pki.ca, { cert: pki.client.cert, key: pki.client.key });
      assert.equal((await c.request()).status, 200);
      await c.close();

      const before = echo.seen.length;
      await assert.rejects(h1s(port, pki.ca, { cert: pki.rogue.cert, key: pki.rogue.key }), 'a certificate from another CA is refused');
      await assert.rejects(h1s(port, pki.ca), 'no certificate is refused');
      assert.equal(echo.seen.length, before, 'nothing reached the upstream');
      assert.ok(h.proxy.stats.get('ssl_connection_error') >= 2);
      await noLeaks(h);
      assert.equal((await h1s(port, pki.ca, { cert: pki.client.cert, key: pki.client.key })).status, 200, 'still serving');
    } finally {
      await h.close();
    }
  });

  test('permissive: plaintext (HTTP/1.1, h2c) and TLS on the same port, each with its own scheme', async () => {
    const h = await startProxy(gateway({ permissive: true }));
    try {
      const port = h.port();
      for (const client of [h1Client(port), h2Client(port)]) {
        try {
          const res = await client.request({ path: '/plain', host: HOST });
          assert.equal(res.status, 200, client.protocol);
          assert.equal(seen(res.body).headers['x-forwarded-proto'], 'http', client.protocol);
        } finally {
          await client.close();
        }
      }
      const secure = await h1s(port, pki.ca, { alpn: ['http/1.1'] });
      assert.equal(secure.status, 200);
      assert.equal(seen(secure.body).headers['x-forwarded-proto'], 'https');
      const c = await h2s(port, pki.ca);
      try {
        const res = await c.request('/secure');
        assert.equal(res.status, 200);
        assert.equal(seen(res.body).headers['x-forwarded-proto'], 'https');
      } finally {
        await c.close();
      }
      // A client that connects and leaves without a byte.
      assert.equal((await raw(port, '', { end: true })).length, 0);
      await noLeaks(h);
    } finally {
      await h.close();
    }
  });

  test('bad handshakes are refused without crashing or leaking sockets', async () => {
    const h = await startProxy(gateway({}, { requestHeadersTimeoutMs: 300 }));
    try {
      const port = h.port();
      // A handshake record with a length no ClientHello has.
      const garbage = await raw(port, Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8]));
      assert.equal(garbage[0], 0x15, 'answered with a TLS alert');
      // Plaintext HTTP on a TLS-only port.
      const plain = (await raw(port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).toString('latin1');
      assert.doesNotMatch(plain, /HTTP\/1\.1 200/);
      // A ClientHello that never finishes: closed once requestHeadersTimeoutMs bounds the handshake.
      const stalled = net.connect(port, '127.0.0.1');
      stalled.on('error', () => {});
      stalled.resume();
      await once(stalled, 'connect');
      stalled.write(Buffer.from([0x16, 0x03, 0x01]));
      await once(stalled, 'close');
      // A client that gives up half-way through the handshake.
      const quitter = tls.connect({ host: '127.0.0.1', port, servername: HOST, ca: pki.ca });
      quitter.on('error', () => {});
      quitter.once('secureConnect', () => quitter.destroy());
      queueMicrotask(() => quitter.destroy());
      await once(quitter, 'close');

      assert.ok(h.proxy.stats.get('ssl_connection_error') >= 3, `ssl_connection_error ${h.proxy.stats.get('ssl_connection_error')}`);
      await noLeaks(h);
      assert.equal((await h1s(port, pki.ca)).status, 200, 'still serving');
      await noLeaks(h);
    } finally {
      await h.close();
    }
  });

  test('a rotated certificate applies to new connections; open ones carry on', async () => {
    const h = await startProxy(gateway());
    try {
      const port = h.port();
      const old = await h2s(port, pki.ca);
      assert.equal(old.serverCn, 'server');
      assert.equal((await old.request()).status, 200);

      h.proxy.apply(gateway({}, {}, 'v2', secrets(pki.rotated)));
      await h.proxy.settled();
      assert.equal(h.port(), port, 'the listener kept its socket');

      assert.equal((await old.request('/after-rotation')).status, 200, 'the open session still serves');
      const fresh = await h1s(port, pki.ca);
      assert.equal(fresh.status, 200);
      assert.equal(fresh.serverCn, 'rotated');
      const freshH2 = await h2s(port, pki.ca);
      assert.equal(freshH2.serverCn, 'rotated');
      await freshH2.close();
      await old.close();

      // TLS can also be turned off and on for the same socket.
      h.proxy.apply({ ...gateway({}, {}, 'v3'), listeners: [{ ...gateway().listeners[0], tls: undefined }] });
      await h.proxy.settled();
      const plain = h1Client(port);
      try {
        const res = await plain.request({ path: '/', host: HOST });
        assert.equal(res.status, 200);
        assert.equal(seen(res.body).headers['x-forwarded-proto'], 'http');
      } finally {
        await plain.close();
      }
      await noLeaks(h);
    } finally {
      await h.close();
    }
  });

  test('a listener naming secrets that were not pushed, or that cannot be used, is rejected with every problem', async () => {
    const h = await startProxy(gateway());
    try {
      const bad = gateway({ mode: 'MUTUAL', validationContext: 'missing-cacert' }, { http2: false }, 'v2');
      bad.listeners[0] = { ...bad.listeners[0], tls: { ...bad.listeners[0].tls!, alpn: ['h2'] } };
      const extra: Listener[] = [
        httpListener('other', { routeConfigName: 'http.443' }, { tls: { mode: 'SIMPLE', certificate: 'nope' } }),
        httpListener('mismatch', { routeConfigName: 'http.443' }, { tls: { mode: 'SIMPLE', certificate: 'mismatch' } }),
        { name: 'tcp', address: { host: '127.0.0.1', port: 0 }, direction: 'gateway', protocol: 'tcp', tcp: { routes: [{ destinations: [{ cluster: ECHO, weight: 1 }] }] }, tls: { mode: 'SIMPLE', certificate: 'tcp-credential' } },
      ];
      bad.listeners.push(...extra);
      bad.secrets = [...secrets(), { name: 'mismatch', certificateChainPem: pki.server.cert, privateKeyPem: pki.rotated.key }];
      assert.throws(() => h.proxy.apply(bad), (err: unknown) => {
        assert.ok(err instanceof ProxyConfigError);
        const all = err.problems.join('\n');
        assert.equal(err.problems.length, 5, all);
        assert.match(all, /listeners\[0\]\.tls\.validationContext: no secret named "missing-cacert"/);
        assert.match(all, /listeners\[0\]\.tls\.alpn: offers h2 but the listener does not serve HTTP\/2/);
        assert.match(all, /listeners\[1\]\.tls\.certificate: no secret named "nope"/);
        assert.match(all, /listeners\[2\]\.tls: secret "mismatch" cannot be used/);
        // TCP listeners terminate TLS too (a sidecar's inbound TCP port): checked the same way.
        assert.match(all, /listeners\[3\]\.tls\.certificate: no secret named "tcp-credential"/);
        return true;
      });
      assert.equal(h.proxy.version, 'v1');
      assert.equal((await h1s(h.port(), pki.ca)).status, 200, 'the last good config still serves');
    } finally {
      await h.close();
    }
  });
});
