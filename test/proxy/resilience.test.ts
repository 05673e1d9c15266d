/**
 * Resilience and traffic-policy cases: fault injection (RS-05..07), retries (RS-09, conditions,
 * budgets, per-try timeouts, backoff), route timeouts (UT), mirroring (MR-02, MR-03), weighted
 * and sticky splits, CORS (vs-echo-cors.yaml). Time and chance are injected (ManualClock,
 * SeededRandom); each runs over HTTP/1.1 and HTTP/2.
 */
import { HTTP_FILTERS } from '../../src/api/proxy-config.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import type { ProxyConfig, Route, RetryPolicy } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { protocols, type Client } from './support/client.js';
import { cluster, endpoint, meshConfig, route, routeTo, to } from './support/config.js';
import { drive, until } from './support/drive.js';
import { deadPort, startEcho, type EchoReply, type EchoServer } from './support/echo.js';
import { startProxy, type Harness } from './support/harness.js';

const ECHO = 'outbound|80||echo.default.svc.cluster.local';
const FLAKY = 'outbound|80||flaky.default.svc.cluster.local';
const V1 = 'outbound|80|v1|echo.default.svc.cluster.local';
const V2 = 'outbound|80|v2|echo.default.svc.cluster.local';
const V3 = 'outbound|80|v3|echo.default.svc.cluster.local';

const retry = (extra: Partial<RetryPolicy> = {}): RetryPolicy => ({ attempts: 3, perTryTimeoutMs: 2000, retryOn: ['5xx'], backoffBaseMs: 25, avoidPreviousHosts: true, ...extra });

