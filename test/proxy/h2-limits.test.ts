/**
 * Request header size limits over HTTP/2 (maxRequestHeadersKb): like HTTP/1.1, a request past
 * the limit gets a labelled 431 and never reaches the upstream; far past it, node resets the
 * stream (ENHANCE_YOUR_CALM), as Envoy's HTTP/2 codec does. Either way the session lives on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { protocols } from './support/client.js';
import { cluster, endpoint, meshConfig, route, routeTo } from './support/config.js';
import { until } from './support/drive.js';
import { startEcho, type EchoServer } from './support/echo.js';
import { startProxy, type Harness } from './support/harness.js';

const ECHO = 'outbound|80||echo.default.svc.cluster.local';
const KB = 1024;

describe('request header limits over HTTP/2', () => {
  let echo: EchoServer;
  let h: Harness;
  const config = (): ProxyConfig =>
    meshConfig([route('r', {}, routeTo(ECHO))], [cluster(ECHO)], [{ clusterName: ECHO, endpoints: [endpoint(echo.port)] }], { maxRequestHeadersKb: 8 });
  before(async () => {
    echo = await startEcho('echo');
    h = await startProxy(config());
  });
  after(async () => {
    await h.close();
    await echo.close();
  });

  /** One session for a whole test: what happens to one stream must not end the others. */
  const session = async () => {
    // Node's client refuses to send a header block past 64 KiB by default; the proxy must see it.
    const s = http2.connect(`http://127.0.0.1:${h.port()}`, { maxSendHeaderBlockLength: 1024 * KB });
    s.on('error', () => {});
    await once(s, 'remoteSettings');
    const request = (headers: Record<string, string>) =>
      new Promise<{ status: number; headers: http2.IncomingHttpHeaders; rstCode: number }>((resolve) => {
        const stream = s.request({ ':path': '/', ':authority': 'echo', ...headers });
        let status = 0;
        let response: http2.IncomingHttpHeaders = {};
        stream.on('response', (hs) => { status = Number(hs[':status']); response = hs; });
        stream.on('error', () => {});
        stream.resume();
        stream.on('close', () => resolve({ status, headers: response, rstCode: stream.rstCode ?? 0 }));
      });
    return { request, close: () => new Promise<void>((resolve) => s.close(() => resolve())) };
  };

  for (const proto of protocols) {
    test(`over ${proto.name}: headers past maxRequestHeadersKb get a labelled 431`, async () => {
      const before = echo.seen.length;
      const c = proto.client(h.port());
      try {
        const res = await c.request({ headers: { 'x-flood': 'a'.repeat(16 * KB) } });
        assert.equal(res.status, 431);
        assert.equal(res.headers['x-sinew-response-flags'], 'DPE');
        assert.match(String(res.headers['x-sinew-response-details']), /headers_too_large$/);
      } finally {
        await c.close();
      }
      assert.equal(echo.seen.length, before, 'nothing reached the upstream');
    });
  }

  test('the limit counts the whole header list; the session keeps serving after a 431', async () => {
    const c = await session();
    try {
      // Many headers that are each small add up past 8 KiB.
      const many: Record<string, string> = {};
      for (let i = 0; i < 20; i++) many[`x-part-${i}`] = 'b'.repeat(500);
      assert.equal((await c.request(many)).status, 431);
      assert.equal((await c.request({ 'x-fits': 'c'.repeat(6 * KB) })).status, 200);
      const grpc = await c.request({ 'content-type': 'application/grpc', 'x-flood': 'a'.repeat(16 * KB) });
      assert.equal(grpc.status, 200, 'gRPC callers get a trailers-only reply');
      assert.ok(grpc.headers['grpc-status'] !== undefined && grpc.headers['grpc-status'] !== '0');
      assert.equal(grpc.headers['x-sinew-response-details'], 'http2.headers_too_large');
    } finally {
      await c.close();
    }
    assert.ok(h.proxy.stats.get('downstream_rq_header_overflow') >= 2);
  });

  test('far past the limit the stream is reset (ENHANCE_YOUR_CALM), not the session', async () => {
    const c = await session();
    try {
      const huge: Record<string, string> = {};
      for (let i = 0; i < 10; i++) huge[`x-huge-${i}`] = 'd'.repeat(15 * KB);
      const res = await c.request(huge);
      assert.equal(res.status, 0, 'no response');
      assert.equal(res.rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      assert.equal((await c.request({})).status, 200, 'the same session still serves');
    } finally {
      await c.close();
    }
    await until(() => h.proxy.connections() === 0, 'proxy connections to close');
  });
});
