/**
 * What the proxy refuses in a request, at the gateway and at both listeners of a sidecar, over
 * both HTTP/1.1 codecs (sinew's own for plain requests, node's for the rest: a chunked body
 * sends a request there) and HTTP/2: too many header fields (Envoy's max_request_headers_count,
 * 100 by default: node's parser used to forward the first 2000 and drop the rest), a bare LF
 * as a line end (answered at once, not after the headers timeout), and two Host fields
 * (RFC 9112 §3.2). Every refusal is a labelled 4xx that reaches no app.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import { EDGE_LISTENERS, edgeConfig, eventually, rawConnection, type EdgeListener } from './support/edge.js';
import { startRawApp, type RawApp } from './support/raw-app.js';
import { startProxy, type Harness } from './support/harness.js';

/** `n` header field lines, Host first. */
function fields(n: number): string {
  let out = 'Host: app\r\n';
  for (let i = 1; i < n; i++) out += `x-f${i}: v\r\n`;
  return out;
}

describe('request limits', () => {
  let app: RawApp;
  let h: Harness;
  before(async () => {
    app = await startRawApp();
    h = await startProxy(edgeConfig(app.port));
  });
  after(async () => {
    await h.close();
    await app.close();
  });

  /** One raw HTTP/1.1 exchange; resolves with what came back once the proxy closed or answered `answers` times. */
  async function exchange(listener: EdgeListener, data: string, answers = 1): Promise<string> {
    const c = await rawConnection(h.port(listener));
    try {
      c.socket.write(data);
      await eventually(() => c.isClosed() || c.statuses().length >= answers, 'an answer', 5_000);
      return c.text();
    } finally {
      c.socket.destroy();
    }
  }

  for (const listener of EDGE_LISTENERS) {
    for (const codec of ['sinew', 'node'] as const) {
      // A chunked body is what sends a request to node's parser (h1-server.ts hands it over);
      // Transfer-Encoding is one of the `n` fields.
      const request = (n: number) =>
        codec === 'sinew' ? `GET /api/count HTTP/1.1\r\n${fields(n)}\r\n` : `POST /api/count HTTP/1.1\r\n${fields(n - 1)}Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n`;

      test(`${listener}, HTTP/1.1 (${codec} codec): 100 header fields pass, 101 get 431 DPE and reach no app`, async () => {
        assert.match(await exchange(listener, request(100)), /^HTTP\/1\.1 200 /);
        const seen = app.heads.length;
        const refused = await exchange(listener, request(101));
        assert.match(refused, /^HTTP\/1\.1 431 /);
        assert.match(refused, /\r\nx-sinew-response-flags: DPE\r\n/);
        assert.match(refused, /\r\nx-sinew-response-details: http1.too_many_headers\r\n/);
        assert.equal(app.heads.length, seen);
      });
    }

    test(`${listener}, HTTP/1.1: a flood of 5,000 tiny header fields (under the size limit) gets 431, not the first 2000 forwarded`, async () => {
      const seen = app.heads.length;
      const refused = await exchange(listener, `GET /api/flood HTTP/1.1\r\nHost: app\r\n${'a:b\r\n'.repeat(5000)}\r\n`);
      assert.match(refused, /^HTTP\/1\.1 431 /);
      assert.equal(app.heads.length, seen);
    });

    test(`${listener}, HTTP/2: 100 header fields pass, 101 get 431 DPE; the session serves on`, async () => {
      const session = http2.connect(`http://127.0.0.1:${h.port(listener)}`);
      session.on('error', () => {});
      try {
        await once(session, 'remoteSettings');
        const ask = (n: number) =>
          new Promise<{ status: number; headers: http2.IncomingHttpHeaders }>((resolve, reject) => {
            const headers: Record<string, string> = { ':path': '/api/h2', ':authority': 'app' };
            for (let i = 0; i < n; i++) headers[`x-f${i}`] = 'v';
            const stream = session.request(headers);
            stream.on('response', (hs) => resolve({ status: Number(hs[':status']), headers: hs }));
            stream.on('error', reject);
            stream.resume();
          });
        assert.equal((await ask(100)).status, 200);
        const seen = app.heads.length;
        const refused = await ask(101);
        assert.equal(refused.status, 431);
        assert.equal(refused.headers['x-sinew-response-flags'], 'DPE');
        assert.equal(refused.headers['x-sinew-response-details'], 'http2.too_many_headers');
        assert.equal(app.heads.length, seen);
        assert.equal((await ask(3)).status, 200);
      } finally {
        session.destroy();
      }
    });

    test(`${listener}: a request whose lines end in a bare LF gets 400 at once, not after the headers timeout`, async () => {
      const seen = app.heads.length;
      const reply = await exchange(listener, 'GET /api/lf HTTP/1.1\nHost: app\n\n');
      assert.match(reply, /^HTTP\/1\.1 400 /);
      assert.match(reply, /\r\nx-sinew-response-flags: DPE\r\n/);
      assert.equal(app.heads.length, seen);
    });

    test(`${listener}: two Host fields get 400 (RFC 9112 §3.2) and reach no app`, async () => {
      const seen = app.heads.length;
      const reply = await exchange(listener, 'GET /api/hosts HTTP/1.1\r\nHost: app\r\nHost: evil.example\r\n\r\n');
      assert.match(reply, /^HTTP\/1\.1 400 /);
      assert.match(reply, /\r\nx-sinew-response-details: http1.duplicate_host\r\n/);
      assert.equal(app.heads.length, seen);
    });
  }
});

describe('requests pipelined behind a refused one', () => {
  let app: RawApp;
  let h: Harness;
  before(async () => {
    app = await startRawApp();
    h = await startProxy(edgeConfig(app.port));
  });
  after(async () => {
    await h.close();
    await app.close();
  });

  for (const listener of EDGE_LISTENERS) {
    for (const [name, first] of [
      ['two Host fields', 'GET /api/first HTTP/1.1\r\nHost: app\r\nHost: evil.example\r\n\r\n'],
      ['no Host field', 'GET /api/first HTTP/1.1\r\n\r\n'],
      ['too many fields', `GET /api/first HTTP/1.1\r\n${fields(101)}\r\n`],
    ] as const) {
      test(`${listener}: regression: after a refused request (${name}) nothing pipelined behind it is served`, async () => {
        const seen = app.heads.length;
        const c = await rawConnection(h.port(listener));
        try {
          c.socket.write(first + 'GET /api/pipelined HTTP/1.1\r\nHost: app\r\n\r\n');
          await eventually(() => c.isClosed(), 'the proxy to close the connection', 5_000);
          assert.deepEqual(c.statuses().map((s) => Math.floor(s / 100)), [4]);
          assert.equal(app.heads.length, seen, 'nothing reached the app');
        } finally {
          c.socket.destroy();
        }
      });
    }
  }
});
