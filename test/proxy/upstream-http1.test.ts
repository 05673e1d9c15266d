/**
 * Sinew's HTTP/1.1 upstream client (src/proxy/upstream/http1) over real sockets on port 0
 * (STYLE.md 16): node:http servers for ordinary behaviour, raw `net` servers that write
 * hand-made responses for framing edge cases, and the parser alone (pure logic) fed at every
 * split point. Every test ends with no TCP socket left open in this process.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Dispatcher } from 'undici';
import { keepAliveIdleMs, parseContentLength, ResponseParser, type Fields, type ResponseSink } from '../../src/proxy/upstream/http1/parser.js';
import { Http1Pool, type Http1PoolOptions } from '../../src/proxy/upstream/http1/pool.js';
import type { UpstreamDispatchOptions } from '../../src/proxy/upstream/types.js';

// === fixtures ===

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  // Every socket of this process (pools' and servers') is closed: nothing leaked. A closed
  // handle leaves the list in the loop's close phase, after the check phase: give it a few turns.
  const tcp = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap');
  for (let turn = 0; turn < 5 && tcp().length > 0; turn++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(tcp(), [], 'sockets left open');
});

function pool(port: number, options: Partial<Http1PoolOptions> = {}): Http1Pool {
  const p = new Http1Pool({ host: '127.0.0.1', port }, { connectTimeoutMs: 2000, ...options });
  cleanups.push(() => p.destroy());
  return p;
}

interface Tracked {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  sockets: Set<net.Socket>;
  /** Resolves when every accepted socket has closed. */
  allClosed(): Promise<void>;
}

async function track(server: net.Server): Promise<Tracked> {
  const sockets = new Set<net.Socket>();
  const t: Tracked = {
    port: 0,
    connections: 0,
    sockets,
    allClosed: () => Promise.all([...sockets].map((s) => (s.destroyed && s.closed ? undefined : once(s, 'close')))).then(() => {}),
  };
  server.on('connection', (s: net.Socket) => {
    t.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.port = (server.address() as net.AddressInfo).port;
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await t.allClosed();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return t;
}

interface HttpServer extends Tracked {
  requests: http.IncomingMessage[];
}

async function httpServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void, configure?: (s: http.Server) => void): Promise<HttpServer> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  configure?.(server);
  const t = await track(server);
  return Object.assign(t, { requests });
}

interface RawRequest {
  head: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  /** The body as decoded (chunked or not). */
  body: Buffer;
  socket: net.Socket;
  /** Index of the connection it came on. */
  conn: number;
}

interface RawServer extends Tracked {
  requests: RawRequest[];
  /** Every byte each connection received, in order. */
  wire: Buffer[][];
}

/**
 * A `net` server that reads requests (head, then a Content-Length or chunked body) and lets
 * `respond` write whatever bytes it likes.
 */
async function rawServer(respond: (req: RawRequest) => void, options: net.ServerOpts = {}): Promise<RawServer> {
  const requests: RawRequest[] = [];
  const wire: Buffer[][] = [];
  const server = net.createServer(options, (socket) => {
    const conn = wire.length;
    const received: Buffer[] = [];
    wire.push(received);
    let buf = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      received.push(chunk);
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const r = readRequest(buf);
        if (!r) return;
        buf = buf.subarray(r.used);
        const req: RawRequest = { ...r.req, socket, conn };
        requests.push(req);
        respond(req);
      }
    });
  });
  const t = await track(server);
  return Object.assign(t, { requests, wire });
}

function readRequest(buf: Buffer): { req: Omit<RawRequest, 'socket' | 'conn'>; used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = buf.subarray(0, end).toString('latin1');
  const [line, ...fields] = head.split('\r\n');
  const [method, path] = line.split(' ');
  const headers: Record<string, string> = {};
  for (const f of fields) {
    const c = f.indexOf(':');
    headers[f.slice(0, c).toLowerCase()] = f.slice(c + 1).trim();
  }
  let pos = end + 4;
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = [];
    for (;;) {
      const lf = buf.indexOf('\r\n', pos);
      if (lf === -1) return undefined;
      const size = parseInt(buf.subarray(pos, lf).toString(), 16);
      if (buf.length < lf + 2 + size + 2) return undefined;
      parts.push(buf.subarray(lf + 2, lf + 2 + size));
      pos = lf + 2 + size + 2;
      if (size === 0) break;
    }
    return { req: { head, method, path, headers, body: Buffer.concat(parts) }, used: pos };
  }
  const length = Number(headers['content-length'] ?? 0);
  if (buf.length < pos + length) return undefined;
  return { req: { head, method, path, headers, body: Buffer.from(buf.subarray(pos, pos + length)) }, used: pos + length };
}

/** Records every handler call in order; `done` settles at the end or the error. */
class Recorder implements Dispatcher.DispatchHandler {
  events: string[] = [];
  status = 0;
  statusMessage = '';
  headers: Record<string, string | string[] | undefined> = {};
  trailers: Record<string, string | string[] | undefined> | undefined;
  chunks: Buffer[] = [];
  error: (Error & { code?: string }) | undefined;
  controller: Dispatcher.DispatchController | undefined;
  readonly done: Promise<this>;
  private resolve!: (r: this) => void;

  constructor(readonly hooks: { start?(c: Dispatcher.DispatchController): void; head?(c: Dispatcher.DispatchController): void; data?(c: Dispatcher.DispatchController, chunk: Buffer): void } = {}) {
    this.done = new Promise((r) => (this.resolve = r));
  }

  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.events.push('start');
    this.controller = c;
    this.hooks.start?.(c);
  }

  onResponseStart(c: Dispatcher.DispatchController, status: number, headers: http.IncomingHttpHeaders, statusMessage?: string): void {
    this.events.push('head');
    this.status = status;
    this.headers = headers;
    this.statusMessage = statusMessage ?? '';
    this.hooks.head?.(c);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.events.at(-1) !== 'data') this.events.push('data');
    this.chunks.push(chunk);
    this.hooks.data?.(c, chunk);
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: http.IncomingHttpHeaders): void {
    this.events.push('end');
    this.trailers = trailers;
    this.resolve(this);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.events.push('error');
    this.error = err;
    this.resolve(this);
  }
}

