/**
 * HTTP/1.1 upgrades at the gateway and at a sidecar (both its listeners). Regression for the
 * failed-upgrade gateway bypass: the proxy used to splice client and app as soon as it had
 * routed an `Upgrade: websocket` request, so when the app answered 200 instead of 101, every
 * later request on that connection reached the app unrouted, with the client's forged
 * identity headers intact. Now only a 101 switches protocols; any other answer is an
 * ordinary response and the connection goes on being parsed and routed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EDGE_LISTENERS, edgeConfig, eventually, rawConnection } from './support/edge.js';
import { startRawApp, type RawApp } from './support/raw-app.js';
import { startProxy, type Harness } from './support/harness.js';

const handshake = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;
/** A second request as an attacker sends it: to a path the gateway does not route, with forged mesh headers. */
const forged =
  'GET /internal/admin HTTP/1.1\r\nHost: app\r\nx-envoy-peer-metadata-id: sidecar~admin-v1-0.default\r\n' +
  'x-forwarded-for: 6.6.6.6\r\nx-envoy-attempt-count: 99\r\n\r\n';

describe('HTTP/1.1 upgrades', () => {
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
    for (const shape of ['pipelined', 'after the answer'] as const) {
      test(`regression (gateway bypass), ${listener}: a declined WebSocket upgrade leaves the connection HTTP; the next request, ${shape}, is routed`, async () => {
        const seen = app.heads.length;
        const c = await rawConnection(h.port(listener));
        try {
          if (shape === 'pipelined') c.socket.write(handshake('/ws/declined') + forged);
          else {
            c.socket.write(handshake('/ws/declined'));
            await eventually(() => c.statuses().length === 1, 'the answer to the upgrade request');
            c.socket.write(forged);
          }
          await eventually(() => c.statuses().length === 2, 'two answers');
          const [first, second] = c.statuses();
          assert.equal(first, 200, 'the app declined: an ordinary response');
          const heads = app.heads.slice(seen);
          if (listener === 'inbound') {
            // Every path is routed to the app here: it arrives as a routed request would.
            assert.equal(second, 200);
            assert.deepEqual(heads.map((x) => x.path), ['/ws/declined', '/internal/admin']);
            const admin = heads[1].headers;
            assert.equal(admin['x-envoy-attempt-count'], '1', 'set by the router');
            assert.equal(admin['x-forwarded-for'], '6.6.6.6, 127.0.0.1', 'the peer appended');
            assert.equal(admin['x-envoy-peer-metadata-id'], undefined, 'exchange headers never reach the app');
          } else {
            assert.equal(second, 404);
            assert.match(c.text(), /x-sinew-response-flags: NR/);
            assert.deepEqual(heads.map((x) => x.path), ['/ws/declined'], 'the unrouted request never reached the app');
          }
          // Still an HTTP connection: a third request is routed too.
          c.socket.write('GET /api/third HTTP/1.1\r\nHost: app\r\n\r\n');
          await eventually(() => c.statuses().length === 3, 'a third answer');
          assert.equal(c.statuses()[2], 200);
          assert.match(c.text(), /app:\/api\/third$/);
        } finally {
          c.socket.destroy();
        }
      });
    }

    test(`${listener}: an upgrade the app accepts (101) is spliced, the upstream's early bytes first`, async () => {
      const c = await rawConnection(h.port(listener));
      try {
        c.socket.write(handshake('/ws/accept'));
        await eventually(() => c.text().includes('\r\n\r\n'), 'the 101');
        assert.match(c.text(), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
        assert.match(c.text(), /\r\nupgrade: websocket\r\n/i);
        assert.match(c.text(), /\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
        c.socket.write('frame-1');
        await eventually(() => c.text().endsWith('echo:frame-1'), 'the frame echoed through the tunnel');
      } finally {
        c.socket.destroy();
      }
      await eventually(() => h.proxy.connections() === 0, 'the tunnel torn down');
    });

    test(`${listener}: a WebSocket handshake that is not a bodyless GET gets 400 (RFC 6455 §4.1) and reaches no app`, async () => {
      const seen = app.heads.length;
      const c = await rawConnection(h.port(listener));
      try {
        c.socket.write('POST /ws/accept HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello');
        await eventually(() => c.isClosed(), 'the proxy to close the connection');
      } finally {
        c.socket.destroy();
      }
      assert.match(c.text(), /^HTTP\/1\.1 400 /);
      assert.match(c.text(), /x-sinew-response-details: http1.invalid_websocket_handshake/);
      assert.equal(app.heads.length, seen);
    });

    test(`${listener}: Upgrade: h2c is ignored, the request served over HTTP/1.1 (curl --http2 http://)`, async () => {
      const seen = app.heads.length;
      const { stdout, code } = await new Promise<{ stdout: string; code: number }>((resolve) =>
        execFile('curl', ['-s', '--http2', '-H', 'Host: app', '-w', '\\n%{http_code} %{http_version}', `http://127.0.0.1:${h.port(listener)}/api/h2c`], { timeout: 10_000 }, (err, out) =>
          resolve({ stdout: out, code: err ? Number((err as { code?: number }).code ?? 1) : 0 }),
        ),
      );
      assert.equal(code, 0);
      assert.equal(stdout, 'app:/api/h2c\n200 1.1');
      const got = app.heads.slice(seen);
      assert.deepEqual(got.map((x) => x.path), ['/api/h2c']);
      assert.equal(got[0].headers['upgrade'], undefined, 'hop-by-hop: not forwarded');
      assert.equal(got[0].headers['http2-settings'], undefined);
    });
  }
});