for (const proto of protocols) {
  describe(`resilience over ${proto.name}`, () => {
    let good: EchoServer;
    let bad: EchoServer;
    let v2: EchoServer;
    let v3: EchoServer;
    before(async () => {
      good = await startEcho('flaky-good');
      bad = await startEcho('flaky-bad', { status: 503 });
      v2 = await startEcho('echo-v2');
      v3 = await startEcho('echo-v3');
    });
    after(async () => {
      await Promise.all([good.close(), bad.close(), v2.close(), v3.close()]);
    });

    const config = (routes: Route[], endpointsOf: Record<string, number[]> = {}): ProxyConfig => {
      const eps: Record<string, number[]> = { [ECHO]: [good.port], [FLAKY]: [bad.port, good.port], [V1]: [good.port], [V2]: [v2.port], [V3]: [v3.port], ...endpointsOf };
      return meshConfig(routes, Object.keys(eps).map((n) => cluster(n)), Object.entries(eps).map(([clusterName, ports]) => ({ clusterName, endpoints: ports.map((p) => endpoint(p)) })));
    };

    async function withProxy(cfg: ProxyConfig, opts: { clock?: ManualClock; seed?: number }, fn: (c: Client, h: Harness) => Promise<void>): Promise<void> {
      const h = await startProxy(cfg, { clock: opts.clock, random: new SeededRandom(opts.seed ?? 7) });
      const c = proto.client(h.port());
      try {
        await fn(c, h);
      } finally {
        await c.close();
        await h.close();
      }
    }
    const seen = (body: string): EchoReply => JSON.parse(body) as EchoReply;
    const many = async (c: Client, n: number, req = { path: '/' }) => {
      const out: number[] = [];
      for (let i = 0; i < n; i += 50) {
        const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => c.request(req)));
        for (const r of batch) out.push(r.status);
      }
      return out;
    };

    test('RS-06: fault abort at 50% over 1000 requests (seeded), 503 share 50% +- 5pp', async () => {
      await withProxy(config([route('default/echo/0', {}, routeTo(ECHO), { perFilterConfig: { [HTTP_FILTERS.fault]: { abort: { httpStatus: 503, percentage: 50 } } } })]), { seed: 42 }, async (c) => {
        const statuses = await many(c, 1000);
        const aborted = statuses.filter((s) => s === 503).length;
        assert.ok(aborted >= 450 && aborted <= 550, `503 share ${aborted}/1000`);
        assert.equal(statuses.filter((s) => s === 200).length, 1000 - aborted);
      });
    });

    test('RS-09: without retries a 503 passes through; with attempts 3 on 5xx every request succeeds on the other host', async () => {
      await withProxy(config([route('default/flaky/0', {}, routeTo(FLAKY))]), {}, async (c) => {
        const statuses = await many(c, 100);
        const failed = statuses.filter((s) => s === 503).length;
        assert.ok(failed >= 35 && failed <= 65, `503 share ${failed}/100 without retries`);
      });
      const clock = new ManualClock(1_000);
      await withProxy(config([route('default/flaky/0', {}, routeTo(FLAKY, { retry: retry() }))]), { clock }, async (c, h) => {
        let retried = 0;
        for (let i = 0; i < 100; i++) {
          const r = await drive(clock, c.request({ path: '/' }));
          assert.equal(r.status, 200);
          const s = seen(r.body);
          assert.equal(s.name, 'flaky-good');
          if (s.headers['x-envoy-attempt-count'] === '2') retried++;
          else assert.equal(s.headers['x-envoy-attempt-count'], '1');
        }
        assert.ok(retried >= 35, `retried ${retried}`);
        assert.ok(h.proxy.stats.get('upstream_rq_retry') >= retried);
      });
    });

    test('retries exhausted on 5xx: the last upstream response passes through, without URX', async () => {
      const clock = new ManualClock();
      await withProxy(config([route('r', {}, routeTo(FLAKY, { retry: retry({ attempts: 2 }) }))], { [FLAKY]: [bad.port] }), { clock }, async (c) => {
        const before = bad.seen.length;
        const r = await drive(clock, c.request({ path: '/' }));
        assert.equal(r.status, 503);
        assert.equal(r.headers['x-echo-name'], 'flaky-bad');
        assert.equal(r.headers['x-sinew-response-flags'], undefined);
        assert.equal(bad.seen.length - before, 3);
      });
    });

    test('connect failures: retried to a live host; with none left 503 UF,URX', async () => {
      const dead = await deadPort();
      const clock = new ManualClock();
      await withProxy(config([route('r', {}, routeTo(FLAKY, { retry: retry({ retryOn: ['connect-failure'] }) }))], { [FLAKY]: [dead, good.port] }), { clock }, async (c) => {
        for (let i = 0; i < 4; i++) assert.equal((await drive(clock, c.request({ path: '/' }))).status, 200);
      });
      await withProxy(config([route('r', {}, routeTo(FLAKY, { retry: retry({ retryOn: ['connect-failure'], attempts: 1 }) }))], { [FLAKY]: [dead] }), { clock }, async (c) => {
        const r = await drive(clock, c.request({ path: '/' }));
        assert.equal(r.status, 503);
        assert.equal(r.headers['x-sinew-response-flags'], 'URX,UF');
        assert.match(r.body, /connection failure/);
      });
      await withProxy(config([route('r', {}, routeTo(FLAKY))], { [FLAKY]: [dead] }), {}, async (c) => {
        const r = await c.request({ path: '/' });
        assert.equal(r.status, 503);
        assert.equal(r.headers['x-sinew-response-flags'], 'UF');
      });
    });

    test('retry conditions: retriable-4xx (409), retriable-status-codes, gRPC unavailable; others are not retried', async () => {
      const clock = new ManualClock();
      let n = 0;
      const flip = (status: number, headers: Record<string, string> = {}) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
        if (n++ % 2 === 0) { res.writeHead(status, headers); res.end('no'); return true; }
        return false;
      };
      const cases: [string[], number[] | undefined, number, Record<string, string>, boolean][] = [
        [['retriable-4xx'], undefined, 409, {}, true],
        [['retriable-4xx'], undefined, 404, {}, false],
        [['retriable-status-codes'], [418], 418, {}, true],
        [['unavailable'], undefined, 200, { 'grpc-status': '14', 'content-type': 'application/grpc' }, true],
        [['gateway-error'], undefined, 500, {}, false],
        [['gateway-error'], undefined, 502, {}, true],
      ];
      for (const [retryOn, codes, status, headers, retried] of cases) {
        n = 0;
        good.override = flip(status, headers);
        try {
          await withProxy(config([route('r', {}, routeTo(ECHO, { retry: retry({ retryOn, retriableStatusCodes: codes, attempts: 1 }) }))]), { clock }, async (c) => {
            const r = await drive(clock, c.request({ path: '/' }));
            const label = `${retryOn} on ${status}`;
            if (retried) assert.equal(seen(r.body).headers['x-envoy-attempt-count'], '2', label);
            else assert.equal(r.status, status, label);
          });
        } finally {
          good.override = undefined;
        }
      }
    });

    test('bodies: a small body is buffered and replayed on retry; one past maxBufferedBodyBytes streams and is not retried', async () => {
      const clock = new ManualClock();
      const cfg = meshConfig([route('r', {}, routeTo(FLAKY, { retry: retry({ attempts: 1 }) }))], [cluster(FLAKY)], [{ clusterName: FLAKY, endpoints: [endpoint(bad.port), endpoint(good.port)] }], { maxBufferedBodyBytes: 64 });
      await withProxy(cfg, { clock }, async (c) => {
        for (let i = 0; i < 2; i++) {
          const r = await drive(clock, c.request({ method: 'POST', path: '/small', body: 'tiny body' }));
          assert.equal(r.status, 200);
          assert.equal(seen(r.body).body, 'tiny body');
        }
        const large = 'L'.repeat(1000);
        const statuses: number[] = [];
        for (let i = 0; i < 2; i++) {
          const r = await drive(clock, c.request({ method: 'POST', path: '/large', body: large }));
          statuses.push(r.status);
          if (r.status === 200) assert.equal(seen(r.body).body, large);
        }
        assert.deepEqual(statuses.sort(), [200, 503], 'one request met flaky-bad and was not retried');
      });
    });

    test('per-try timeout: a hung try is cancelled and retried; the retry budget (maxRetries) caps retries', async () => {
      const clock = new ManualClock();
      const held: http.ServerResponse[] = [];
      let n = 0;
      good.override = (_req, res) => (n++ === 0 ? (held.push(res), true) : false);
      try {
        await withProxy(config([route('r', {}, routeTo(ECHO, { retry: retry({ perTryTimeoutMs: 100, retryOn: ['5xx'] }) }))]), { clock }, async (c, h) => {
          const r = await drive(clock, c.request({ path: '/' }));
          assert.equal(r.status, 200);
          assert.equal(seen(r.body).headers['x-envoy-attempt-count'], '2');
          assert.ok(h.cm.outcomes.some((o) => o.outcome.failure === 'timeout'));
        });
      } finally {
        good.override = undefined;
        for (const res of held) res.destroy();
      }
      const budget = meshConfig([route('r', {}, routeTo(FLAKY, { retry: retry() }))], [cluster(FLAKY, { connectionPool: { maxRetries: 0 } })], [{ clusterName: FLAKY, endpoints: [endpoint(bad.port)] }]);
      await withProxy(budget, { clock }, async (c, h) => {
        const r = await drive(clock, c.request({ path: '/' }));
        assert.equal(r.status, 503);
        assert.equal(h.proxy.stats.get('upstream_rq_retry_overflow'), 1);
      });
    });

    test('RS-07: route timeout -> 504 UT; a fault delay turns the timeout off (DI)', async () => {
      const clock = new ManualClock();
      const held: http.ServerResponse[] = [];
      good.override = (_req, res) => (held.push(res), true);
      try {
        await withProxy(config([route('r', {}, routeTo(ECHO, { timeoutMs: 500 }))]), { clock }, async (c) => {
          const pending = c.request({ path: '/reviews/0' });
          await until(() => held.length === 1, 'request upstream');
          clock.advance(499);
          assert.equal(held[0].writableEnded, false);
          clock.advance(1);
          const r = await pending;
          assert.equal(r.status, 504);
          assert.equal(r.headers['x-sinew-response-flags'], 'UT');
          assert.match(r.body, /upstream request timeout/);
        });
      } finally {
        good.override = undefined;
        for (const res of held) res.destroy();
      }
      await withProxy(config([route('r', {}, routeTo(ECHO, { timeoutMs: 500 }), { perFilterConfig: { [HTTP_FILTERS.fault]: { delay: { fixedDelayMs: 2000, percentage: 100 } } } })]), { clock }, async (c) => {
        const pending = c.request({ path: '/' });
        await until(() => clock.pendingTimers() === 1, 'delay timer');
        clock.advance(1999);
        assert.equal(clock.pendingTimers(), 1);
        clock.advance(1);
        const r = await pending;
        assert.equal(r.status, 200, 'no route timeout once a fault delayed the request');
      });
    });

    test('MR-02: mirror 100% to v2: client answered by v1, v2 sees every request with Host -shadow', async () => {
      const before = v2.seen.length;
      await withProxy(config([route('r', {}, routeTo(V1, { mirrors: [{ cluster: V2, percentage: 100 }] }))]), {}, async (c) => {
        for (let i = 0; i < 10; i++) {
          const r = await c.request({ path: '/headers', host: 'echo:80' });
          assert.equal(seen(r.body).name, 'flaky-good');
        }
        await until(() => v2.seen.length - before === 10, 'mirrored copies');
        for (const m of v2.seen.slice(before)) {
          assert.equal(m.host, 'echo-shadow:80');
          assert.equal(m.path, '/headers');
        }
      });
      // Mirror responses are discarded: a mirror that never answers does not slow the client.
      const held: http.ServerResponse[] = [];
      v2.override = (_req, res) => (held.push(res), true);
      try {
        await withProxy(config([route('r', {}, routeTo(V1, { mirrors: [{ cluster: V2, percentage: 100 }] }))]), {}, async (c) => {
          const r = await c.request({ path: '/x', method: 'POST', body: 'payload' });
          assert.equal(r.status, 200);
          await until(() => held.length === 1, 'mirror copy');
          assert.equal(v2.seen.at(-1)?.body, 'payload');
        });
      } finally {
        v2.override = undefined;
        for (const res of held) res.destroy();
      }
    });

    test('MR-03: mirror 50% over 400 requests: all answered by v1, v2 gets 200 +- 30', async () => {
      const before = v2.seen.length;
      await withProxy(config([route('r', {}, routeTo(V1, { mirrors: [{ cluster: V2, percentage: 50 }] }))]), { seed: 3 }, async (c, h) => {
        const statuses = await many(c, 400);
        assert.ok(statuses.every((s) => s === 200));
        const mirrored = h.proxy.stats.get('mirror_requests');
        assert.ok(mirrored >= 170 && mirrored <= 230, `mirrored ${mirrored}`);
        await until(() => v2.seen.length - before === mirrored, 'mirrored copies');
      });
    });

    test('weighted split 60/30/10/0 (seeded) and a sticky canary split by request hash', async () => {
      const split = [to(V1, 60), to(V2, 30), to(V3, 10), to(ECHO, 0)];
      await withProxy(config([route('r', {}, routeTo(split))], { [V1]: [good.port] }), { seed: 11 }, async (c) => {
        const names: Record<string, number> = {};
        for (let i = 0; i < 600; i += 50) {
          const batch = await Promise.all(Array.from({ length: 50 }, () => c.request({ path: '/' })));
          for (const r of batch) { const n = seen(r.body).name; names[n] = (names[n] ?? 0) + 1; }
        }
        assert.ok(Math.abs((names['flaky-good'] ?? 0) - 360) <= 40, JSON.stringify(names));
        assert.ok(Math.abs((names['echo-v2'] ?? 0) - 180) <= 35, JSON.stringify(names));
        assert.ok(Math.abs((names['echo-v3'] ?? 0) - 60) <= 25, JSON.stringify(names));
      });
      const sticky = routeTo([to(V2, 50), to(V3, 50)], { hashPolicy: { header: 'x-user' }, stickyWeightedHash: true });
      await withProxy(config([route('r', {}, sticky)]), { seed: 5 }, async (c) => {
        const sides: Record<string, number> = {};
        for (let u = 0; u < 60; u++) {
          const first = seen((await c.request({ path: '/', headers: { 'x-user': `user-${u}` } })).body).name;
          for (let k = 0; k < 1; k++) {
            assert.equal(seen((await c.request({ path: '/', headers: { 'x-user': `user-${u}` } })).body).name, first, `user-${u} stays on ${first}`);
          }
          sides[first] = (sides[first] ?? 0) + 1;
        }
        assert.ok((sides['echo-v2'] ?? 0) >= 15 && (sides['echo-v3'] ?? 0) >= 15, JSON.stringify(sides));
      });
    });

    test('CORS (vs-echo-cors.yaml): preflight answered for an allowed origin, forwarded otherwise; actual requests get allow-origin', async () => {
      const cors = { allowOrigins: [{ exact: 'cors.com' }], allowMethods: ['POST', 'GET'], allowHeaders: ['X-Foo-Bar', 'X-Foo-Baz'], exposeHeaders: ['X-Trace'], maxAgeSeconds: 86400, allowCredentials: false };
      await withProxy(config([route('default/echo/0', {}, routeTo(ECHO), { perFilterConfig: { [HTTP_FILTERS.cors]: cors } })]), {}, async (c) => {
        const before = good.seen.length;
        const pre = await c.request({ method: 'OPTIONS', path: '/', headers: { origin: 'cors.com', 'access-control-request-method': 'DELETE' } });
        assert.equal(pre.status, 200);
        assert.equal(pre.headers['access-control-allow-origin'], 'cors.com');
        assert.equal(pre.headers['access-control-allow-methods'], 'POST,GET');
        assert.equal(pre.headers['access-control-allow-headers'], 'X-Foo-Bar,X-Foo-Baz');
        assert.equal(pre.headers['access-control-max-age'], '86400');
        // cors_preflight_expose_headers: the preflight answer names the exposed headers, as the
        // Gateway API's HTTPRouteCORS expects (it was sent on actual responses only).
        assert.equal(pre.headers['access-control-expose-headers'], 'X-Trace');
        assert.equal(good.seen.length, before, 'an allowed preflight never reaches the app');
        const other = await c.request({ method: 'OPTIONS', path: '/', headers: { origin: 'bad.com', 'access-control-request-method': 'GET' } });
        assert.equal(other.headers['access-control-allow-origin'], undefined);
        assert.equal(good.seen.at(-1)?.method, 'OPTIONS', 'a non-matching preflight is forwarded');
        const get = await c.request({ path: '/', headers: { origin: 'cors.com' } });
        assert.equal(get.headers['access-control-allow-origin'], 'cors.com');
        assert.equal(get.headers['access-control-expose-headers'], 'X-Trace');
        const nope = await c.request({ path: '/', headers: { origin: 'bad.com' } });
        assert.equal(nope.headers['access-control-allow-origin'], undefined);
      });
    });

    test('cors_wildcard_lists_echo_the_preflight: allowMethods and allowHeaders `*` answer with the method and headers asked for', async () => {
      const cors = { allowOrigins: [{ regex: '.*' }], allowMethods: ['*'], allowHeaders: ['*'], exposeHeaders: [], allowCredentials: true };
      await withProxy(config([route('default/echo/0', {}, routeTo(ECHO), { perFilterConfig: { [HTTP_FILTERS.cors]: cors } })]), {}, async (c) => {
        const pre = await c.request({ method: 'OPTIONS', path: '/', headers: { origin: 'https://other.foo.com', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-header-1, x-header-2' } });
        assert.equal(pre.status, 200);
        // With credentials a browser reads `*` as a literal name: the answer must echo.
        assert.equal(pre.headers['access-control-allow-methods'], 'PUT');
        assert.equal(pre.headers['access-control-allow-headers'], 'x-header-1, x-header-2');
        assert.equal(pre.headers['access-control-allow-credentials'], 'true');
      });
    });
  });
}