function send(p: Http1Pool, options: Partial<UpstreamDispatchOptions> = {}, hooks?: Recorder['hooks']): Recorder {
  const r = new Recorder(hooks);
  p.dispatch({ path: '/', method: 'GET', headers: { host: 'upstream' }, ...options } as Dispatcher.DispatchOptions, r);
  return r;
}

async function ok(r: Recorder): Promise<Recorder> {
  await r.done;
  if (r.error) throw r.error;
  assert.deepEqual(r.events.filter((e) => e !== 'data'), ['start', 'head', 'end']);
  return r;
}

async function fails(r: Recorder, code: string, events: string[]): Promise<Recorder> {
  await r.done;
  assert.equal(r.error?.code, code, `expected ${code}, got ${r.error?.code}: ${r.error?.message}`);
  assert.deepEqual(r.events.filter((e) => e !== 'data'), events);
  return r;
}

/** Resolves once `cond` holds, checking after each turn of the event loop (no timers). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

const answer = (body = 'ok') => (req: RawRequest) => req.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);

// === the parser alone, at every split point ===

class SinkLog implements ResponseSink {
  heads: { status: number; reason: string; headers: Fields; keepAlive: boolean }[] = [];
  body: Buffer[] = [];
  trailers: Fields | undefined;
  onHead(status: number, reason: string, headers: Fields, keepAlive: boolean): boolean {
    this.heads.push({ status, reason, headers, keepAlive });
    return true;
  }
  onBody(chunk: Buffer): boolean {
    this.body.push(Buffer.from(chunk));
    return true;
  }
  onComplete(trailers: Fields): void {
    this.trailers = trailers;
  }
}

/** Parses `text` cut into `pieces`; returns what the sink saw, or the error. */
function parse(pieces: Buffer[], isHead = false): { sink: SinkLog; error?: string; rest: number; eof: boolean } {
  const parser = new ResponseParser();
  parser.begin(isHead);
  const sink = new SinkLog();
  let rest = 0;
  for (const piece of pieces) {
    if (parser.done) {
      rest += piece.length;
      continue;
    }
    const off = parser.execute(piece, sink);
    if (off < 0) return { sink, error: parser.error, rest, eof: false };
    rest += piece.length - off;
  }
  const eof = parser.readsUntilClose && parser.finish(sink);
  return { sink, rest, eof };
}

function splits(text: string): Buffer[][] {
  const b = Buffer.from(text, 'latin1');
  const out: Buffer[][] = [[b], [...b].map((x) => Buffer.from([x]))];
  for (let i = 1; i < b.length; i++) out.push([b.subarray(0, i), b.subarray(i)]);
  return out;
}

