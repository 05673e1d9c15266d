/**
 * What an app can send its sidecar's outbound listener besides plain HTTP/1.1 to a mesh
 * service, against one proxy with the real upstream layer: a host outside the registry (pass
 * through under ALLOW_ANY, 502 under REGISTRY_ONLY), CONNECT tunnels, and gRPC over HTTP/2
 * (trailers-only answers, deadlines, long streams to a slow client). test/mesh/protocols.test.ts
 * runs the same paths end to end through `sinew up` with curl and @grpc/grpc-js.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { HTTP_FILTERS, type Cluster, type HttpConnectionManager, type ProxyConfig } from '../../src/api/proxy-config.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import { formatGrpcTimeout, grpcRequestTimeout, parseGrpcTimeout } from '../../src/proxy/http/grpc-timeout.js';
import { originalDestination, passthroughDestination } from '../../src/proxy/upstream/passthrough.js';
import { connectTarget } from '../../src/proxy/http/connect-tunnel.js';
import { cluster, endpoint, httpListener, proxyConfig, route, routeTo, table, vhost } from './support/config.js';
import { h1Client, h2Client, protocols } from './support/client.js';
import { deadPort, startEcho, type EchoServer } from './support/echo.js';

const ECHO = 'outbound|80||echo.default.svc.cluster.local';
const TCP = 'outbound|9000||tcp-echo.default.svc.cluster.local';
const DEAD_TCP = 'outbound|9001||dead.default.svc.cluster.local';
const GRPC = 'outbound|50051||grpc.default.svc.cluster.local';
const PASSTHROUGH: Cluster = { name: 'PassthroughCluster', kind: 'originalDst', protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: 'PASSTHROUGH' } };
/**
 * 16 KiB chunks of the big response: more than the client's stream window and the proxy's
 * write buffer together (so the proxy pauses), and a tail that fits the proxy's own stream
 * window (so the trailers arrive while it is paused).
 */
const BIG_CHUNKS = 8;
const BLACKHOLE: Cluster = { name: 'BlackHoleCluster', kind: 'blackhole', protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: 'ROUND_ROBIN' } };

// === unit: the pure pieces ===

describe('outbound protocol helpers', () => {
  test('grpc-timeout: parsed in every unit, malformed ignored, written back in the shortest exact unit', () => {
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('2M'), 120_000);
    assert.equal(parseGrpcTimeout('30S'), 30_000);
    assert.equal(parseGrpcTimeout('250m'), 250);
    assert.equal(parseGrpcTimeout('1500u'), 1);
    assert.equal(parseGrpcTimeout('10n'), 1, 'a positive deadline under a millisecond is 1 ms, not none');
    for (const bad of ['', '5', 'S', '123456789S', '1.5S', '-1S', '10s']) assert.equal(parseGrpcTimeout(bad), undefined, bad);
    assert.equal(formatGrpcTimeout(2000), '2000m');
    assert.equal(formatGrpcTimeout(1e9), '1000000S');
  });

  test('grpc-timeout: a route timeout caps the client\'s deadline, which stands alone without one (Istio max_grpc_timeout)', () => {
    const h = (v?: string): Record<string, string> => (v === undefined ? {} : { 'grpc-timeout': v });
    let headers: Record<string, string> = h('30S');
    assert.equal(grpcRequestTimeout(headers, 2000, undefined), 2000);
    assert.equal(headers['grpc-timeout'], '2000m', 'the upstream is told the deadline it has');
    headers = h('500m');
    assert.equal(grpcRequestTimeout(headers, 2000, undefined), 500);
    headers = h('500m');
    assert.equal(grpcRequestTimeout(headers, 0, undefined), 500);
    headers = h();
    assert.equal(grpcRequestTimeout(headers, 0, undefined), 0);
    assert.equal(headers['grpc-timeout'], undefined, 'no deadline is invented');
    headers = h('10S');
    assert.equal(grpcRequestTimeout(headers, 0, 300), 10_000);
    assert.equal(headers['grpc-timeout'], '300m', 'a shorter per-try timeout is what one try has');
  });

  test('original destination: host and port from the authority, the scheme\'s port without one', () => {
    assert.deepEqual(originalDestination('example.com:8080', 80), { host: 'example.com', port: 8080 });
    assert.deepEqual(originalDestination('example.com', 443), { host: 'example.com', port: 443 });
    assert.deepEqual(originalDestination('[::1]:9000', 80), { host: '::1', port: 9000 });
    for (const bad of ['', ':80', 'a:0', 'a:70000', 'a:x', 'a b:80', 'user@host:80', '[::1']) assert.equal(originalDestination(bad, 80), undefined, bad);
    const self = { host: '127.0.0.1', port: 15001 };
    assert.equal(passthroughDestination('localhost:15001', 'http', self), 'passthrough_to_self');
    assert.equal(passthroughDestination('127.0.0.2:15001', 'http', self), 'passthrough_to_self');
    assert.deepEqual(passthroughDestination('127.0.0.1:15002', 'http', self), { host: '127.0.0.1', port: 15002 });
  });

  test('CONNECT targets are host:port (RFC 9110 §9.3.6)', () => {
    assert.deepEqual(connectTarget('tcp-echo:9000'), { authority: 'tcp-echo:9000', host: 'tcp-echo', port: 9000 });
    assert.deepEqual(connectTarget('[::1]:443'), { authority: '[::1]:443', host: '[::1]', port: 443 });
    for (const bad of [undefined, '', 'tcp-echo', '/path', 'http://a:80', 'a:0', 'a:99999', 'a:80/x']) assert.equal(connectTarget(bad), undefined, String(bad));
  });
});

