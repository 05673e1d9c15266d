/**
 * Slow clients and silent upstreams, at the gateway and at both listeners of a sidecar (each
 * case runs at the three at once), over both HTTP/1.1 codecs and HTTP/2: Envoy's stream idle
 * timeout and request timeout apply to request bodies as well as heads. A body that stalls
 * gets 408 (flag SI), one that trickles in past the request timeout gets 408
 * (`request_overall_timeout`), an upstream that never answers gets 504 (flag SI); an HTTP/1.1
 * connection answered before its request was in is closed, an HTTP/2 stream reset. Before, a
 * stalled or trickling body held its connection for as long as the client liked (an idle
 * timeout cut it without an answer), and nothing bounded a trickle at all.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import { EDGE_LISTENERS, edgeConfig, eventually, rawConnection, type EdgeListener } from './support/edge.js';
import { startRawApp, type RawApp } from './support/raw-app.js';
import { startProxy, type Harness } from './support/harness.js';

// Far apart from each other and from the trickle's pace, so that a loaded machine's pauses
// cannot make one timeout pass for the other.
const IDLE_MS = 1_000;
const REQUEST_MS = 3_000;

const codecs = {
  sinew: { head: 'POST /api/slow HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\nfirst ten.', bit: 'x' },
  // A chunked body is what sends a request to node's parser (h1-server.ts hands it over).
  node: { head: 'POST /api/slow HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\na\r\nfirst ten.\r\n', bit: '1\r\nx\r\n' },
};

describe('slow clients and silent upstreams', () => {
  let app: RawApp;
  let h: Harness;
  before(async () => {
    app = await startRawApp();
    h = await startProxy(edgeConfig(app.port, { streamIdleTimeoutMs: IDLE_MS, requestTimeoutMs: REQUEST_MS }));
  });
  after(async () => {
    await h.close();
    await app.close();
  });

  /** Runs `check` at every edge listener at once. */
  const everywhere = async (check: (listener: EdgeListener) => Promise<void>): Promise<void> => {
    await Promise.all(EDGE_LISTENERS.map(check));
  };

  /** Sends `head` (and optionally trickles `bit` every `everyMs`); resolves with the answer once the proxy closed the connection. */
  async function slowRequest(listener: EdgeListener, head: string, trickle?: { everyMs: number; bit: string }): Promise<{ text: string; ms: number }> {
    const c = await rawConnection(h.port(listener));
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      c.socket.write(head);
      // The attacker's pace, not a wait for a condition.
      if (trickle) timer = setInterval(() => c.socket.writable && c.socket.write(trickle.bit), trickle.everyMs);
      await eventually(() => c.isClosed(), `${listener}: the proxy to answer and close`, 15_000);
      return { text: c.text(), ms: Date.now() - started };
    } finally {
      clearInterval(timer);
      c.socket.destroy();
    }
  }

  for (const [codec, { head, bit }] of Object.entries(codecs)) {
    test(`HTTP/1.1 (${codec} codec): a body that stalls gets 408 SI after the stream idle timeout; the connection closes`, () =>
      everywhere(async (listener) => {
        const { text, ms } = await slowRequest(listener, head);
        assert.match(text, /^HTTP\/1\.1 408 /, `${listener}: ${text}`);
        assert.match(text, /\r\nx-sinew-response-flags: SI\r\n/i, listener);
        assert.match(text, /\r\nx-sinew-response-details: stream_idle_timeout\r\n/i, listener);
        assert.ok(ms >= IDLE_MS - 50, `${listener}: answered after ${ms} ms`);
      }));

    test(`HTTP/1.1 (${codec} codec): a body that trickles in gets 408 after the request timeout; the connection closes`, () =>
      everywhere(async (listener) => {
        const { text, ms } = await slowRequest(listener, head, { everyMs: 50, bit });
        assert.match(text, /^HTTP\/1\.1 408 /, `${listener}: ${text}`);
        assert.match(text, /\r\nx-sinew-response-details: request_overall_timeout\r\n/i, `${listener}, after ${ms} ms: ${text}`);
        assert.ok(ms >= REQUEST_MS - 50, `${listener}: answered after ${ms} ms`);
      }));
  }

  test('HTTP/1.1: an upstream that never answers gets 504 SI after the stream idle timeout; the connection serves on', () =>
    everywhere(async (listener) => {
      const c = await rawConnection(h.port(listener));
      try {
        c.socket.write('GET /api/hang HTTP/1.1\r\nHost: app\r\n\r\n');
        await eventually(() => c.statuses().length === 1, `${listener}: an answer`);
        assert.equal(c.statuses()[0], 504, listener);
        assert.match(c.text(), /\r\nx-sinew-response-flags: SI\r\n/i, listener);
        // The request was in: the connection carries the next one.
        c.socket.write('GET /api/next HTTP/1.1\r\nHost: app\r\n\r\n');
        await eventually(() => c.statuses().length === 2, `${listener}: a second answer`);
        assert.equal(c.statuses()[1], 200, listener);
      } finally {
        c.socket.destroy();
      }
    }));

  test('HTTP/2: a stream whose body stalls gets 408 SI and is reset; the session serves on', () =>
    everywhere(async (listener) => {
      const session = http2.connect(`http://127.0.0.1:${h.port(listener)}`);
      session.on('error', () => {});
      try {
        await once(session, 'remoteSettings');
        const stream = session.request({ ':method': 'POST', ':path': '/api/slow', ':authority': 'app', 'content-length': '1000' }, { endStream: false });
        stream.on('error', () => {});
        stream.write('first ten.');
        const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
        assert.equal(headers[':status'], 408, listener);
        assert.equal(headers['x-sinew-response-flags'], 'SI', listener);
        stream.resume();
        await eventually(() => stream.closed, `${listener}: the stream to close`);
        const ok = session.request({ ':path': '/api/after', ':authority': 'app' });
        const [again] = (await once(ok, 'response')) as [http2.IncomingHttpHeaders];
        ok.resume();
        assert.equal(again[':status'], 200, listener);
      } finally {
        session.destroy();
      }
    }));

  test('nothing is left open', async () => {
    await eventually(() => h.proxy.connections() === 0, 'the proxy to hold no connection');
  });
});
