/**
 * The proxy as a whole: apply (validation, atomic swap, listener reconciliation), drain on
 * close and on listener removal, the admin port, outbound route tables by destination port,
 * header hygiene, telemetry events, streaming, WebSocket, gRPC trailers and TCP listeners.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { createProxy } from '../../src/proxy/proxy.js';
import { ProxyConfigError } from '../../src/proxy/errors.js';
import type { RequestEvent } from '../../src/proxy/events.js';
import { compileRouteTable, selectVirtualHost } from '../../src/proxy/http/route-table.js';
import { h1Client, h2Client } from './support/client.js';
import { TestClusterManager } from './support/cluster-manager.js';
import { cluster, endpoint, httpListener, meshConfig, proxyConfig, route, routeTo, table, vhost } from './support/config.js';
import { until } from './support/drive.js';
import { startEcho, type EchoReply, type EchoServer } from './support/echo.js';
import { startProxy } from './support/harness.js';

const ECHO = 'outbound|80||echo.default.svc.cluster.local';
const seen = (body: string): EchoReply => JSON.parse(body) as EchoReply;

describe('virtual host selection (Envoy order)', () => {
  const problems = { add: (p: string, m: string) => assert.fail(`${p}: ${m}`) };
  const t = compileRouteTable(table('t', [
    vhost('exact', ['api.example.com', 'api.example.com:8080'], []),
    vhost('short-suffix', ['*.com'], []),
    vhost('long-suffix', ['*.example.com'], []),
    vhost('prefix', ['api.*'], []),
    vhost('any', ['*'], []),
  ]), 't', problems, () => true, () => undefined);
  const pick = (a: string) => selectVirtualHost(t, a)?.name;
  test('exact, then longest *.suffix, then prefix.*, then *; the port counts as sent', () => {
    assert.equal(pick('api.example.com'), 'exact');
    assert.equal(pick('api.example.com:8080'), 'exact');
    assert.equal(pick('www.example.com'), 'long-suffix');
    assert.equal(pick('www.other.com'), 'short-suffix');
    assert.equal(pick('api.internal'), 'prefix');
    assert.equal(pick('api.example.com:9090'), 'prefix');
    assert.equal(pick('reviews'), 'any');
  });
});

describe('proxy lifecycle and features', () => {
  let echo: EchoServer;
  before(async () => { echo = await startEcho('echo'); });
  after(async () => { await echo.close(); });
  const base = (extra: Partial<Parameters<typeof meshConfig>[3]> = {}, version = 'v1'): ProxyConfig => ({
    ...meshConfig([route('r', {}, routeTo(ECHO))], [cluster(ECHO)], [{ clusterName: ECHO, endpoints: [endpoint(echo.port)] }], extra),
    version,
  });

  test('apply rejects a bad config with every problem listed and keeps the last good one', async () => {
    const h = await startProxy(base());
    try {
      const bad = base({}, 'v2');
      bad.routeConfigs[0].virtualHosts[0].routes = [
        route('bad-regex', { path: { regex: '(unclosed' } }, routeTo(ECHO)),
        route('bad-retry', {}, routeTo(ECHO, { retry: { attempts: 1, retryOn: ['sometimes'], backoffBaseMs: 25, avoidPreviousHosts: true } })),
        route('zero', {}, routeTo([{ cluster: ECHO, weight: 0 }])),
      ];
      bad.listeners.push(httpListener('other', { routeConfigName: 'missing' }));
      assert.throws(() => h.proxy.apply(bad), (err: unknown) => {
        assert.ok(err instanceof ProxyConfigError);
        assert.equal(err.code, 'SNW_ERR_PROXY_INVALID_CONFIG');
        assert.equal(err.problems.length, 4, err.problems.join('\n'));
        assert.match(err.message, /invalid RE2 regex/);
        assert.match(err.message, /unknown retry condition "sometimes"/);
        assert.match(err.message, /weights add up to 0/);
        assert.match(err.message, /no route table named "missing"/);
        return true;
      });
      assert.equal(h.proxy.version, 'v1');
      assert.equal(h.proxy.stats.get('config_rejected'), 1);
      const c = h1Client(h.port());
      assert.equal((await c.request({ path: '/' })).status, 200);
      await c.close();
    } finally {
      await h.close();
    }
  });

  test('apply swaps routes atomically; an unchanged listener keeps its socket; a removed one drains', async () => {
    const h = await startProxy(base());
    const port = h.port('outbound');
    const held: http.ServerResponse[] = [];
    try {
      const c = h1Client(port);
      assert.equal((await c.request({ path: '/' })).status, 200);
      const v2 = base({}, 'v2');
      v2.routeConfigs[0].virtualHosts[0].routes = [route('direct', {}, { kind: 'direct', status: 204 })];
      v2.listeners.push(httpListener('extra', { routeConfigName: '80' }));
      h.proxy.apply(v2);
      await h.proxy.settled();
      assert.equal(h.port('outbound'), port, 'same socket');
      assert.equal((await c.request({ path: '/' })).status, 204);
      const extraPort = h.port('extra');
      const c2 = h1Client(extraPort);
      assert.equal((await c2.request({ path: '/' })).status, 204);
      // An in-flight request on the extra listener finishes although the listener goes away.
      const v3 = base({}, 'v3');
      v3.listeners.push(httpListener('extra', { routeConfigName: '80' }));
      h.proxy.apply(v3);
      echo.override = (_req, res) => (held.push(res), true);
      const inflight = c2.request({ path: '/slow' });
      await until(() => held.length === 1, 'request upstream');
      h.proxy.apply(base({}, 'v4'));
      await h.proxy.settled();
      assert.equal(h.proxy.listenerAddresses()['extra'], undefined);
      await assert.rejects(new Promise((resolve, reject) => net.connect(extraPort, '127.0.0.1').on('connect', resolve).on('error', reject)));
      held[0].end('finished');
      const r = await inflight;
      assert.equal(r.status, 200);
      assert.equal(r.headers['connection'], 'close', 'a draining listener closes the connection after the response');
      await c.close();
      await c2.close();
    } finally {
      echo.override = undefined;
      await h.close();
    }
  });

  test('a listener that cannot bind: settled() rejects with a coded error; the others keep serving', async () => {
    const h = await startProxy(base());
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    try {
      const cfg = base({}, 'v2');
      cfg.listeners.push({ ...httpListener('taken', { routeConfigName: '80' }), address: { host: '127.0.0.1', port: (blocker.address() as AddressInfo).port } });
      h.proxy.apply(cfg);
      await assert.rejects(h.proxy.settled(), { code: 'SNW_ERR_PROXY_LISTEN_FAILED' });
      assert.equal(h.proxy.stats.get('listener_bind_failed'), 1);
      const c = h1Client(h.port('outbound'));
      assert.equal((await c.request({ path: '/' })).status, 200);
      await c.close();
    } finally {
      await h.close();
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  test('close({drainMs}) lets an in-flight request finish, then closes', async () => {
    const h = await startProxy(base());
    const held: http.ServerResponse[] = [];
    echo.override = (_req, res) => (held.push(res), true);
    const c = h2Client(h.port());
    try {
      const inflight = c.request({ path: '/slow' });
      await until(() => held.length === 1, 'request upstream');
      const closing = h.proxy.close({ drainMs: 5_000 });
      held[0].end('done');
      assert.equal((await inflight).status, 200);
      await closing;
      assert.equal(h.proxy.connections(), 0);
    } finally {
      echo.override = undefined;
      await c.close();
      await h.cm.close();
    }
  });

  test('admin: /ready, /config_dump, /clusters, /stats', async () => {
    const cm = new TestClusterManager();
    const proxy = createProxy({ clusterManager: cm, adminPort: 0 });
    await proxy.start();
    const admin = (path: string) => fetch(`http://127.0.0.1:${proxy.adminAddress()!.port}${path}`);
    try {
      assert.equal((await admin('/ready')).status, 503);
      proxy.apply(base({}, 'v7'));
      await proxy.settled();
      assert.equal((await admin('/ready')).status, 200);
      const dump = (await (await admin('/config_dump')).json()) as { version: string; config: ProxyConfig };
      assert.equal(dump.version, 'v7');
      assert.equal(dump.config.clusters[0].name, ECHO);
      const clusters = (await (await admin('/clusters')).json()) as { name: string }[];
      assert.equal(clusters[0].name, ECHO);
      const c = h1Client(Object.values(proxy.listenerAddresses())[0].port);
      await c.request({ path: '/nowhere', host: 'unknown-host' });
      await c.close();
      const stats = await (await admin('/stats')).text();
      assert.match(stats, /config_applied: 1/);
      assert.match(stats, /downstream_rq_flag_NR: 1/);
      assert.match(stats, /config_version: v7/);
    } finally {
      await proxy.close({ drainMs: 100 });
      await cm.close();
    }
  });

  test('outbound capture: route table by destination port from an absolute URI or Host; fallback table', async () => {
    const cfg = proxyConfig({
      listeners: [httpListener('virtualOutbound', { routeConfigByPort: true, fallbackRouteConfigName: 'passthrough', acceptAbsoluteUri: true })],
      routeConfigs: [
        table('9080', [vhost('reviews', ['reviews', 'reviews:9080'], [route('reviews', {}, routeTo(ECHO, { rewrite: { pathPrefix: '/9080/' } }))])]),
        table('80', [vhost('echo', ['echo'], [route('echo', {}, routeTo(ECHO, { rewrite: { pathPrefix: '/80/' } }))])]),
        table('passthrough', [vhost('any', ['*'], [route('any', { port: 7000 }, { kind: 'direct', status: 299 })])]),
      ],
      clusters: [cluster(ECHO)],
      endpoints: [{ clusterName: ECHO, endpoints: [endpoint(echo.port)] }],
    });
    const h = await startProxy(cfg);
    try {
      const port = h.port();
      const get = (target: string, host: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, path: target, headers: { host }, agent: false }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          });
          req.on('error', reject);
          req.end();
        });
      const abs = await get('http://reviews:9080/reviews/0', 'ignored');
      assert.equal(seen(abs.body).path, '/9080/reviews/0');
      assert.equal(seen(abs.body).host, 'reviews:9080');
      assert.equal(seen((await get('/x', 'reviews:9080')).body).path, '/9080/x');
      assert.equal(seen((await get('/y', 'echo')).body).path, '/80/y', 'no port = 80');
      assert.equal((await get('/z', 'other:7000')).status, 299, 'fallback table, matched by destination port');
    } finally {
      await h.close();
    }
  });

  test('header hygiene: hop-by-hop and Connection-named headers dropped; internal headers stripped at a gateway only', async () => {
    const gw = base();
    gw.listeners[0] = { ...gw.listeners[0], direction: 'gateway' };
    for (const [cfg, stripped] of [[gw, true], [base(), false]] as const) {
      const h = await startProxy(cfg);
      try {
        const c = h1Client(h.port());
        const r = seen((await c.request({ path: '/', headers: { connection: 'x-secret', 'x-secret': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'x-envoy-force-trace': '1', 'x-sinew-hint': 'a', 'x-forwarded-for': '10.0.0.1' } })).body);
        assert.equal(r.headers['x-secret'], undefined);
        assert.equal(r.headers['keep-alive'], undefined);
        assert.equal(r.headers['te'], 'trailers');
        assert.equal(r.headers['x-envoy-force-trace'], stripped ? undefined : '1');
        assert.equal(r.headers['x-sinew-hint'], stripped ? undefined : 'a');
        assert.equal(r.headers['x-forwarded-for'], stripped ? '127.0.0.1' : '10.0.0.1, 127.0.0.1');
        await c.close();
      } finally {
        await h.close();
      }
    }
  });

  test('x-envoy-upstream-service-time on upstream responses, never on the proxy\'s own replies', async () => {
    const cfg = base();
    cfg.routeConfigs[0].virtualHosts[0].domains = ['echo'];
    const h = await startProxy(cfg);
    try {
      const c = h1Client(h.port());
      const upstream = await c.request({ path: '/', headers: { host: 'echo' } });
      assert.equal(upstream.status, 200);
      assert.match(String(upstream.headers['x-envoy-upstream-service-time']), /^\d+$/);
      const local = await c.request({ path: '/', headers: { host: 'nowhere' } });
      assert.equal(local.status, 404);
      assert.equal(local.headers['x-envoy-upstream-service-time'], undefined);
      await c.close();
    } finally {
      await h.close();
    }
  });

  test('a cluster waiting for TLS secrets answers 503 UH cluster_warming; the rest of the config applies', async () => {
    const SECURE = 'outbound|80||secure.default.svc.cluster.local';
    const cfg = meshConfig(
      [route('secure', { path: { prefix: '/secure' } }, routeTo(SECURE)), route('r', {}, routeTo(ECHO))],
      [cluster(SECURE, { tls: { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA' } }), cluster(ECHO)],
      [{ clusterName: SECURE, endpoints: [endpoint(echo.port)] }, { clusterName: ECHO, endpoints: [endpoint(echo.port)] }],
    );
    // The real cluster manager: the test harness's minimal one knows no TLS.
    const proxy = createProxy({ config: cfg });
    await proxy.start();
    try {
      const c = h1Client(Object.values(proxy.listenerAddresses())[0].port);
      const waiting = await c.request({ path: '/secure', headers: { host: 'echo' } });
      assert.equal(waiting.status, 503);
      assert.equal(waiting.headers['x-sinew-response-flags'], 'UH');
      assert.equal(waiting.headers['x-sinew-response-details'], 'cluster_warming');
      assert.equal((await c.request({ path: '/', headers: { host: 'echo' } })).status, 200, 'the other routes serve');
      await c.close();
    } finally {
      await proxy.close({ drainMs: 0 });
    }
  });

  test('a request event is published on sinew:proxy:request', async () => {
    const events: RequestEvent[] = [];
    const onEvent = (e: unknown) => events.push(e as RequestEvent);
    diagnosticsChannel.subscribe('sinew:proxy:request', onEvent);
    const h = await startProxy(base());
    try {
      const c = h2Client(h.port());
      await c.request({ path: '/evt', headers: { 'x-request-id': 'rid-1' } });
      await c.request({ path: '/evt', host: 'nowhere' });
      await c.close();
      const ok = events.find((e) => e.requestId === 'rid-1')!;
      assert.equal(ok.status, 200);
      assert.equal(ok.route, 'r');
      assert.equal(ok.cluster, ECHO);
      assert.equal(ok.upstreamHost, `127.0.0.1:${echo.port}`);
      assert.equal(ok.protocol, 'HTTP/2');
      assert.equal(ok.flags, '-');
      assert.ok(events.some((e) => e.flags === 'NR' && e.status === 404));
    } finally {
      diagnosticsChannel.unsubscribe('sinew:proxy:request', onEvent);
      await h.close();
    }
  });

  test('large bodies stream through both ways, and the default cluster manager works', async () => {
    const proxy = createProxy({ config: base() });
    await proxy.start();
    const port = Object.values(proxy.listenerAddresses())[0].port;
    const big = Buffer.alloc(3 * 1024 * 1024, 'abcdefgh');
    echo.override = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.concat([Buffer.from(`${req.headers['content-length']}|`), big]));
      return true;
    };
    try {
      for (const c of [h1Client(port), h2Client(port)]) {
        const r = await c.request({ method: 'POST', path: '/upload', body: big, headers: { 'content-length': String(big.length) } });
        assert.equal(r.status, 200);
        assert.equal(r.body.length, big.length + String(big.length).length + 1);
        assert.equal(seen(JSON.stringify(echo.seen.at(-1))).body.length, big.length);
        await c.close();
      }
    } finally {
      echo.override = undefined;
      await proxy.close({ drainMs: 100 });
    }
  });

  for (const proto of ['HTTP/1.1', 'HTTP/2'] as const) {
    test(`backpressure over ${proto}: a client that stops reading stops the upstream writer`, async () => {
      const h = await startProxy(base());
      const chunk = Buffer.alloc(64 * 1024, 'z');
      const total = 64 * 1024 * 1024;
      let written = 0;
      let stalledAt = -1;
      echo.override = (_req, res) => {
        res.writeHead(200, { 'content-length': String(total) });
        const pump = () => {
          while (written < total) {
            written += chunk.length;
            if (!res.write(chunk)) {
              if (stalledAt < 0) stalledAt = written;
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return true;
      };
      let received = 0;
      let resume: () => void = () => {};
      const done = new Promise<void>((resolve, reject) => {
        if (proto === 'HTTP/1.1') {
          const req = http.request({ host: '127.0.0.1', port: h.port(), path: '/big', headers: { host: 'echo' }, agent: false }, (res) => {
            res.pause();
            resume = () => { res.on('data', (d: Buffer) => (received += d.length)); res.resume(); };
            res.on('end', resolve);
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end();
        } else {
          const session = http2.connect(`http://127.0.0.1:${h.port()}`);
          session.on('error', reject);
          const stream = session.request({ ':path': '/big', ':authority': 'echo' });
          stream.pause();
          resume = () => { stream.on('data', (d: Buffer) => (received += d.length)); stream.resume(); };
          stream.on('end', () => { session.close(); resolve(); });
          stream.on('error', reject);
        }
      });
      try {
        await until(() => stalledAt > 0, 'the upstream writer to stall');
        // Let buffers fill; the writer must stay stalled far below the 64 MiB body.
        for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
        assert.ok(written < 24 * 1024 * 1024, `upstream wrote ${written} bytes while the client read nothing`);
        resume();
        await done;
        assert.equal(received, total);
      } finally {
        echo.override = undefined;
        await h.close();
      }
    });
  }

  test('gRPC: trailers pass through to HTTP/2 clients; a proxy error is a gRPC status with HTTP 200', async () => {
    const grpc = http2.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' });
        res.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    });
    await new Promise<void>((resolve) => grpc.listen(0, '127.0.0.1', () => resolve()));
    const GRPC = 'outbound|7070||echo.default.svc.cluster.local';
    const cfg = meshConfig(
      [route('grpc', { path: { prefix: '/echo.' } }, routeTo(GRPC)), route('down', {}, routeTo('outbound|7070|none|echo.default.svc.cluster.local'))],
      [cluster(GRPC, { protocol: 'http2' }), cluster('outbound|7070|none|echo.default.svc.cluster.local')],
      [{ clusterName: GRPC, endpoints: [endpoint((grpc.address() as AddressInfo).port)] }],
    );
    const h = await startProxy(cfg);
    const c = h2Client(h.port());
    try {
      const ok = await c.request({ method: 'POST', path: '/echo.Echo/Call', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: Buffer.alloc(5) });
      assert.equal(ok.status, 200);
      assert.equal(ok.trailers['grpc-status'], '0');
      assert.equal(ok.trailers['grpc-message'], 'ok');
      const uh = await c.request({ method: 'POST', path: '/other.Svc/Call', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: Buffer.alloc(5) });
      assert.equal(uh.status, 200);
      assert.equal(uh.headers['grpc-status'], '14');
      assert.equal(uh.headers['x-sinew-response-flags'], 'UH');
    } finally {
      await c.close();
      await h.close();
      await new Promise<void>((resolve) => grpc.close(() => resolve()));
    }
  });

  test('WebSocket upgrade is routed and spliced to the endpoint', async () => {
    const ws = http.createServer();
    ws.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-path: ${req.url}\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
      socket.on('end', () => socket.end());
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => ws.listen(0, '127.0.0.1', () => resolve()));
    const WS = 'outbound|80|ws|echo.default.svc.cluster.local';
    const h = await startProxy(meshConfig([route('ws', {}, routeTo(WS, { rewrite: { pathPrefix: '/ws/' } }))], [cluster(WS)], [{ clusterName: WS, endpoints: [endpoint((ws.address() as AddressInfo).port)] }]));
    try {
      const socket = net.connect(h.port(), '127.0.0.1');
      await once(socket, 'connect');
      socket.write('GET /chat HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      let got = '';
      socket.on('data', (d: Buffer) => { got += d.toString(); });
      await until(() => got.includes('\r\n\r\n'), '101');
      assert.match(got, /^HTTP\/1\.1 101/);
      assert.match(got, /x-path: \/ws\/chat/);
      socket.write('hello');
      await until(() => got.includes('echo:hello'), 'frame echoed');
      socket.destroy();
      await until(() => h.proxy.connections() === 0, 'no leak');
    } finally {
      await h.close();
      ws.closeAllConnections();
      await new Promise<void>((resolve) => ws.close(() => resolve()));
    }
  });

  test('TCP listener: weighted cluster, bytes both ways, half-close propagates, teardown', async () => {
    const tcpEcho = (word: string) => net.createServer({ allowHalfOpen: true }, (s) => {
      let input = '';
      s.on('data', (d) => (input += d));
      s.on('end', () => s.end(`${word} ${input}`));
      s.on('error', () => {});
    });
    const one = tcpEcho('one');
    const two = tcpEcho('two');
    for (const s of [one, two]) await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
    const V1 = 'outbound|9000|v1|tcp-echo.default.svc.cluster.local';
    const V2 = 'outbound|9000|v2|tcp-echo.default.svc.cluster.local';
    const cfg = proxyConfig({
      listeners: [{ name: 'tcp', address: { host: '127.0.0.1', port: 0 }, direction: 'outbound', protocol: 'tcp', tcp: { routes: [{ destinations: [{ cluster: V1, weight: 0 }, { cluster: V2, weight: 100 }] }] } }],
      clusters: [cluster(V1, { protocol: 'tcp' }), cluster(V2, { protocol: 'tcp' })],
      endpoints: [
        { clusterName: V1, endpoints: [endpoint((one.address() as AddressInfo).port)] },
        { clusterName: V2, endpoints: [endpoint((two.address() as AddressInfo).port)] },
      ],
    });
    const h = await startProxy(cfg);
    try {
      for (let i = 0; i < 3; i++) {
        const s = net.connect({ port: h.port(), host: '127.0.0.1', allowHalfOpen: true });
        let out = '';
        s.on('data', (d) => (out += d));
        await once(s, 'connect');
        s.end(`hello ${i}`);
        await once(s, 'end');
        assert.equal(out, `two hello ${i}`);
        s.destroy();
      }
      await until(() => h.proxy.connections() === 0, 'no leak');
    } finally {
      await h.close();
      for (const s of [one, two]) await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });
});