// === one proxy ===

interface Started {
  proxy: Proxy;
  port: number;
  close(): Promise<void>;
}

async function start(config: ProxyConfig): Promise<Started> {
  const cm = createClusterManager({});
  const proxy = createProxy({ config, clusterManager: cm, telemetry: false });
  await proxy.start();
  const port = proxy.listenerAddresses()['virtualOutbound'].port;
  return {
    proxy,
    port,
    close: async () => {
      await proxy.close({ drainMs: 100 });
      await cm.close();
    },
  };
}

/** A sidecar's capture listener with tables by port, ending in the ALLOW_ANY or REGISTRY_ONLY fallback. */
function outboundConfig(mode: 'ALLOW_ANY' | 'REGISTRY_ONLY', ports: { echo: number; tcp: number; grpc: number; dead: number }, http: Partial<HttpConnectionManager> = {}): ProxyConfig {
  const fallback = mode === 'ALLOW_ANY' ? 'allow_any' : 'block_all';
  const fallbackCluster = mode === 'ALLOW_ANY' ? PASSTHROUGH.name : BLACKHOLE.name;
  const fallbackHost = vhost(fallback, ['*'], [route(fallback, {}, routeTo(fallbackCluster))]);
  return proxyConfig({
    listeners: [httpListener('virtualOutbound', { routeConfigByPort: true, fallbackRouteConfigName: fallback, acceptAbsoluteUri: true, ...http })],
    routeConfigs: [
      table('80', [vhost('echo', ['echo', 'echo:80'], [route('echo', { path: { prefix: '/' } }, routeTo(ECHO))]), fallbackHost]),
      table('9000', [vhost('tcp-echo', ['tcp-echo', 'tcp-echo:9000'], [route('default', {}, routeTo(TCP))]), fallbackHost]),
      table('9001', [vhost('dead', ['dead:9001'], [route('default', {}, routeTo(DEAD_TCP))]), fallbackHost]),
      table('50051', [
        vhost('grpc', ['grpc:50051'], [
          route('abort', { path: { exact: '/pkg.Svc/Abort' } }, routeTo(GRPC), { perFilterConfig: { [HTTP_FILTERS.fault]: { abort: { grpcStatus: 14, percentage: 100 } } } }),
          route('capped', { path: { exact: '/pkg.Svc/Capped' } }, routeTo(GRPC, { timeoutMs: 2000 })),
          route('rest', { path: { prefix: '/' } }, routeTo(GRPC)),
        ]),
        fallbackHost,
      ]),
      table(fallback, [fallbackHost]),
    ],
    clusters: [cluster(ECHO), cluster(TCP, { protocol: 'tcp' }), cluster(DEAD_TCP, { protocol: 'tcp' }), cluster(GRPC, { protocol: 'http2' }), PASSTHROUGH, BLACKHOLE],
    endpoints: [
      { clusterName: ECHO, endpoints: [endpoint(ports.echo)] },
      { clusterName: TCP, endpoints: [endpoint(ports.tcp)] },
      { clusterName: DEAD_TCP, endpoints: [endpoint(ports.dead)] },
      { clusterName: GRPC, endpoints: [endpoint(ports.grpc)] },
    ],
  });
}

