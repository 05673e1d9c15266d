/**
 * Transport sockets (src/proxy/transport): a listener whose filter chains are chosen by SNI,
 * each with its own certificate, checked with openssl s_client and curl; Istio mutual TLS
 * between two proxies, refused for a wrong SPIFFE ID, an untrusted certificate and a revoked
 * one, either way; a TLS cluster served by sinew's own HTTP/1.1 client. Certificates are made
 * with openssl at test time; every proxy and server listens on port 0.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { once } from 'node:events';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Cluster, FilterChain, ProxyConfig, Secret } from '../../src/api/proxy-config.js';
import type { RequestEvent } from '../../src/proxy/events.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { MESH_CONNECTION_IDLE_TIMEOUT_MS } from '../../src/proxy/transport/transport-socket.js';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import type { ClusterManager } from '../../src/proxy/upstream/types.js';
import { h1Client } from './support/client.js';
import { startEcho, type EchoServer } from './support/echo.js';

const PRODUCTPAGE = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
const REVIEWS = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const RATINGS = 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings';

interface Pem {
  cert: string;
  key: string;
  serial: string;
}

interface Pki {
  dir: string;
  root: string;
  a: Pem;
  b: Pem;
  productpage: Pem;
  reviews: Pem;
  /** A reviews identity signed by a root nobody trusts. */
  rogueReviews: Pem;
}

function makePki(dir: string): Pki {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'root.key', '-out', 'root.pem', '-days', '1', '-subj', '/O=cluster.local/CN=mesh-root', '-addext', 'basicConstraints=critical,CA:true');
  run('req', '-x509', ...ec, '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '1', '-subj', '/CN=rogue-root', '-addext', 'basicConstraints=critical,CA:true');
  const leaf = (name: string, ca: string, san: string): Pem => {
    writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    run('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
    const cert = readFileSync(path.join(dir, `${name}.pem`), 'utf8');
    return { cert, key: readFileSync(path.join(dir, `${name}.key`), 'utf8'), serial: new X509Certificate(cert).serialNumber.toLowerCase().replace(/^0+/, '') };
  };
  return {
    dir,
    root: readFileSync(path.join(dir, 'root.pem'), 'utf8'),
    a: leaf('a', 'root', 'DNS:a.example.com'),
    b: leaf('b', 'root', 'DNS:b.example.com,DNS:*.b.example.com'),
    productpage: leaf('productpage', 'root', `URI:${PRODUCTPAGE}`),
    reviews: leaf('reviews', 'root', `URI:${REVIEWS}`),
    rogueReviews: leaf('rogue-reviews', 'rogue', `URI:${REVIEWS}`),
  };
}

/** Runs a client program without blocking this process (the proxy under test lives in it). */
function client(cmd: string, args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(input);
  });
}

const node = { id: 'router~gw.default', mode: 'router' as const, workload: 'gw', namespace: 'default', labels: {} };
const direct = (body: string) => [{ name: 'all', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'r', match: {}, action: { kind: 'direct' as const, status: 200, body } }] }] }];

