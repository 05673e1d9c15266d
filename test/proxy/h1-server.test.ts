/**
 * The proxy's own HTTP/1.1 codec (src/proxy/http/h1-server.ts): the requests it serves itself
 * (keep-alive, pipelined, connection: close, every response framing), and the ones it hands
 * to node's parser with the connection — after which the same connection still works. The
 * `downstream_cx_http1_node_parser` stat tells which codec served a connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { EchoReply } from './support/echo.js';
import { rawExchange } from './support/client.js';
import { cluster, endpoint, meshConfig, route, routeTo } from './support/config.js';
import { startEcho, type EchoServer } from './support/echo.js';
import { until } from './support/drive.js';
import { startProxy, type Harness } from './support/harness.js';

const ECHO = 'outbound|80||echo.default.svc.cluster.local';

/** One keep-alive connection, requests written raw and answers read with node's own client parser. */
class RawConnection {
  private readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private waiting?: () => void;
  closed = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (c: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, c]);
      this.waiting?.();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    this.socket.on('error', () => {});
  }

  write(data: string): void {
    this.socket.write(data);
  }

  /** Bytes until `count` responses are complete (each framed by content-length or chunked). */
  async responses(count: number): Promise<RawResponse[]> {
    for (;;) {
      const parsed = parseResponses(this.buffered);
      if (parsed.length >= count) {
        this.buffered = Buffer.alloc(0);
        return parsed;
      }
      if (this.closed) throw new Error(`connection closed after ${parsed.length} of ${count} responses`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  /** Everything read and not yet taken by responses(), as text. */
  received(): string {
    return this.buffered.toString('latin1');
  }

  async waitClosed(): Promise<void> {
    if (!this.closed) await once(this.socket, 'close');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

interface RawResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
}

/** A small HTTP/1.1 response reader for the tests' own checks of framing. */
function parseResponses(data: Buffer): RawResponse[] {
  const text = data.toString('latin1');
  const out: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) return out;
    const [statusLine, ...lines] = text.slice(at, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const status = Number(statusLine.split(' ')[1]);
    let pos = headEnd + 4;
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const sizeEnd = text.indexOf('\r\n', pos);
        if (sizeEnd < 0) return out;
        const size = parseInt(text.slice(pos, sizeEnd), 16);
        if (text.length < sizeEnd + 2 + size + 2) return out;
        body += text.slice(sizeEnd + 2, sizeEnd + 2 + size);
        pos = sizeEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (text.length < pos + length) return out;
      body = text.slice(pos, pos + length);
      pos += length;
    }
    out.push({ status, headers, body });
    at = pos;
  }
}

describe('HTTP/1.1 codec', () => {
  let echo: EchoServer;
  let h: Harness;
  const handedOver = () => h.proxy.stats.get('downstream_cx_http1_node_parser');
  const seen = (r: RawResponse) => JSON.parse(r.body) as EchoReply;

  before(async () => {
    echo = await startEcho('echo');
    const routes = [route('direct', { path: { exact: '/direct' } }, { kind: 'direct', status: 403, body: 'no' }), route('r', {}, routeTo(ECHO))];
    h = await startProxy(meshConfig(routes, [cluster(ECHO)], [{ clusterName: ECHO, endpoints: [endpoint(echo.port)] }], { maxRequestHeadersKb: 8 }));
  });
  after(async () => {
    await h.close();
    await echo.close();
  });

  test('requests without a body are served on one keep-alive connection by the proxy itself', async () => {
    const before = handedOver();
    const c = new RawConnection(h.port());
    try {
      for (const path of ['/a', '/b?x=1', '/c']) {
        c.write(`GET ${path} HTTP/1.1\r\nHost: echo\r\nX-Trace-Me: ${path}\r\n\r\n`);
        const [r] = await c.responses(1);
        assert.equal(r.status, 200);
        assert.equal(seen(r).path, path);
        assert.equal(seen(r).headers['x-trace-me'], path);
        assert.equal(r.headers['connection'], 'keep-alive');
        assert.equal(r.headers['keep-alive'], 'timeout=5');
        assert.match(r.headers['date'], /GMT$/);
        assert.equal(Number(r.headers['content-length']), r.body.length);
      }
      assert.equal(c.closed, false);
    } finally {
      c.destroy();
    }
    assert.equal(handedOver(), before, 'no connection went to node\'s parser');
  });

  test('pipelined requests are answered in order; connection: close ends the connection after its answer', async () => {
    const before = handedOver();
    const reply = await rawExchange(h.port(), 'GET /1 HTTP/1.1\r\nHost: echo\r\n\r\nDELETE /2 HTTP/1.1\r\nHost: echo\r\n\r\nGET /3 HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n');
    const responses = parseResponses(reply);
    assert.deepEqual(responses.map((r) => [r.status, seen(r).method, seen(r).path]), [[200, 'GET', '/1'], [200, 'DELETE', '/2'], [200, 'GET', '/3']]);
    assert.equal(responses[2].headers['connection'], 'close');
    assert.equal(handedOver(), before);
  });

  test('Content-Length bodies, small and large, are served here; a chunked body goes to node\'s parser', async () => {
    const before = handedOver();
    const c = new RawConnection(h.port());
    try {
      c.write('POST /post HTTP/1.1\r\nHost: echo\r\nContent-Length: 5\r\n\r\nhello');
      assert.equal(seen((await c.responses(1))[0]).body, 'hello');
      const big = 'x'.repeat(2 * 1024 * 1024 - 1) + 'y';
      c.write(`PUT /big HTTP/1.1\r\nHost: echo\r\nContent-Length: ${big.length}\r\n\r\n`);
      c.write(big);
      const [r] = await c.responses(1);
      assert.equal(seen(r).body.length, big.length);
      assert.ok(seen(r).body.endsWith('xy'));
      // A body and the next request in one write.
      c.write('POST /a HTTP/1.1\r\nHost: echo\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: echo\r\n\r\n');
      const [first, second] = await c.responses(2);
      assert.deepEqual([seen(first).body, seen(second).path], ['abc', '/b']);
    } finally {
      c.destroy();
    }
    assert.equal(handedOver(), before, 'all of it on the proxy\'s own codec');
    const chunked = parseResponses(await rawExchange(h.port(), 'POST /ch HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n'));
    assert.equal(seen(chunked[0]).body, 'abc');
    assert.equal(handedOver(), before + 1);
  });

  test('a body the proxy answers without reading is read past; the connection keeps working', async () => {
    const c = new RawConnection(h.port());
    try {
      c.write(`POST /direct HTTP/1.1\r\nHost: echo\r\nContent-Length: 100000\r\n\r\n${'z'.repeat(40_000)}`);
      const [direct] = await c.responses(1);
      assert.equal(direct.status, 403);
      c.write('z'.repeat(60_000));
      c.write('GET /next HTTP/1.1\r\nHost: echo\r\n\r\n');
      assert.equal(seen((await c.responses(1))[0]).path, '/next');
    } finally {
      c.destroy();
    }
  });

  test('a client that goes away in the middle of its body is recorded as DC; the proxy keeps serving', async () => {
    // An upstream that says when the request reached it, and never answers.
    let reached!: () => void;
    const arrived = new Promise<void>((resolve) => (reached = resolve));
    const upstream = net.createServer((s) => s.once('data', () => reached()));
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const port = (upstream.address() as net.AddressInfo).port;
    const p = await startProxy(meshConfig([route('r', {}, routeTo(ECHO))], [cluster(ECHO)], [{ clusterName: ECHO, endpoints: [endpoint(port)] }]));
    try {
      const c = new RawConnection(p.port());
      c.write('POST /gone HTTP/1.1\r\nHost: echo\r\nContent-Length: 1000\r\n\r\npartial');
      await arrived;
      c.destroy();
      await until(() => p.proxy.stats.get('downstream_rq_flag_DC') === 1, 'the request to be recorded as DC');
      await until(() => p.proxy.connections() === 0, 'the client connection to close');
    } finally {
      await p.close();
      upstream.close();
    }
  });

  test('a head that arrives in several reads is served here; a repeated field goes to node\'s parser', async () => {
    const before = handedOver();
    const c = new RawConnection(h.port());
    try {
      c.write('GET /split HTTP/1.1\r\nHost: ec');
      await until(() => h.proxy.connections() === 1, 'the first part to arrive');
      c.write('ho\r\nX-A: 1\r\n\r\n');
      assert.equal(seen((await c.responses(1))[0]).path, '/split');
    } finally {
      c.destroy();
    }
    assert.equal(handedOver(), before);
    const repeated = parseResponses(await rawExchange(h.port(), 'GET /rep HTTP/1.1\r\nHost: echo\r\nX-A: 1\r\nX-A: 2\r\nConnection: close\r\n\r\n'));
    assert.equal(seen(repeated[0]).headers['x-a'], '1, 2', 'node joins a repeated field');
    assert.equal(handedOver(), before + 1);
  });

  test('HEAD is answered with the headers of GET and no body; HTTP/1.0 and Expect go to node\'s parser', async () => {
    const before = handedOver();
    const c = new RawConnection(h.port());
    try {
      c.write('HEAD /h HTTP/1.1\r\nHost: echo\r\n\r\nGET /after-head HTTP/1.1\r\nHost: echo\r\n\r\n');
      // The test reader frames by content-length, which a HEAD answer keeps but has no body for:
      // read the raw bytes of both answers instead.
      await until(() => c.received().includes('/after-head'), 'both answers');
      const text = c.received();
      const [headAnswer, rest] = [text.slice(0, text.indexOf('\r\n\r\n') + 4), text.slice(text.indexOf('\r\n\r\n') + 4)];
      assert.match(headAnswer, /^HTTP\/1\.1 200/);
      assert.match(headAnswer, /content-length: \d+/);
      assert.doesNotMatch(headAnswer, /transfer-encoding/);
      assert.match(rest, /^HTTP\/1\.1 200/, 'the next answer follows the HEAD head directly');
    } finally {
      c.destroy();
    }
    assert.equal(handedOver(), before);
    const old = await rawExchange(h.port(), 'GET / HTTP/1.0\r\nHost: echo\r\n\r\n');
    assert.match(old.toString(), /^HTTP\/1\.1 200/);
    const expect = await rawExchange(h.port(), 'POST /e HTTP/1.1\r\nHost: echo\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
    assert.match(expect.toString(), /HTTP\/1\.1 200/);
    assert.equal(handedOver(), before + 2);
  });

  test('responses without a length are chunked; 204 and 304 carry no body and keep the connection', async () => {
    echo.override = (req, res) => {
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('hello ');
        setTimeout(() => res.end('world'), 5);
        return true;
      }
      if (req.url === '/204' || req.url === '/304') {
        res.writeHead(Number(req.url.slice(1)), { etag: '"v1"' });
        res.end();
        return true;
      }
      return false;
    };
    const c = new RawConnection(h.port());
    try {
      c.write('GET /chunked HTTP/1.1\r\nHost: echo\r\n\r\n');
      const [chunked] = await c.responses(1);
      assert.equal(chunked.headers['transfer-encoding'], 'chunked');
      assert.equal(chunked.body, 'hello world');
      for (const status of [204, 304]) {
        c.write(`GET /${status} HTTP/1.1\r\nHost: echo\r\n\r\n`);
        const [r] = await c.responses(1);
        assert.equal(r.status, status);
        assert.equal(r.headers['transfer-encoding'], undefined);
        assert.equal(r.body, '');
      }
      c.write('GET /last HTTP/1.1\r\nHost: echo\r\n\r\n');
      const [last] = await c.responses(1);
      assert.equal(seen(last).path, '/last', 'nothing of the earlier responses was left on the wire');
    } finally {
      c.destroy();
      echo.override = undefined;
    }
  });

  test('the proxy\'s own replies are framed like its proxied ones and keep the connection', async () => {
    const c = new RawConnection(h.port());
    try {
      c.write('GET /direct HTTP/1.1\r\nHost: echo\r\n\r\n');
      const [direct] = await c.responses(1);
      assert.equal(direct.status, 403);
      assert.equal(direct.body, 'no\n');
      assert.equal(Number(direct.headers['content-length']), direct.body.length);
      c.write('GET /again HTTP/1.1\r\nHost: echo\r\n\r\n');
      assert.equal(seen((await c.responses(1))[0]).path, '/again');
    } finally {
      c.destroy();
    }
  });

  test('node\'s own HTTP client keeps its connections and gets every answer', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    try {
      const get = (path: string) =>
        new Promise<string>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: h.port(), path, agent, headers: { host: 'echo' } }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve((JSON.parse(body) as EchoReply).path));
          }).on('error', reject);
        });
      const paths = Array.from({ length: 20 }, (_, i) => `/n${i}`);
      assert.deepEqual(await Promise.all(paths.map(get)), paths);
    } finally {
      agent.destroy();
    }
  });

  test('streamIdleTimeoutMs answers a request whose upstream goes silent 504 SI; a silent new connection is closed and a stalled head answered 408 after the headers timeout', async () => {
    const idle = await startProxy(
      meshConfig([route('r', {}, routeTo(ECHO))], [cluster(ECHO)], [{ clusterName: ECHO, endpoints: [endpoint(echo.port)] }], { streamIdleTimeoutMs: 150, requestHeadersTimeoutMs: 150 }),
    );
    echo.override = (req) => req.url === '/hang'; // never answered
    try {
      const c = new RawConnection(idle.port());
      c.write('GET /hang HTTP/1.1\r\nHost: echo\r\n\r\n');
      const [timedOut] = await c.responses(1);
      // Envoy's stream idle timeout: 504 once the request is in (408 while it is arriving).
      assert.equal(timedOut.status, 504);
      assert.equal(timedOut.headers['x-sinew-response-flags'], 'SI');
      assert.equal(idle.proxy.stats.get('downstream_rq_flag_SI'), 1);
      c.destroy();
      const silent = new RawConnection(idle.port());
      await silent.waitClosed();
      const stalled = (await rawExchange(idle.port(), 'GET / HTTP/1.1\r\nHost: echo\r\nX-Slow: 1\r\n')).toString();
      assert.match(stalled, /^HTTP\/1\.1 408/);
      assert.match(stalled, /x-sinew-response-flags: DPE/);
      assert.equal(idle.proxy.stats.get('downstream_cx_http1_node_parser'), 0);
    } finally {
      echo.override = undefined;
      await idle.close();
    }
  });
});