/** A TCP echo server: every line back, prefixed with "echo ". */
async function startTcpEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.on('data', (d) => s.write(`echo ${d.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

/**
 * An HTTP/2 upstream standing in for a gRPC server: `/pkg.Svc/Unavailable` answers trailers-only
 * with grpc-status 14; `/pkg.Svc/Big` sends BIG_CHUNKS x 16 KiB then trailers; others echo the grpc-timeout
 * they were given, in a response header and then an OK status in trailers.
 */
async function startGrpcStandIn(): Promise<{ port: number; close(): Promise<void> }> {
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer();
  server.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    stream.resume();
    const path = headers[':path'];
    if (path === '/pkg.Svc/Unavailable') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'try again' }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-seen-grpc-timeout': String(headers['grpc-timeout'] ?? '') }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    if (path === '/pkg.Svc/Big') {
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      for (let i = 0; i < BIG_CHUNKS; i++) stream.write(chunk);
    }
    stream.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of sessions) s.destroy(); server.close(() => r()); }),
  };
}

/** Sends a CONNECT and returns the status line's code, with the socket (left open on 200). */
function connectVia(port: number, target: string): Promise<{ status: number; head: string; socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buffered = Buffer.alloc(0);
    socket.on('error', reject);
    socket.once('connect', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    const onData = (d: Buffer) => {
      buffered = Buffer.concat([buffered, d]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.removeListener('data', onData);
      const head = buffered.subarray(0, end).toString();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, socket, rest: buffered.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`the proxy closed the connection without answering CONNECT ${target}`)));
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to CONNECT ${target}`)));
  });
}

/** Reads from `socket` until `expected` has arrived (or fails after 10 s). */
function readUntil(socket: net.Socket, expected: string, already = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = already;
    if (got.includes(expected)) return resolve(got);
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes(expected)) {
        socket.removeListener('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before ${JSON.stringify(expected)}; got ${JSON.stringify(got)}`)));
  });
}