describe('transport sockets', () => {
  let pki: Pki;
  let app: EchoServer;
  const proxies: Proxy[] = [];
  const managers: ClusterManager[] = [];
  before(async () => {
    pki = makePki(mkdtempSync(path.join(os.tmpdir(), 'sinew-transport-')));
    app = await startEcho('reviews-app');
  });
  after(async () => {
    for (const p of proxies) await p.close({ drainMs: 100 });
    for (const m of managers) await m.close();
    await app.close();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  async function start(config: ProxyConfig, clusterManager?: ClusterManager): Promise<Proxy> {
    const proxy = createProxy({ config, telemetry: false, clusterManager });
    proxies.push(proxy);
    await proxy.start();
    return proxy;
  }

  test('a listener with two filter chains serves the certificate of the chain the SNI picks (openssl s_client, curl)', async () => {
    const chains: FilterChain[] = [
      { name: 'a', match: { serverNames: ['a.example.com'] }, tls: { mode: 'SIMPLE', certificate: 'cert-a' } },
      { name: 'b', match: { serverNames: ['b.example.com', '*.b.example.com'] }, tls: { mode: 'SIMPLE', certificate: 'cert-b' } },
    ];
    const secrets: Secret[] = [
      { name: 'cert-a', certificateChainPem: pki.a.cert, privateKeyPem: pki.a.key },
      { name: 'cert-b', certificateChainPem: pki.b.cert, privateKeyPem: pki.b.key },
    ];
    const proxy = await start({
      version: 'v1', node, clusters: [], endpoints: [], secrets, routeConfigs: direct('served'),
      listeners: [{ name: 'https', address: { host: '127.0.0.1', port: 0 }, direction: 'gateway', protocol: 'http', http: { routeConfigName: 'all' }, filterChains: chains }],
    });
    const port = proxy.listenerAddresses().https.port;
    const presented = async (sni: string) => {
      const r = await client('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', sni, '-CAfile', path.join(pki.dir, 'root.pem'), '-verify_return_error'], 'Q\n');
      return { code: r.code, subject: /subject=.*CN\s*=\s*([\w-]+)/.exec(r.stdout)?.[1], verified: /Verify return code: 0 \(ok\)/.test(r.stdout) };
    };
    assert.deepEqual(await presented('a.example.com'), { code: 0, subject: 'a', verified: true });
    assert.deepEqual(await presented('b.example.com'), { code: 0, subject: 'b', verified: true });
    assert.deepEqual(await presented('x.b.example.com'), { code: 0, subject: 'b', verified: true }, 'the wildcard chain');
    // No chain matches: Envoy closes the connection.
    const none = await presented('c.example.com');
    assert.notEqual(none.code, 0);
    assert.equal(none.subject, undefined);
    assert.ok(proxy.stats.get('listener_no_filter_chain_match') >= 1);
    for (const host of ['a.example.com', 'b.example.com']) {
      const r = await client('curl', ['-sS', '--cacert', path.join(pki.dir, 'root.pem'), '--resolve', `${host}:${port}:127.0.0.1`, '-w', '\n%{http_code} %{ssl_verify_result}', `https://${host}:${port}/`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'served\n\n200 0', `curl https://${host}`);
    }
  });

  test('an HTTP/2 cluster over TLS connects through the same transport socket (undici\'s connect hook), the SANs checked', async () => {
    const upstream = http2.createSecureServer({ cert: pki.reviews.cert, key: pki.reviews.key, allowHTTP1: false }, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`h2 ${req.httpVersion}`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    const sessions = new Set<http2.ServerHttp2Session>();
    upstream.on('session', (session) => { sessions.add(session); session.on('close', () => sessions.delete(session)); });
    const port = (upstream.address() as { port: number }).port;
    const manager = createClusterManager();
    managers.push(manager);
    const NAME = 'outbound|9080||reviews-h2';
    const config = (sans: string[], version: string): ProxyConfig => ({
      version, node, secrets: [{ name: 'ROOTCA', trustedCaPem: pki.root }],
      listeners: [{ name: 'out', address: { host: '127.0.0.1', port: 0 }, direction: 'outbound', protocol: 'http', http: { routeConfigName: 'out' } }],
      routeConfigs: [{ name: 'out', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'r', match: {}, action: { kind: 'route', destinations: [{ cluster: NAME, weight: 1 }] } }] }] }],
      clusters: [{ name: NAME, kind: 'eds', protocol: 'http2', connectTimeoutMs: 2000, lb: { policy: 'ROUND_ROBIN' }, tls: { mode: 'SIMPLE', validationContext: 'ROOTCA', subjectAltNames: sans } }],
      endpoints: [{ clusterName: NAME, endpoints: [{ address: { host: '127.0.0.1', port }, labels: {}, health: 'HEALTHY' }] }],
    });
    const proxy = await start(config([REVIEWS], 'v1'), manager);
    const c = h1Client(proxy.listenerAddresses().out.port);
    const events: RequestEvent[] = [];
    const onEvent = (e: unknown) => events.push(e as RequestEvent);
    diagnosticsChannel.subscribe('sinew:proxy:request', onEvent);
    try {
      const ok = await c.request({ path: '/', host: 'reviews' });
      assert.equal(ok.status, 200);
      assert.equal(ok.body, 'h2 2.0');
      assert.equal(manager.stats().find((x) => x.name === NAME)?.upstreamClient, 'undici');
      // undici's pools expose no connection: the pool hands on what its TLS connection
      // established, so the source side knows the callee's SPIFFE ID (%UPSTREAM_PEER_URI_SAN%,
      // destination_principal) over HTTP/2 as over HTTP/1.1 (regression: h2-upstream-principals).
      const second = await c.request({ path: '/again', host: 'reviews' });
      assert.equal(second.status, 200);
      const served = events.filter((e) => e.cluster === NAME);
      assert.equal(served.length, 2);
      assert.ok(served.every((e) => e.upstreamPeerUriSan === REVIEWS), JSON.stringify(served.map((e) => e.upstreamPeerUriSan)));
      proxy.apply(config([RATINGS], 'v2'));
      const refused = await c.request({ path: '/', host: 'reviews' });
      assert.equal(refused.status, 503);
    } finally {
      diagnosticsChannel.unsubscribe('sinew:proxy:request', onEvent);
      await c.close();
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    }
  });

  describe('Istio mutual TLS between two proxies', () => {
    const events: RequestEvent[] = [];
    const onEvent = (e: unknown) => events.push(e as RequestEvent);
    before(() => diagnosticsChannel.subscribe('sinew:proxy:request', onEvent));
    after(() => diagnosticsChannel.unsubscribe('sinew:proxy:request', onEvent));

    /** The server side: reviews' sidecar, inbound, accepting only Istio mutual TLS. */
    const inbound = (version: string, own: Pem, revocations?: Secret['revocations']): ProxyConfig => ({
      version,
      node: { id: 'sidecar~reviews-v1-0.default', mode: 'sidecar', workload: 'reviews-v1', namespace: 'default', labels: {} },
      listeners: [{
        name: 'virtualInbound', address: { host: '127.0.0.1', port: 0 }, direction: 'inbound', protocol: 'http', http: { routeConfigName: 'inbound' },
        filterChains: [{ name: 'mtls', match: { transportProtocol: 'tls', applicationProtocols: ['istio-peer-exchange', 'istio'] }, tls: { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA' } }],
      }],
      routeConfigs: [{ name: 'inbound', virtualHosts: [{ name: 'inbound', domains: ['*'], routes: [{ name: 'inbound|9080', match: {}, action: { kind: 'route', destinations: [{ cluster: 'inbound|9080||', weight: 1 }] } }] }] }],
      clusters: [{ name: 'inbound|9080||', kind: 'eds', protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: 'ROUND_ROBIN' } }],
      endpoints: [{ clusterName: 'inbound|9080||', endpoints: [{ address: { host: '127.0.0.1', port: app.port }, labels: {}, health: 'HEALTHY' }] }],
      secrets: [{ name: 'default', certificateChainPem: own.cert, privateKeyPem: own.key }, { name: 'ROOTCA', trustedCaPem: pki.root, ...(revocations ? { revocations } : {}) }],
    });
    const REVIEWS_CLUSTER = 'outbound|9080||reviews.default.svc.cluster.local';
    /** The client side: productpage's sidecar, outbound, calling reviews with ISTIO_MUTUAL. */
    const outbound = (version: string, serverPort: number, opts: { sans?: string[]; revocations?: Secret['revocations'] } = {}): ProxyConfig => {
      const cluster: Cluster = {
        name: REVIEWS_CLUSTER, kind: 'eds', protocol: 'http1', connectTimeoutMs: 2000, lb: { policy: 'ROUND_ROBIN' },
        tls: { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA', subjectAltNames: opts.sans ?? [REVIEWS] },
      };
      return {
        version,
        node: { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: {} },
        listeners: [{ name: 'virtualOutbound', address: { host: '127.0.0.1', port: 0 }, direction: 'outbound', protocol: 'http', http: { routeConfigName: 'out' } }],
        routeConfigs: [{ name: 'out', virtualHosts: [{ name: 'reviews', domains: ['*'], routes: [{ name: 'default', match: {}, action: { kind: 'route', destinations: [{ cluster: REVIEWS_CLUSTER, weight: 1 }] } }] }] }],
        clusters: [cluster],
        endpoints: [{ clusterName: REVIEWS_CLUSTER, endpoints: [{ address: { host: '127.0.0.1', port: serverPort }, labels: {}, health: 'HEALTHY' }] }],
        secrets: [{ name: 'default', certificateChainPem: pki.productpage.cert, privateKeyPem: pki.productpage.key }, { name: 'ROOTCA', trustedCaPem: pki.root, ...(opts.revocations ? { revocations: opts.revocations } : {}) }],
      };
    };

    test('the call goes through, over TLS, on sinew\'s HTTP/1.1 client, and the server side knows the caller by its SPIFFE ID', async () => {
      const server = await start(inbound('s1', pki.reviews));
      const manager = createClusterManager();
      managers.push(manager);
      const caller = await start(outbound('c1', server.listenerAddresses().virtualInbound.port), manager);
      const c = h1Client(caller.listenerAddresses().virtualOutbound.port);
      try {
        const before = app.seen.length;
        const res = await c.request({ path: '/reviews/0', host: 'reviews:9080' });
        assert.equal(res.status, 200, res.body);
        assert.equal(app.seen.length, before + 1);
        const stats = manager.stats().find((s) => s.name === REVIEWS_CLUSTER)!;
        assert.equal(stats.transport, 'tls');
        assert.equal(stats.upstreamClient, 'sinew-http1', 'a TLS cluster keeps the fast HTTP/1.1 client');
        const seen = events.filter((e) => e.listener === 'virtualInbound' && e.path === '/reviews/0').at(-1);
        assert.equal(seen?.mtls, true);
        assert.equal(seen?.downstreamPeerUriSan, PRODUCTPAGE);
      } finally {
        await c.close();
      }
    });

    test('a caller that proved a mesh identity is told to keep its connection for Envoy\'s idle timeout, not node\'s 5 s (regression: a handshake per burst)', async () => {
      const server = await start(inbound('s1', pki.reviews));
      const socket = tls.connect({
        host: '127.0.0.1',
        port: server.listenerAddresses().virtualInbound.port,
        cert: pki.productpage.cert,
        key: pki.productpage.key,
        ca: pki.root,
        ALPNProtocols: ['istio-peer-exchange', 'istio-http/1.1'],
        checkServerIdentity: () => undefined,
      });
      try {
        await once(socket, 'secureConnect');
        socket.write('GET /reviews/3 HTTP/1.1\r\nhost: reviews:9080\r\n\r\n');
        let head = '';
        for await (const chunk of socket) {
          head += String(chunk);
          if (head.includes('\r\n\r\n')) break;
        }
        assert.match(head, /^HTTP\/1\.1 200/);
        assert.match(head, new RegExp(`\r\nkeep-alive: timeout=${MESH_CONNECTION_IDLE_TIMEOUT_MS / 1000}\r\n`, 'i'));
      } finally {
        socket.destroy();
      }
    });

    test('refused: a wrong SPIFFE ID, an untrusted certificate, a revoked certificate (either side)', async () => {
      const server = await start(inbound('s1', pki.reviews));
      const serverPort = server.listenerAddresses().virtualInbound.port;
      const caller = await start(outbound('c1', serverPort, { sans: [RATINGS] }));
      const c = h1Client(caller.listenerAddresses().virtualOutbound.port);
      const call = async () => {
        const before = app.seen.length;
        const res = await c.request({ path: '/reviews/1', host: 'reviews:9080' });
        assert.equal(app.seen.length, before, 'the app must not be reached');
        return res;
      };
      try {
        // The upstream is reviews, but the caller expects ratings.
        let res = await call();
        assert.equal(res.status, 503);
        assert.match(String(res.headers['x-sinew-response-flags']), /UF/);
        const failed = events.filter((e) => e.listener === 'virtualOutbound' && e.path === '/reviews/1').at(-1);
        assert.match(String(failed?.upstreamTransportFailureReason), /SAN.*match none of \[spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-ratings\]/);

        // The server presents a reviews certificate from a root the caller does not trust.
        server.apply(inbound('s2', pki.rogueReviews));
        caller.apply(outbound('c2', serverPort));
        res = await call();
        assert.equal(res.status, 503);
        assert.match(String(res.headers['x-sinew-response-flags']), /UF/);

        // The server's certificate is revoked in the caller's trust bundle.
        server.apply(inbound('s3', pki.reviews));
        const revokedServer = { version: 1, serials: [{ serial: pki.reviews.serial, expiresAt: Date.now() + 86_400_000 }], identities: [] };
        caller.apply(outbound('c3', serverPort, { revocations: revokedServer }));
        res = await call();
        assert.equal(res.status, 503);

        // The caller's identity is revoked on the server side: the handshake is refused there.
        const refusedBefore = server.stats.get('ssl_connection_error');
        const revokedCaller = { version: 1, serials: [], identities: [{ identity: PRODUCTPAGE, issuedBefore: Date.now() + 60_000, expiresAt: Date.now() + 86_400_000 }] };
        server.apply(inbound('s4', pki.reviews, revokedCaller));
        caller.apply(outbound('c4', serverPort));
        res = await call();
        assert.equal(res.status, 503);
        assert.ok(server.stats.get('ssl_connection_error') > refusedBefore);

        // And with nothing wrong, the same two proxies talk again.
        server.apply(inbound('s5', pki.reviews));
        caller.apply(outbound('c5', serverPort));
        const ok = await c.request({ path: '/reviews/2', host: 'reviews:9080' });
        assert.equal(ok.status, 200);
      } finally {
        await c.close();
      }
    });
  });
});