describe('response parser', () => {
  test('chunked body with extensions and trailers, split at every byte', () => {
    const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n5;ext=1\r\nhello\r\n1A \t;x\r\n' + 'y'.repeat(26) + '\r\n0\r\nGrpc-Status: 0\r\nX-T: a\r\n\r\n';
    for (const pieces of splits(text)) {
      const { sink, error, rest } = parse(pieces);
      assert.equal(error, undefined);
      assert.equal(sink.heads.length, 1);
      assert.deepEqual(sink.heads[0].headers, { 'transfer-encoding': 'chunked', 'x-a': ['1', '2'] });
      assert.equal(sink.heads[0].keepAlive, true);
      assert.equal(Buffer.concat(sink.body).toString(), 'hello' + 'y'.repeat(26));
      assert.deepEqual(sink.trailers, { 'grpc-status': '0', 'x-t': 'a' });
      assert.equal(rest, 0);
    }
  });

  test('content-length body, interim responses skipped, split at every byte', () => {
    const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created Here\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc';
    for (const pieces of splits(text)) {
      const { sink, error, rest } = parse(pieces);
      assert.equal(error, undefined);
      assert.equal(sink.heads.length, 1);
      assert.equal(sink.heads[0].status, 201);
      assert.equal(sink.heads[0].reason, 'Created Here');
      assert.equal(Buffer.concat(sink.body).toString(), 'abc');
      assert.deepEqual(sink.trailers, {});
      assert.equal(rest, 0);
    }
  });

  test('close-delimited body ends at EOF and forbids reuse', () => {
    for (const pieces of splits('HTTP/1.1 200 OK\r\nServer: x\r\n\r\nuntil the end')) {
      const { sink, error, eof } = parse(pieces);
      assert.equal(error, undefined);
      assert.equal(eof, true);
      assert.equal(sink.heads[0].keepAlive, false);
      assert.equal(Buffer.concat(sink.body).toString(), 'until the end');
    }
  });

  test('malformed responses are refused, whatever the split', () => {
    const cases: [string, RegExp][] = [
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', /both Transfer-Encoding and Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', /differing Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd', /differing Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /Content-Length/],
      ['HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n', /obsolete line folding/],
      ['HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n', /invalid header name/],
      ['HTTP/1.1 200 OK\r\nX-A 1\r\nContent-Length: 0\r\n\r\n', /without a name and colon/],
      ['HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n', /NUL, CR/],
      ['HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n', /NUL, CR/],
      ['HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', /bare LF/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n', /bare LF/],
      ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', /101/],
      ['HTTP/2.0 200 OK\r\n\r\n', /invalid status line/],
      ['HTTP/1.2 200 OK\r\n\r\n', /HTTP\/1.0 or HTTP\/1.1/],
      ['HTTP/1.1 2x0 OK\r\n\r\n', /status code/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /missing chunk size/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n', /invalid chunk size/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n', /chunk size too large/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n', /not followed by CRLF/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T : 1\r\n\r\n', /invalid header name/],
    ];
    for (const [text, why] of cases) {
      for (const pieces of splits(text)) {
        const { error } = parse(pieces);
        assert.match(error ?? 'no error', why, JSON.stringify(text));
      }
    }
  });

  test('a head over 60 KiB is refused', () => {
    const big = 'HTTP/1.1 200 OK\r\n' + `X-Big: ${'a'.repeat(1000)}\r\n`.repeat(62) + 'Content-Length: 0\r\n\r\n';
    assert.match(parse([Buffer.from(big)]).error ?? '', /over 61440 bytes/);
    // One byte at a time too: the limit holds while the line is still incomplete.
    assert.match(parse([Buffer.from('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(70_000))]).error ?? '', /over 61440 bytes/);
  });

  test('no body for HEAD, 204 and 304; HTTP/1.0 and Connection: close forbid reuse; bytes after the end are left over', () => {
    const head = parse([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n')], true);
    assert.deepEqual([head.error, head.sink.body.length, head.sink.trailers], [undefined, 0, {}]);
    const noContent = parse([Buffer.from('HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n')]);
    assert.deepEqual([noContent.sink.heads[0].status, noContent.sink.body.length, noContent.rest], [204, 0, 17]);
    const notModified = parse([Buffer.from('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n')]);
    assert.deepEqual([notModified.sink.body.length, notModified.sink.trailers], [0, {}]);
    assert.equal(parse([Buffer.from('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')]).sink.heads[0].keepAlive, false);
    assert.equal(parse([Buffer.from('HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n')]).sink.heads[0].keepAlive, false);
    assert.equal(parse([Buffer.from('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n')]).sink.heads[0].reason, '');
  });

  test('Content-Length lists and Keep-Alive timeouts', () => {
    assert.equal(parseContentLength('42'), 42);
    assert.equal(parseContentLength('42, 42'), 42);
    assert.equal(parseContentLength(['7', '7']), 7);
    assert.equal(parseContentLength(['7', '8']), -1);
    assert.equal(parseContentLength('1e3'), -1);
    assert.equal(parseContentLength('9999999999999999'), -1); // 16 digits: past exact integers
    assert.equal(keepAliveIdleMs(undefined, 4000), 4000);
    assert.equal(keepAliveIdleMs('timeout=5', 4000), 4000); // lowered to 4000: equal
    assert.equal(keepAliveIdleMs('timeout=2, max=100', 4000), 1000);
    assert.equal(keepAliveIdleMs('timeout=1', 4000), 0); // <= 0: not reused
    assert.equal(keepAliveIdleMs('timeout=60', 4000), 4000); // never raised
    assert.equal(keepAliveIdleMs('max=5', 4000), 4000);
  });
});

// === responses over sockets ===

describe('responses', () => {
  test('status, headers (repeated as arrays), body and keep-alive reuse of one connection', async () => {
    const srv = await httpServer((req, res) => {
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.setHeader('X-Path', req.url!);
      res.end(`hello ${req.url}`);
    });
    const p = pool(srv.port);
    for (let i = 0; i < 5; i++) {
      const r = await ok(send(p, { path: `/n${i}?q=1` }));
      assert.equal(r.status, 200);
      assert.equal(r.statusMessage, 'OK');
      assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
      assert.equal(r.headers['x-path'], `/n${i}?q=1`);
      assert.equal(r.body, `hello /n${i}?q=1`);
      assert.deepEqual(r.trailers, {});
    }
    assert.equal(srv.connections, 1);
    assert.deepEqual(p.stats, { connected: 1, free: 1, pending: 0, running: 0, size: 0 });
  });

  test('chunked response with trailers over a socket', async () => {
    const srv = await httpServer((_req, res) => {
      res.writeHead(200, { Trailer: 'grpc-status' });
      res.write('part one, ');
      res.write('part two');
      res.addTrailers({ 'grpc-status': '0' });
      res.end();
    });
    const p = pool(srv.port);
    const r = await ok(send(p));
    assert.equal(r.body, 'part one, part two');
    assert.deepEqual(r.trailers, { 'grpc-status': '0' });
    await ok(send(p));
    assert.equal(srv.connections, 1);
  });

  test('HEAD, 204 and 304 carry no body and leave the connection reusable', async () => {
    const srv = await rawServer((req) => {
      const responses: Record<string, string> = {
        '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n',
        '/204': 'HTTP/1.1 204 No Content\r\n\r\n',
        '/304': 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n',
        '/last': 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast',
      };
      req.socket.write(responses[req.path]);
    });
    const p = pool(srv.port);
    const head = await ok(send(p, { path: '/head', method: 'HEAD' }));
    assert.deepEqual([head.status, head.body, head.headers['content-length']], [200, '', '10']);
    assert.equal((await ok(send(p, { path: '/204' }))).status, 204);
    assert.equal((await ok(send(p, { path: '/304' }))).body, '');
    assert.equal((await ok(send(p, { path: '/last' }))).body, 'last');
    assert.equal(srv.connections, 1);
  });

  test('1xx interim responses are skipped; 101 is a protocol error', async () => {
    const srv = await rawServer((req) => {
      if (req.path === '/101') req.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n');
      else req.socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const p = pool(srv.port);
    const r = await ok(send(p));
    assert.deepEqual([r.status, r.body, r.headers.link], [200, 'ok', undefined]);
    await fails(send(p, { path: '/101' }), 'SNW_ERR_UPSTREAM_PROTOCOL', ['start', 'error']);
  });

  test('an upgrade request: a 101 hands the socket, and the bytes read past the head, to onRequestUpgrade', async () => {
    const srv = await rawServer((req) => {
      req.socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\nearly`);
      req.socket.on('data', (d: Buffer) => req.socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    });
    const p = pool(srv.port);
    const upgraded = new Promise<{ status: number; headers: http.IncomingHttpHeaders; socket: net.Socket }>((resolve, reject) => {
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart() {},
        onRequestUpgrade: (_c, status, headers, socket) => resolve({ status, headers, socket: socket as net.Socket }),
        onResponseStart: () => reject(new Error('a 101 is no ordinary response')),
        onResponseError: (_c, err) => reject(err),
      };
      p.dispatch({ path: '/chat', method: 'GET', headers: { host: 'upstream' }, upgrade: 'websocket' } as Dispatcher.DispatchOptions, handler);
    });
    const { status, headers, socket } = await upgraded;
    cleanups.push(() => void socket.destroy());
    assert.equal(status, 101);
    assert.equal(headers.upgrade, 'websocket');
    assert.match(srv.requests[0].head, /\r\nconnection: upgrade\r\nupgrade: websocket$/);
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString()));
    socket.resume(); // handed over paused: nothing is read before its new owner is ready
    socket.write('hello');
    await until(() => got === 'earlyecho:hello');
    assert.deepEqual(p.stats, { connected: 0, free: 0, pending: 0, running: 0, size: 0 }, 'the socket left the pool');
  });

  test('an upgrade request the server declines is an ordinary response; its connection is not reused', async () => {
    const srv = await rawServer(answer('plain'));
    const p = pool(srv.port);
    const r = await ok(send(p, { path: '/ws', upgrade: 'websocket' }));
    assert.deepEqual([r.status, r.body], [200, 'plain']);
    assert.equal((await ok(send(p))).body, 'plain');
    assert.equal(srv.connections, 2, 'the declined upgrade\'s connection was closed');
  });

  test('malformed responses fail with SNW_ERR_UPSTREAM_PROTOCOL after onRequestStart and close the connection', async () => {
    const bad: Record<string, string> = {
      '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
      '/two-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
      '/fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n',
      '/bare-lf': 'HTTP/1.1 200 OK\nContent-Length: 0\n\n',
    };
    const srv = await rawServer((req) => req.socket.write(bad[req.path]));
    const p = pool(srv.port);
    for (const path of Object.keys(bad)) {
      const r = await fails(send(p, { path }), 'SNW_ERR_UPSTREAM_PROTOCOL', ['start', 'error']);
      assert.match(r.error!.message, new RegExp(`upstream 127.0.0.1:${srv.port} sent an invalid HTTP/1.1 response`));
    }
    assert.equal(srv.connections, 4);
  });

  test('a close-delimited body ends at the close; the connection is not reused', async () => {
    const srv = await rawServer((req) => req.socket.end('HTTP/1.1 200 OK\r\n\r\nall of it'));
    const p = pool(srv.port);
    assert.equal((await ok(send(p))).body, 'all of it');
    assert.equal((await ok(send(p))).body, 'all of it');
    assert.equal(srv.connections, 2);
  });

  test('HTTP/1.0 responses and Connection: close are not reused', async () => {
    const srv = await rawServer((req) => {
      if (req.path === '/10') req.socket.write('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else req.socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok');
    });
    const p = pool(srv.port);
    await ok(send(p, { path: '/10' }));
    await ok(send(p, { path: '/10' }));
    await ok(send(p, { path: '/close' }));
    await ok(send(p, { path: '/close' }));
    assert.equal(srv.connections, 4);
  });

  test('bytes after a complete response (unsolicited) close that connection, the response stands', async () => {
    const srv = await rawServer((req) => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'));
    const p = pool(srv.port);
    assert.equal((await ok(send(p))).body, 'ok');
    assert.equal((await ok(send(p))).body, 'ok');
    assert.equal(srv.connections, 2);
  });

  test('a response split into one-byte TCP segments', async () => {
    const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Y: z\r\n\r\n3\r\nabc\r\n2;e\r\nde\r\n0\r\nT: 1\r\n\r\n';
    const srv = await rawServer(async (req) => {
      req.socket.setNoDelay(true);
      for (const byte of Buffer.from(text)) {
        req.socket.write(Buffer.from([byte]));
        await new Promise((r) => setImmediate(r)); // separate segments, as far as the kernel allows
      }
    });
    const p = pool(srv.port);
    const r = await ok(send(p));
    assert.deepEqual([r.body, r.headers['x-y'], r.trailers], ['abcde', 'z', { t: '1' }]);
  });

  test('a reset mid-body fails with SNW_ERR_UPSTREAM_RESET after onResponseStart', async () => {
    const srv = await rawServer((req) => {
      req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..', () => req.socket.destroy());
    });
    const p = pool(srv.port);
    const r = await fails(send(p), 'SNW_ERR_UPSTREAM_RESET', ['start', 'head', 'error']);
    assert.equal(r.events.at(-2), 'data');
    assert.equal(r.body, 'only ten..');
    assert.match(r.error!.message, /closed the connection before the response was complete/);
  });

  test('an idle connection the server closes is dropped silently', async () => {
    const srv = await rawServer((req) => {
      req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', () => req.socket.end());
    });
    const p = pool(srv.port);
    await ok(send(p));
    await srv.allClosed();
    await new Promise((r) => setImmediate(r));
    assert.equal(p.stats.connected, 0);
    await ok(send(p));
    assert.equal(srv.connections, 2);
  });
});

// === connection management ===

describe('connections', () => {
  test('the most recently used idle connection is reused first (LIFO)', async () => {
    const held: http.ServerResponse[] = [];
    const srv = await httpServer((req, res) => {
      if (req.url === '/hold') held.push(res);
      else res.end(String(req.socket.remotePort));
    });
    const p = pool(srv.port);
    const a = send(p, { path: '/hold' });
    const b = send(p, { path: '/hold' });
    await until(() => held.length === 2);
    const [first, second] = held;
    const secondPort = second.req.socket.remotePort;
    first.end('a');
    await ok(a);
    second.end('b');
    await ok(b);
    assert.equal((await ok(send(p))).body, String(secondPort));
    assert.equal((await ok(send(p))).body, String(secondPort));
    assert.equal(srv.connections, 2);
  });

  test('Keep-Alive: timeout=1 leaves no idle time: the connection is not reused', async () => {
    const srv = await httpServer((_req, res) => res.end('ok'), (s) => (s.keepAliveTimeout = 1000));
    const p = pool(srv.port);
    const r = await ok(send(p));
    assert.equal(r.headers['keep-alive'], 'timeout=1');
    await ok(send(p));
    assert.equal(srv.connections, 2);
  });

  test('an idle connection closes after idleTimeoutMs', async () => {
    const srv = await httpServer((_req, res) => res.end('ok'));
    const p = pool(srv.port, { idleTimeoutMs: 30 });
    await ok(send(p));
    assert.equal(p.stats.free, 1);
    await srv.allClosed(); // the pool closed it
    assert.equal(p.stats.connected, 0);
    await ok(send(p));
    assert.equal(srv.connections, 2);
  });

  for (const [max, requests, expected] of [
    [1, 3, 3],
    [3, 7, 3],
  ] as const) {
    test(`maxRequestsPerConnection ${max}: exactly ${max} per connection, the last says connection: close`, async () => {
      const srv = await httpServer((req, res) => res.end(String(req.socket.remotePort)));
      const p = pool(srv.port, { maxRequestsPerConnection: max });
      const ports: string[] = [];
      for (let i = 0; i < requests; i++) ports.push((await ok(send(p))).body);
      assert.equal(srv.connections, expected);
      const perConnection = new Map<string, number>();
      for (const port of ports) perConnection.set(port, (perConnection.get(port) ?? 0) + 1);
      assert.deepEqual([...perConnection.values()], max === 1 ? [1, 1, 1] : [3, 3, 1]);
      const closes = srv.requests.map((r, i) => (r.headers.connection === 'close' ? i + 1 : 0)).filter(Boolean);
      assert.deepEqual(closes, max === 1 ? [1, 2, 3] : [3, 6]);
    });
  }

  test('maxConnectionDurationMs: an old connection finishes its request, then is not reused (injected clock)', async () => {
    const held: http.ServerResponse[] = [];
    const srv = await httpServer((req, res) => (req.url === '/hold' ? held.push(res) : res.end('ok')));
    let now = 0;
    const p = pool(srv.port, { maxConnectionDurationMs: 100, now: () => now });
    await ok(send(p));
    now = 99;
    await ok(send(p));
    assert.equal(srv.connections, 1);
    now = 100; // the idle connection is too old: not taken
    await ok(send(p));
    assert.equal(srv.connections, 2); // created at 100
    const running = send(p, { path: '/hold' });
    await until(() => held.length === 1);
    now = 250; // ages past the limit while its request runs: that request finishes normally
    held[0].end('done');
    assert.equal((await ok(running)).body, 'done');
    await ok(send(p));
    assert.equal(srv.connections, 3);
  });

  test('connections limit: requests over it wait in FIFO order on one connection', async () => {
    const held: http.ServerResponse[] = [];
    const srv = await httpServer((_req, res) => held.push(res));
    const p = pool(srv.port, { connections: 1 });
    const rs = ['/a', '/b', '/c', '/d'].map((path) => send(p, { path }));
    for (let i = 0; i < 4; i++) {
      await until(() => held.length > i);
      assert.deepEqual(rs.map((r) => r.events.length > 0), rs.map((_, j) => j <= i), 'only the running request has started');
      assert.equal(p.stats.pending, 3 - i);
      held[i].end(String(i));
      await ok(rs[i]);
    }
    assert.deepEqual(srv.requests.map((r) => r.url), ['/a', '/b', '/c', '/d']);
    assert.equal(srv.connections, 1);
  });

  test('connection refused fails every waiting request before onRequestStart, with the errno', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const p = pool(closedPort);
    const rs = [send(p), send(p), send(p)];
    for (const r of rs) {
      await fails(r, 'SNW_ERR_UPSTREAM_CONNECT_FAILED', ['error']);
      assert.match(r.error!.message, new RegExp(`could not connect to upstream 127.0.0.1:${closedPort}: ECONNREFUSED`));
    }
    await p.close();
    assert.equal(p.stats.connected, 0);
  });

  test('connect timeout fails before onRequestStart (a listener whose accept queue is full)', async (t) => {
    // A worker listens and then blocks (Atomics.wait), so it never accepts: once its accept
    // queue (backlog 1: two connections on Linux) is full, the kernel drops further SYNs.
    const shared = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
         parentPort.postMessage(s.address().port);
         Atomics.wait(workerData, 0, 0);
         s.close();
       });`,
      { eval: true, workerData: shared },
    );
    cleanups.push(async () => {
      Atomics.store(shared, 0, 1);
      Atomics.notify(shared, 0);
      await worker.terminate();
    });
    const [port] = (await once(worker, 'message')) as [number];
    const fillers: net.Socket[] = [];
    cleanups.push(() => fillers.forEach((s) => s.destroy()));
    for (let i = 0; i < 2; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      fillers.push(s);
      await once(s, 'connect');
    }
    const p = pool(port, { connectTimeoutMs: 50 });
    const r = send(p, {}, { start: (c) => c.abort(new Error('connected after all')) });
    await r.done;
    if (r.events[0] === 'start' || (r.error as { code?: string }).code === 'SNW_ERR_UPSTREAM_CONNECT_FAILED') {
      t.skip('this kernel does not leave connections beyond a full accept queue pending; the timeout path cannot be reached deterministically');
      return;
    }
    await fails(r, 'SNW_ERR_UPSTREAM_CONNECT_TIMEOUT', ['error']);
    assert.match(r.error!.message, new RegExp(`could not connect to upstream 127.0.0.1:${port} within 50 ms`));
  });
});

// === the controller ===

describe('controller', () => {
  test('pause() inside onResponseData holds back the rest of the same TCP read until resume()', async () => {
    // One small write: the whole response reaches the client in one read, so after the first
    // chunk everything else is already in hand and must wait.
    const srv = await rawServer((req) => req.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\nT: 1\r\n\r\n'));
    const p = pool(srv.port);
    const r = send(p, { path: '/' }, { data: (c, chunk) => chunk.toString() === 'a' && c.pause() });
    await until(() => r.chunks.length > 0);
    for (let turn = 0; turn < 20; turn++) await new Promise((r2) => setImmediate(r2));
    assert.deepEqual([r.body, r.events, r.controller!.paused], ['a', ['start', 'head', 'data'], true]);
    r.controller!.resume();
    await ok(r);
    assert.deepEqual([r.body, r.trailers], ['abc', { t: '1' }]);
    await ok(send(p)); // and the connection is reused afterwards
    assert.equal(srv.connections, 1);
  });

  test('pause() at the very end: the response completes only on resume()', async () => {
    const srv = await rawServer(answer('whole'));
    const p = pool(srv.port);
    const r = send(p, {}, { data: (c) => c.pause() });
    await until(() => r.chunks.length > 0);
    for (let turn = 0; turn < 20; turn++) await new Promise((r2) => setImmediate(r2));
    assert.deepEqual(r.events, ['start', 'head', 'data']);
    r.controller!.resume();
    assert.equal((await ok(r)).body, 'whole');
  });

  test('pause() stops a large response: nothing is delivered while paused, everything after resume()', { timeout: 10_000 }, async () => {
    const total = 8 * 1024 * 1024;
    const srv = await httpServer((_req, res) => {
      res.setHeader('content-length', total);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const p = pool(srv.port);
    let received = 0;
    let whilePaused = 0;
    let phase: 'before' | 'paused' | 'resumed' = 'before';
    const r = send(p, {}, {
      data: (c, chunk) => {
        received += chunk.length;
        if (phase === 'paused') whilePaused += chunk.length;
        if (phase === 'before' && received < total) {
          c.pause();
          phase = 'paused';
        }
      },
    });
    r.chunks = { push() {}, length: 0 } as unknown as Buffer[]; // count, do not keep 8 MiB
    await until(() => phase === 'paused');
    // The server keeps writing meanwhile; give the loop many turns to deliver what it would.
    for (let turn = 0; turn < 200; turn++) await new Promise((r2) => setImmediate(r2));
    assert.equal(whilePaused, 0);
    assert.ok(received < total);
    phase = 'resumed';
    r.controller!.resume();
    await r.done;
    assert.equal(r.error, undefined);
    assert.equal(received, total);
  });

  test('abort() inside onRequestStart: onResponseError once, nothing written, the connection is reused', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    await ok(send(p));
    const reason = new Error('cancelled by the router');
    const r = send(p, {}, { start: (c) => c.abort(reason) });
    await r.done;
    assert.deepEqual(r.events, ['start', 'error']);
    assert.equal(r.error, reason);
    assert.equal(r.controller!.aborted, true);
    assert.equal(r.controller!.reason, reason);
    await ok(send(p));
    assert.equal(srv.connections, 1);
    assert.equal(srv.requests.length, 2);
  });

  test('abort() after onResponseStart: onResponseError once, no more data, the connection closes', async () => {
    const srv = await rawServer((req) => req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n' + 'x'.repeat(1000)));
    const p = pool(srv.port);
    const reason = new Error('per-try timeout');
    const r = send(p, {}, { head: (c) => c.abort(reason) });
    await r.done;
    await new Promise((r2) => setImmediate(r2));
    assert.deepEqual(r.events, ['start', 'head', 'error']);
    assert.equal(r.error, reason);
    await srv.allClosed();
  });

  test('abort() from inside onResponseData stops delivery at once', async () => {
    const srv = await rawServer((req) => req.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n'));
    const p = pool(srv.port);
    const r = send(p, {}, { data: (c) => c.abort(new Error('enough')) });
    await r.done;
    await new Promise((r2) => setImmediate(r2));
    assert.deepEqual(r.events, ['start', 'head', 'data', 'error']);
    assert.equal(r.body, 'a');
  });

  test('a handler that throws gets onResponseError once; the pool goes on', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    const boom = new Error('handler bug');
    const r = send(p, {}, {
      head: () => {
        throw boom;
      },
    });
    await r.done;
    await new Promise((r2) => setImmediate(r2));
    assert.deepEqual(r.events, ['start', 'head', 'error']);
    assert.equal(r.error, boom);
    assert.equal((await ok(send(p))).body, 'ok');
    const early = send(p, {}, {
      start: () => {
        throw boom;
      },
    });
    await early.done;
    assert.deepEqual([early.events, early.error], [['start', 'error'], boom]);
    assert.equal((await ok(send(p))).body, 'ok');
    assert.equal(srv.connections, 2); // the first handler's connection was closed; the throw in onRequestStart wrote nothing
  });
});

// === requests ===

describe('requests', () => {
  test('head and framing: Buffer body, null bodies, caller framing headers dropped, host kept', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    await ok(send(p, { method: 'POST', path: '/p', headers: { host: 'svc', 'content-length': '999', 'transfer-encoding': 'chunked', connection: 'upgrade', 'keep-alive': 'x', 'x-list': ['1', '2'] }, body: Buffer.from('hello') }));
    await ok(send(p, { method: 'POST', headers: { host: 'svc' }, body: null }));
    await ok(send(p, { method: 'GET', headers: { host: 'svc' }, body: null }));
    await ok(send(p, { method: 'DELETE', headers: {}, body: null }));
    const [post, empty, get, del] = srv.requests;
    assert.equal(post.head, 'POST /p HTTP/1.1\r\nhost: svc\r\nx-list: 1\r\nx-list: 2\r\ncontent-length: 5');
    assert.equal(post.body.toString(), 'hello');
    assert.equal(empty.head, 'POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 0');
    assert.equal(get.head, 'GET / HTTP/1.1\r\nhost: svc');
    assert.equal(del.head, `DELETE / HTTP/1.1\r\nhost: 127.0.0.1:${srv.port}`);
    // A small Buffer body goes out in the head's write: one segment.
    assert.equal(srv.wire[0][0].toString('latin1'), 'POST /p HTTP/1.1\r\nhost: svc\r\nx-list: 1\r\nx-list: 2\r\ncontent-length: 5\r\n\r\nhello');
  });

  test('the proxy\'s own field lines follow the caller\'s fields as given, before the framing', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    const lines = 'x-b3-traceid: 0af7651916cd43dd8448eb211c80319c\r\nx-envoy-peer-metadata-id: sidecar~a\r\n';
    await ok(send(p, { method: 'POST', path: '/p', headers: { host: 'svc', 'x-app': '1' }, proxyHeaderLines: lines, body: Buffer.from('hi') }));
    assert.equal(srv.requests[0].head, 'POST /p HTTP/1.1\r\nhost: svc\r\nx-app: 1\r\nx-b3-traceid: 0af7651916cd43dd8448eb211c80319c\r\nx-envoy-peer-metadata-id: sidecar~a\r\ncontent-length: 2');
  });

  test('a Readable body without content-length goes chunked; with one, as is', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    await ok(send(p, { method: 'PUT', body: Readable.from([Buffer.from('abc'), Buffer.from(''), Buffer.from('defgh')]) }));
    await ok(send(p, { method: 'PUT', headers: { host: 'h', 'content-length': '8' }, body: Readable.from([Buffer.from('abc'), Buffer.from('defgh')]) }));
    const [chunked, sized] = srv.requests;
    assert.equal(chunked.headers['transfer-encoding'], 'chunked');
    assert.equal(chunked.headers['content-length'], undefined);
    assert.equal(chunked.body.toString(), 'abcdefgh');
    const wire = Buffer.concat(srv.wire[0]).toString('latin1');
    assert.ok(wire.includes('\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n'), wire);
    assert.equal(sized.headers['content-length'], '8');
    assert.equal(sized.headers['transfer-encoding'], undefined);
    assert.equal(sized.body.toString(), 'abcdefgh');
    assert.equal(srv.connections, 1);
  });

  test('an http.IncomingMessage body streams through (proxying a client request)', async () => {
    const upstream = await rawServer((req) => req.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${req.body.length}\r\n\r\n${req.body}`));
    const p = pool(upstream.port);
    const front = await httpServer((req, res) => {
      p.dispatch(
        { path: '/', method: 'POST', headers: { host: 'up', 'content-length': req.headers['content-length'] }, body: req },
        {
          onRequestStart() {},
          onResponseStart(_c, status) {
            res.statusCode = status;
          },
          onResponseData(_c, chunk) {
            res.write(chunk);
          },
          onResponseEnd() {
            res.end();
          },
          onResponseError(_c, err) {
            res.destroy(err);
          },
        },
      );
    });
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ port: front.port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': 11 }, agent: false }, (res) => {
        let s = '';
        res.on('data', (c) => (s += c));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.write('hello ');
      setImmediate(() => req.end('world'));
    });
    assert.equal(body, 'hello world');
    assert.equal(upstream.requests[0].headers['content-length'], '11');
  });

  test('an async iterable body goes chunked', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    async function* gen() {
      yield Buffer.from('one ');
      await new Promise((r) => setImmediate(r));
      yield Buffer.from('two');
    }
    await ok(send(p, { method: 'POST', body: gen() as unknown as Readable }));
    assert.equal(srv.requests[0].headers['transfer-encoding'], 'chunked');
    assert.equal(srv.requests[0].body.toString(), 'one two');
  });

  test('a body longer or shorter than its content-length fails the request and the connection', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    const long = await fails(send(p, { method: 'POST', headers: { host: 'h', 'content-length': '3' }, body: Readable.from([Buffer.from('abcd')]) }), 'SNW_ERR_UPSTREAM_REQUEST_BODY', ['start', 'error']);
    assert.match(long.error!.message, /longer than its content-length 3/);
    const short = await fails(send(p, { method: 'POST', headers: { host: 'h', 'content-length': '9' }, body: Readable.from([Buffer.from('abcd')]) }), 'SNW_ERR_UPSTREAM_REQUEST_BODY', ['start', 'error']);
    assert.match(short.error!.message, /ended after 4 of its content-length 9 bytes/);
    await fails(send(p, { method: 'POST', headers: { host: 'h', 'content-length': '1e3' }, body: Readable.from([Buffer.from('abcd')]) }), 'SNW_ERR_UPSTREAM_INVALID_REQUEST', ['error']);
    assert.equal(srv.requests.length, 0); // neither request was completed on the wire
    await srv.allClosed();
  });

  test('a body stream destroyed mid-way (the client went away) fails the request', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    const body = new Readable({ read() {} });
    body.push('partial');
    const r = send(p, { method: 'POST', body });
    await until(() => srv.wire.length > 0 && Buffer.concat(srv.wire[0]).includes('partial'));
    body.destroy();
    await fails(r, 'SNW_ERR_UPSTREAM_REQUEST_BODY', ['start', 'error']);
    assert.match(r.error!.message, /destroyed before its end/);
    const errored = new Readable({ read() {} });
    const r2 = send(p, { method: 'POST', body: errored }, { start: () => setImmediate(() => errored.destroy(new Error('disk on fire'))) });
    await fails(r2, 'SNW_ERR_UPSTREAM_REQUEST_BODY', ['start', 'error']);
    assert.match(r2.error!.message, /failed: disk on fire/);
    // A body that fails while its request still waits for a connection fails it there (no unhandled 'error').
    const early = new Readable({ read() {} });
    const r3 = send(p, { method: 'POST', body: early });
    early.destroy(new Error('gone early'));
    await fails(r3, 'SNW_ERR_UPSTREAM_REQUEST_BODY', ['error']);
    assert.equal(srv.requests.length, 0);
  });

  test('request body backpressure: the body is paused while the socket is full', { timeout: 10_000 }, async () => {
    const chunk = Buffer.alloc(64 * 1024, 'b');
    const chunks = 512; // 32 MiB: more than the loopback buffers hold
    const total = chunks * chunk.length;
    // Reads nothing until told, then counts the bytes (the head is far below one chunk).
    const srv = await track(
      net.createServer({ pauseOnConnect: true }, (socket) => {
        let seen = 0;
        socket.on('data', (c: Buffer) => {
          seen += c.length;
          if (seen > total) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        });
      }),
    );
    const p = pool(srv.port);
    let produced = 0;
    const body = new Readable({
      read() {
        this.push(produced++ < chunks ? chunk : null);
      },
    });
    let pausedOnce!: () => void;
    const paused = new Promise<void>((r) => (pausedOnce = r));
    const pause = body.pause.bind(body);
    body.pause = () => {
      pausedOnce();
      return pause();
    };
    const r = send(p, { method: 'POST', headers: { host: 'h', 'content-length': String(chunks * chunk.length) }, body });
    await paused;
    assert.ok(produced < chunks, 'the producer was stopped before the end');
    for (const s of srv.sockets) s.resume(); // the server starts reading
    assert.equal((await ok(r)).body, 'ok');
    assert.equal(produced, chunks + 1);
  });

  test('a response that arrives before the body is sent is delivered; the connection is not reused', async () => {
    const srv = await rawServer(() => {}); // answered below, once the head arrived
    const p = pool(srv.port);
    const body = new Readable({ read() {} });
    body.push('start of a big upload');
    const r = send(p, { method: 'POST', body });
    await until(() => srv.wire.length > 0 && Buffer.concat(srv.wire[0]).includes('big upload'));
    const socket = [...srv.sockets][0];
    socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!');
    const res = await ok(r);
    assert.deepEqual([res.status, res.body], [413, 'too big!']);
    body.push('more'); // nobody listens any more
    await srv.allClosed();
    assert.equal(p.stats.connected, 0);
  });

  test('CR, LF or NUL in a header, an invalid name or target: refused before any byte is sent', async () => {
    const srv = await rawServer(answer());
    const p = pool(srv.port);
    const bad: Partial<Dispatcher.DispatchOptions>[] = [
      { headers: { host: 'h', 'x-a': 'ok\r\nx-injected: 1' } },
      { headers: { host: 'h', 'x-a': 'a\nb' } },
      { headers: { host: 'h', 'x-a': 'a\0b' } },
      { headers: { host: 'h', 'x-a': ['fine', 'bad\r\n\r\nGET /smuggled HTTP/1.1'] } },
      { headers: { host: 'h\r\nx: y' } },
      { headers: { 'bad name': 'v' } },
      { headers: { 'x-a\r\nx-b': 'v' } },
      { path: '/a b' },
      { path: '/a\r\nGET /b' },
      { method: 'GET /x HTTP/1.1\r\n' as Dispatcher.HttpMethod },
    ];
    for (const options of bad) {
      const r = send(p, options);
      assert.equal(r.events.join(), 'error', 'refused synchronously');
      await fails(r, 'SNW_ERR_UPSTREAM_INVALID_REQUEST', ['error']);
    }
    assert.equal(srv.connections, 0);
  });
});

// === closing ===

describe('close and destroy', () => {
  test('close() lets running and waiting requests finish, refuses new ones, then closes every socket', async () => {
    const held: http.ServerResponse[] = [];
    const srv = await httpServer((_req, res) => held.push(res));
    const p = pool(srv.port, { connections: 1 });
    const running = send(p, { path: '/1' });
    const waiting = send(p, { path: '/2' });
    await until(() => held.length === 1);
    let closed = false;
    const closing = p.close().then(() => (closed = true));
    assert.equal(p.closed, true);
    assert.equal(p.destroyed, false);
    const late = send(p);
    assert.equal(late.events.join(), 'error');
    await fails(late, 'SNW_ERR_UPSTREAM_POOL_CLOSED', ['error']);
    held[0].end('one');
    await ok(running);
    await until(() => held.length === 2);
    assert.equal(closed, false);
    held[1].end('two');
    assert.equal((await ok(waiting)).body, 'two');
    await closing;
    assert.equal(p.stats.connected, 0);
    await srv.allClosed();
  });

  test('destroy() fails every running and waiting request now', async () => {
    const held: http.ServerResponse[] = [];
    const srv = await httpServer((_req, res) => held.push(res));
    const p = pool(srv.port, { connections: 1 });
    const running = send(p);
    const waiting = send(p);
    await until(() => held.length === 1);
    const boom = new Error('shutting down');
    await p.destroy(boom);
    assert.equal(p.destroyed, true);
    assert.equal(p.closed, true);
    await running.done;
    await waiting.done;
    assert.deepEqual([running.events, running.error], [['start', 'error'], boom]);
    assert.deepEqual([waiting.events, waiting.error], [['error'], boom]);
    await fails(send(p), 'SNW_ERR_UPSTREAM_POOL_DESTROYED', ['error']);
    await srv.allClosed();
  });

  test('invalid pool options fail when the pool is made', () => {
    assert.throws(() => new Http1Pool({ host: '127.0.0.1', port: 80 }, { connectTimeoutMs: 1000, connections: 0 }), { code: 'SNW_ERR_UPSTREAM_INVALID_POOL_OPTIONS' });
    assert.throws(() => new Http1Pool({ host: '127.0.0.1', port: 80 }, { connectTimeoutMs: -1, idleTimeoutMs: 0 }), /connectTimeoutMs must be a non-negative number.*idleTimeoutMs must be a positive number/);
  });

  test('the client never loads undici at runtime: its undici imports are type-only (erased)', async () => {
    const dir = new URL('../../src/proxy/upstream/http1/', import.meta.url);
    for (const name of await readdir(dir)) {
      const source = await readFile(new URL(name, dir), 'utf8');
      const imports = source.match(/^import .*$/gm) ?? [];
      assert.deepEqual(imports.filter((line) => /['"]undici['"]/.test(line) && !line.startsWith('import type ')), [], name);
    }
  });
});

describe('request fields are checked all at once, and no field slips through', () => {
  // Names and values are checked as one concatenation each; a separator-based check would
  // let a name that contains the separator pass as two good names.
  for (const [what, headers] of [
    ['a comma in a name', { 'x-a,b': '1' }],
    ['a newline in a name', { 'x-a\nb': '1' }],
    ['an empty name', { '': '1' }],
    ['a CRLF in the last value', { 'x-a': '1', 'x-b': 'ok\r\nx-evil: 1' }],
    ['a NUL in an array value', { 'x-a': ['ok', 'b\0ad'] }],
  ] as const) {
    test(`${what} is refused before any connection is made`, async () => {
      const pool = new Http1Pool({ host: '127.0.0.1', port: 1 }, { connectTimeoutMs: 1000 });
      const err = await new Promise<Error>((resolve) => {
        pool.dispatch({ path: '/', method: 'GET', headers: headers as unknown as Record<string, string> }, {
          onRequestStart() {},
          onResponseStart() {},
          onResponseData() {},
          onResponseEnd() {},
          onResponseError(_c, e) {
            resolve(e);
          },
        });
      });
      assert.equal((err as { code?: string }).code, 'SNW_ERR_UPSTREAM_INVALID_REQUEST');
      await pool.destroy();
    });
  }
});