describe('the outbound listener: pass-through, CONNECT, gRPC', () => {
  let echo: EchoServer;
  let tcp: Awaited<ReturnType<typeof startTcpEcho>>;
  let grpc: Awaited<ReturnType<typeof startGrpcStandIn>>;
  let allowAny: Started;
  let registryOnly: Started;
  let ports: { echo: number; tcp: number; grpc: number; dead: number };

  before(async () => {
    echo = await startEcho('outside');
    tcp = await startTcpEcho();
    grpc = await startGrpcStandIn();
    ports = { echo: echo.port, tcp: tcp.port, grpc: grpc.port, dead: await deadPort() };
    allowAny = await start(outboundConfig('ALLOW_ANY', ports));
    registryOnly = await start(outboundConfig('REGISTRY_ONLY', ports));
  });

  after(async () => {
    await allowAny?.close();
    await registryOnly?.close();
    await echo?.close();
    await tcp?.close();
    await grpc?.close();
  });

  for (const { name, client } of protocols) {
    test(`regression (pass-through answered 503 UH), ${name}: a host outside the registry passes through under ALLOW_ANY`, async () => {
      const c = client(allowAny.port);
      try {
        const res = await c.request({ host: `127.0.0.1:${echo.port}`, path: '/outside?x=1' });
        assert.equal(res.status, 200, `${res.status} ${String(res.headers['x-sinew-response-details'])}`);
        const seen = JSON.parse(res.body) as { path: string; host: string };
        assert.deepEqual({ path: seen.path, host: seen.host }, { path: '/outside?x=1', host: `127.0.0.1:${echo.port}` });
      } finally {
        await c.close();
      }
    });

    test(`regression (REGISTRY_ONLY answered 503 UH), ${name}: a host outside the registry gets 502, labelled`, async () => {
      const c = client(registryOnly.port);
      try {
        const res = await c.request({ host: `127.0.0.1:${echo.port}` });
        assert.equal(res.status, 502);
        assert.equal(res.headers['x-sinew-response-details'], 'outbound_traffic_policy_registry_only');
        const mesh = await c.request({ host: 'echo' });
        assert.equal(mesh.status, 200, 'registry hosts are still served');
      } finally {
        await c.close();
      }
    });
  }

  test('a pass-through back to the listener itself is refused (508), not looped', async () => {
    const c = h1Client(allowAny.port);
    try {
      const res = await c.request({ host: `127.0.0.1:${allowAny.port}` });
      assert.equal(res.status, 508);
      assert.equal(res.headers['x-sinew-response-details'], 'passthrough_to_self');
    } finally {
      await c.close();
    }
  });

  test('regression (CONNECT closed the socket): a tunnel to a TCP service is spliced to its endpoint', async () => {
    const { status, socket } = await connectVia(allowAny.port, 'tcp-echo:9000');
    try {
      assert.equal(status, 200);
      socket.write('hello\n');
      assert.equal(await readUntil(socket, 'echo hello\n'), 'echo hello\n');
    } finally {
      socket.destroy();
    }
  });

  test('CONNECT to an HTTP service: the tunnel is terminated and each request in it routed', async () => {
    const { status, socket, rest } = await connectVia(allowAny.port, 'echo:80');
    try {
      assert.equal(status, 200);
      socket.write('GET /inside HTTP/1.1\r\nHost: echo\r\n\r\n');
      const reply = await readUntil(socket, '"path":"/inside"', rest.toString());
      assert.match(reply, /^HTTP\/1\.1 200/);
      assert.match(reply, /x-echo-name: outside/i);
    } finally {
      socket.destroy();
    }
  });

  test('CONNECT to a host outside the registry: passed through under ALLOW_ANY, 502 under REGISTRY_ONLY', async () => {
    const passed = await connectVia(allowAny.port, `127.0.0.1:${tcp.port}`);
    try {
      assert.equal(passed.status, 200);
      passed.socket.write('out\n');
      await readUntil(passed.socket, 'echo out\n');
    } finally {
      passed.socket.destroy();
    }
    const blocked = await connectVia(registryOnly.port, `127.0.0.1:${tcp.port}`);
    blocked.socket.destroy();
    assert.equal(blocked.status, 502);
    assert.match(blocked.head, /x-sinew-response-details: outbound_traffic_policy_registry_only/);
  });

  test('CONNECT failures are labelled answers: a bad target 400, a dead endpoint 503 UF', async () => {
    const bad = await connectVia(allowAny.port, 'no-port');
    bad.socket.destroy();
    assert.equal(bad.status, 400);
    const dead = await connectVia(allowAny.port, 'dead:9001');
    dead.socket.destroy();
    assert.equal(dead.status, 503);
    assert.match(dead.head, /x-sinew-response-flags: UF/);
  });

  test('CONNECT on a listener that is not the outbound capture is refused with 403', async () => {
    const config = outboundConfig('ALLOW_ANY', ports);
    config.listeners[0] = { ...config.listeners[0], direction: 'inbound' };
    const s = await start(config);
    try {
      const res = await connectVia(s.port, 'tcp-echo:9000');
      res.socket.destroy();
      assert.equal(res.status, 403);
      assert.match(res.head, /x-sinew-response-details: connect_not_allowed/);
    } finally {
      await s.close();
    }
  });

  /** One HTTP/2 gRPC-shaped request: the response head (with its flags) and trailers. */
  function grpcCall(port: number, path: string, extra: Record<string, string> = {}, readDelayMs = 0): Promise<{ headers: http2.IncomingHttpHeaders; endStreamOnHeaders: boolean; trailers: http2.IncomingHttpHeaders; bytes: number }> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', reject);
      const req = session.request({ ':method': 'POST', ':path': path, ':authority': 'grpc:50051', 'content-type': 'application/grpc', te: 'trailers', ...extra });
      let headers: http2.IncomingHttpHeaders = {};
      let endStreamOnHeaders = false;
      let trailers: http2.IncomingHttpHeaders = {};
      let bytes = 0;
      req.on('response', (h, flags) => {
        headers = h;
        endStreamOnHeaders = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
        if (readDelayMs > 0) {
          // A slow client: nothing read for a while, so the proxy has to hold the response back.
          req.pause();
          setTimeout(() => req.resume(), readDelayMs);
        }
      });
      req.on('trailers', (t) => (trailers = t));
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        session.close();
        resolve({ headers, endStreamOnHeaders, trailers, bytes });
      });
      req.on('error', reject);
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  }

  test('regression (grpc-js: "call ended without gRPC status"): a gRPC fault abort is a trailers-only HTTP/2 response', async () => {
    const res = await grpcCall(allowAny.port, '/pkg.Svc/Abort');
    assert.equal(res.headers['grpc-status'], '14');
    assert.equal(res.endStreamOnHeaders, true, 'one HEADERS frame with END_STREAM, not headers and an empty DATA frame');
  });

  test('an upstream\'s trailers-only gRPC answer reaches an HTTP/2 client with its status where clients read it', async () => {
    const res = await grpcCall(allowAny.port, '/pkg.Svc/Unavailable');
    assert.equal(res.headers['grpc-status'], '14');
    assert.equal(res.trailers['grpc-status'] ?? (res.endStreamOnHeaders ? res.headers['grpc-status'] : undefined), '14');
    assert.equal(res.trailers['grpc-message'] ?? res.headers['grpc-message'], 'try again');
  });

  test('gRPC deadlines: the route timeout caps grpc-timeout upstream; without one the client\'s passes', async () => {
    const capped = await grpcCall(allowAny.port, '/pkg.Svc/Capped', { 'grpc-timeout': '30S' });
    assert.equal(capped.headers['x-seen-grpc-timeout'], '2000m');
    const shorter = await grpcCall(allowAny.port, '/pkg.Svc/Capped', { 'grpc-timeout': '700m' });
    assert.equal(shorter.headers['x-seen-grpc-timeout'], '700m');
    const free = await grpcCall(allowAny.port, '/pkg.Svc/Free', { 'grpc-timeout': '30S' });
    assert.equal(free.headers['x-seen-grpc-timeout'], '30000m');
    assert.equal(free.trailers['grpc-status'], '0');
  });

  test('regression (undici ends HTTP/2 responses on trailers with data unread): a slow client gets the whole response, then its trailers', async () => {
    const res = await grpcCall(allowAny.port, '/pkg.Svc/Big', {}, 300);
    assert.equal(res.bytes, BIG_CHUNKS * 16 * 1024, 'every byte before the trailers');
    assert.equal(res.trailers['grpc-status'], '0');
    // The upstream connection is still usable: the next call on it completes.
    const next = await grpcCall(allowAny.port, '/pkg.Svc/Free');
    assert.equal(next.trailers['grpc-status'], '0');
  });

  test('the HTTP/1.1 client and the HTTP/2 client meet the same listener (h2c sniffed by preface)', async () => {
    for (const make of [h1Client, h2Client]) {
      const c = make(allowAny.port);
      try {
        assert.equal((await c.request({ host: 'echo' })).status, 200, c.protocol);
      } finally {
        await c.close();
      }
    }
  });
});

