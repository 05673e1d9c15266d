/**
 * HTTP/2 floods at the gateway and at both listeners of a sidecar: rapid reset (streams opened
 * and reset at once, CVE-2023-44487), resets of streams already started, the CONTINUATION
 * flood (nghttp2 may answer it with a GOAWAY and stop reading: the PING a quiet session must
 * answer then ends it), and a peer's GOAWAY with a stream that never ends. Regression: after a
 * rapid reset nghttp2 sent GOAWAY and stopped reading, and the socket stayed open for good,
 * while the reset streams had already gone to the app.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import { ManualClock } from '../../src/core/clock.js';
import { EDGE_LISTENERS, edgeConfig, eventually } from './support/edge.js';
import { FLAG, FRAME, filler, frame, goaway, rawH2, requestBlock, rstStream } from './support/h2-frames.js';
import { startRawApp, type RawApp } from './support/raw-app.js';
import { startProxy, type Harness } from './support/harness.js';

const DRAIN_MS = 500;
/** A quiet session is sent a PING after this (h2-sessions.ts); with DRAIN_MS, what bounds a session nghttp2 gave up on. */
const IDLE_MS = 1_000;

describe('HTTP/2 floods', () => {
  let app: RawApp;
  let h: Harness;
  before(async () => {
    app = await startRawApp();
    h = await startProxy(edgeConfig(app.port, { drainTimeoutMs: DRAIN_MS, streamIdleTimeoutMs: IDLE_MS }));
  });
  after(async () => {
    await h.close();
    await app.close();
  });

  const reached = (prefix: string) => app.paths().filter((p) => p.startsWith(prefix)).length;

  /** A well-behaved client on its own session: every request answered 200 while `attack` runs. */
  async function servedThroughout(port: number, attack: Promise<void>): Promise<void> {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    let done = false;
    let served = 0;
    const normal = (async () => {
      while (!done || served === 0) {
        const stream = session.request({ ':path': `/api/normal-${served}`, ':authority': 'app' });
        const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
        stream.resume();
        assert.equal(headers[':status'], 200);
        served++;
      }
    })();
    try {
      await attack;
    } finally {
      done = true;
      await normal.finally(() => session.destroy());
    }
    assert.ok(served > 0);
  }

  for (const listener of EDGE_LISTENERS) {
    test(`${listener}: regression: a rapid reset (2,000 streams opened and reset in one write) starts none, and the connection is closed`, async () => {
      const path = `/api/rr-${listener}`;
      const before = h.proxy.stats.get('downstream_rq_too_many_premature_resets');
      const c = await rawH2(h.port(listener));
      await servedThroughout(
        h.port(listener),
        (async () => {
          const frames: Buffer[] = [];
          for (let i = 0; i < 2000; i++) frames.push(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1 + 2 * i, requestBlock(path, 'app')), rstStream(1 + 2 * i));
          c.socket.write(Buffer.concat(frames));
          await eventually(() => c.isClosed(), 'the proxy to close the attack connection', 5_000);
        })(),
      );
      // A stream whose reset came in a later read than its HEADERS may start: a handful at most.
      assert.ok(reached(path) < 20, `${reached(path)} reset streams reached the app`);
      assert.equal(h.proxy.stats.get('downstream_rq_too_many_premature_resets') - before, 1);
    });

    test(`${listener}: streams reset after they started count too: the connection is closed past Envoy's premature-reset limit`, async () => {
      // A stream's lifetime decides whether its reset is premature: on a clock that does not
      // move, every one is, however long the streams take to reach the app here.
      const timed = await startProxy(edgeConfig(app.port, { drainTimeoutMs: DRAIN_MS, streamIdleTimeoutMs: IDLE_MS }), { clock: new ManualClock() });
      try {
        const path = `/api/hang-late-${listener}`;
        const c = await rawH2(timed.port(listener));
        const ids = Array.from({ length: 300 }, (_, i) => 1 + 2 * i);
        c.socket.write(Buffer.concat(ids.map((id) => frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, id, requestBlock(path, 'app')))));
        // Only to end a hang: 300 streams through the proxy take seconds on a loaded machine.
        await eventually(() => reached(path) === 300, 'the streams to reach the app', 60_000);
        c.socket.write(Buffer.concat(ids.map((id) => rstStream(id))));
        await eventually(() => c.isClosed(), 'the proxy to close the connection', 5_000);
        // The proxy's counter says why it closed. Its GOAWAY may not be read here: closing a
        // socket with unread bytes (resets still arriving) makes the kernel send a reset,
        // which can discard the GOAWAY before a busy test process reads it. When read, the
        // first is ENHANCE_YOUR_CALM (node's own NO_ERROR one may follow).
        assert.equal(timed.proxy.stats.get('downstream_rq_too_many_premature_resets'), 1);
        const codes = c.frames().filter((f) => f.type === FRAME.GOAWAY).map((f) => f.payload.readUInt32BE(4));
        assert.ok(codes.length === 0 || codes[0] === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `GOAWAY codes ${codes.join(', ')}`);
      } finally {
        await timed.close();
      }
    });

    test(`${listener}: a CONTINUATION flood is cut off, whatever nghttp2 made of it, and reaches no app`, async () => {
      const path = `/api/cont-${listener}`;
      const c = await rawH2(h.port(listener));
      c.socket.write(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, requestBlock(path, 'app')));
      const block = frame(FRAME.CONTINUATION, 0, 1, filler(100));
      // The attacker's pace, not a wait for a condition.
      const flood = setInterval(() => c.socket.writable && c.socket.write(block), 1);
      try {
        // nghttp2 may end the session itself (node then closes it) or send GOAWAY and stop
        // reading (the PING it then cannot answer ends it): either way, within these bounds.
        await servedThroughout(h.port(listener), eventually(() => c.isClosed(), 'the proxy to close the flooding connection', IDLE_MS + DRAIN_MS + 3_000));
      } finally {
        clearInterval(flood);
        c.socket.destroy();
      }
      assert.equal(reached(path), 0);
    });

    test(`${listener}: after the peer's GOAWAY a session whose stream never ends is closed`, async () => {
      // Node ends such a session at once (its stream ends DC); the drain timeout is the bound
      // behind that. The stream idle timeout here cannot end the stream first, and no bound
      // is measured against the clock: a session left open (the bug) fails the deadline, which
      // only ends the wait, on a machine of any load.
      const drained = await startProxy(edgeConfig(app.port, { drainTimeoutMs: DRAIN_MS, streamIdleTimeoutMs: 120_000 }));
      try {
        const c = await rawH2(drained.port(listener));
        const path = `/api/hang-goaway-${listener}`;
        c.socket.write(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, requestBlock(path, 'app')));
        await eventually(() => reached(path) === 1, 'the stream to reach the app');
        c.socket.write(goaway(1));
        await eventually(() => c.isClosed(), 'the proxy to close the connection', 30_000);
        const endedByProxy = drained.proxy.stats.get('downstream_rq_flag_DC') + drained.proxy.stats.get('downstream_cx_drain_close');
        assert.ok(endedByProxy >= 1, 'the proxy ended the session (its stream flagged DC, or the drain timeout)');
      } finally {
        await drained.close();
      }
    });
  }

  test('nothing is left open', async () => {
    await eventually(() => h.proxy.connections() === 0, 'the proxy to hold no connection');
  });
});
