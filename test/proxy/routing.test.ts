/**
 * Routing acceptance cases (test/fixtures/istio/acceptance/cases.yaml TM-*, HD-*, RS-05 and the
 * routing-go configs), each Istio config translated by hand into the ProxyConfig the compiler
 * would produce, run over HTTP/1.1 and HTTP/2 against a real echo upstream.
 */
import { HTTP_FILTERS } from '../../src/api/proxy-config.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyConfig, Route } from '../../src/api/proxy-config.js';
import { protocols, type Client } from './support/client.js';
import { cluster, endpoint, meshConfig, route, routeTo } from './support/config.js';
import { startEcho, type EchoReply, type EchoServer } from './support/echo.js';
import { startProxy, type Harness } from './support/harness.js';

const ECHO = 'outbound|80||echo.default.svc.cluster.local';
const ECHO_V1 = 'outbound|80|v1|echo.default.svc.cluster.local';

for (const proto of protocols) {
  describe(`routing over ${proto.name}`, () => {
    let echo: EchoServer;
    before(async () => { echo = await startEcho('echo-v1'); });
    after(async () => { await echo.close(); });

    const config = (routes: Route[]): ProxyConfig =>
      meshConfig(routes, [cluster(ECHO), cluster(ECHO_V1)], [
        { clusterName: ECHO, endpoints: [endpoint(echo.port)] },
        { clusterName: ECHO_V1, endpoints: [endpoint(echo.port, { version: 'v1' })] },
      ]);

    async function withProxy(cfg: ProxyConfig, fn: (c: Client, h: Harness) => Promise<void>): Promise<void> {
      const h = await startProxy(cfg);
      const c = proto.client(h.port());
      try {
        await fn(c, h);
      } finally {
        await c.close();
        await h.close();
      }
    }
    const seen = (body: string): EchoReply => JSON.parse(body) as EchoReply;

    test('TM-12: exact and prefix rewrite; the query is kept; the prefix gotcha gives //products', async () => {
      // vs-echo-rewrite-v1.yaml
      await withProxy(config([
        route('default/echo/0', { path: { exact: '/v1' } }, routeTo(ECHO_V1, { rewrite: { pathPrefix: '/' } })),
        route('default/echo/1', { path: { prefix: '/v1/products' } }, routeTo(ECHO_V1, { rewrite: { pathPrefix: '/products' } })),
        route('default/echo/2', {}, routeTo(ECHO_V1)),
      ]), async (c) => {
        assert.equal(seen((await c.request({ path: '/v1' })).body).path, '/');
        assert.equal(seen((await c.request({ path: '/v1/products/42?color=red' })).body).path, '/products/42?color=red');
        assert.equal(seen((await c.request({ path: '/v1x' })).body).path, '/v1x');
      });
      // vs-echo-rewrite-prefix-gotcha.yaml (istio/istio#26828)
      await withProxy(config([route('default/echo/0', { path: { prefix: '/v1' } }, routeTo(ECHO_V1, { rewrite: { pathPrefix: '/' } }))]), async (c) => {
        assert.equal(seen((await c.request({ path: '/v1/products' })).body).path, '//products');
      });
    });

    test('TM-13: rewrite uri keeps the query and drops the fragment', async () => {
      await withProxy(config([route('default/default/0', { path: { exact: '/foo' } }, routeTo(ECHO, { rewrite: { pathPrefix: '/new/path' } }))]), async (c) => {
        const r = await c.request({ path: '/foo?key=value#hash' });
        assert.equal(r.status, 200);
        assert.equal(seen(r.body).path, '/new/path?key=value');
      });
    });

    test('regex rewrite (Istio uriRegexRewrite, Envoy \\1 groups) keeps the query', async () => {
      await withProxy(config([route('re', { path: { prefix: '/v1/' } }, routeTo(ECHO, { rewrite: { pathRegex: { pattern: '^/v1/([^/]+)/(.*)$', substitution: '/\\2/\\1' } } }))]), async (c) => {
        assert.equal(seen((await c.request({ path: '/v1/a/b/c?x=1' })).body).path, '/b/c/a?x=1');
      });
    });

    test('TM-14: rewrite authority', async () => {
      await withProxy(config([route('default/default/0', { path: { exact: '/foo' } }, routeTo(ECHO, { rewrite: { authority: 'new-authority' } }))]), async (c) => {
        const r = await c.request({ path: '/foo' });
        assert.equal(r.status, 200);
        assert.equal(seen(r.body).host, 'new-authority');
      });
    });

    test('routing-go set authority header: :authority set by a header operation', async () => {
      await withProxy(config([route('default/default/0', {}, routeTo(ECHO), { requestHeaders: { set: { ':authority': 'my-custom-authority' } } })]), async (c) => {
        assert.equal(seen((await c.request({ path: '/' })).body).host, 'my-custom-authority');
      });
    });

    test('TM-16: redirect with prefixRewrite, then the redirected request is routed', async () => {
      await withProxy(config([
        route('default/default/0', { path: { prefix: '/foo/' } }, { kind: 'redirect', prefixRewrite: '/new/', responseCode: 301 }),
        route('default/default/1', { path: { prefix: '/new/' } }, routeTo(ECHO)),
      ]), async (c) => {
        const r = await c.request({ path: '/foo/bar' });
        assert.equal(r.status, 301);
        assert.equal(r.headers['location'], 'http://echo/new/bar');
        const follow = await c.request({ path: new URL(r.headers['location'] as string).pathname });
        assert.equal(follow.status, 200);
        assert.equal(seen(follow.body).path, '/new/bar');
      });
    });

    test('TM-17 and routing-go redirect: derivePort FROM_REQUEST_PORT with scheme https; uri redirect', async () => {
      await withProxy(config([
        route('default/default/0', { path: { exact: '/foo' } }, { kind: 'redirect', scheme: 'https', derivePort: 'FROM_REQUEST_PORT', responseCode: 301 }),
        route('default/default/1', { path: { exact: '/bar' } }, { kind: 'redirect', path: '/new/path', responseCode: 301 }),
      ]), async (c) => {
        const r = await c.request({ path: '/foo', host: 'echo:80' });
        assert.equal(r.status, 301);
        assert.equal(r.headers['location'], 'https://echo:80/foo');
        const r2 = await c.request({ path: '/bar' });
        assert.equal(r2.headers['location'], 'http://echo/new/path');
      });
    });

    test('TM-18: request header add, then set overwrites a client value', async () => {
      await withProxy(config([route('default/default/0', {}, routeTo(ECHO), { requestHeaders: { add: { 'istio-custom-header': 'user-defined-value' } } })]), async (c) => {
        assert.equal(seen((await c.request({ path: '/' })).body).headers['istio-custom-header'], 'user-defined-value');
      });
      await withProxy(config([route('default/default/0', {}, routeTo(ECHO), { requestHeaders: { set: { 'x-custom': 'some-value' } } })]), async (c) => {
        assert.equal(seen((await c.request({ path: '/', headers: { 'x-custom': 'client-value' } })).body).headers['x-custom'], 'some-value');
      });
    });

    test('TM-20: pseudo-header match on :method; no route -> 404 NR', async () => {
      await withProxy(config([route('default/default/0', { headers: [{ name: ':method', match: { exact: 'GET' } }] }, routeTo(ECHO))]), async (c) => {
        const post = await c.request({ method: 'POST', path: '/', body: 'x' });
        assert.equal(post.status, 404);
        assert.equal(post.headers['x-sinew-response-flags'], 'NR');
        assert.equal(post.headers['x-sinew-response-details'], 'route_not_found');
        assert.match(post.body, /no route/);
        assert.equal((await c.request({ path: '/' })).status, 200);
      });
    });

    const abort403: Route['action'] = routeTo(ECHO);
    // Istio's withoutHeaders with a string match: the compiler sets treatMissingAsEmpty (routes.test.ts).
    const withoutHeaders = (match: Route['match']['headers']) => config([
      route('default/vs/0', { headers: match }, abort403, { perFilterConfig: { [HTTP_FILTERS.fault]: { abort: { httpStatus: 403, percentage: 100 } } } }),
      route('default/vs/1', {}, routeTo(ECHO)),
    ]);

    test('TM-21: withoutHeaders exact jason', async () => {
      await withProxy(withoutHeaders([{ name: 'end-user', match: { exact: 'jason' }, invert: true, treatMissingAsEmpty: true }]), async (c) => {
        assert.equal((await c.request({ path: '/foo', headers: { 'end-user': 'jason' } })).status, 200);
        const denied = await c.request({ path: '/foo', headers: { 'end-user': 'not-jason' } });
        assert.equal(denied.status, 403);
        assert.equal(denied.headers['x-sinew-response-flags'], 'FI');
        assert.equal((await c.request({ path: '/foo' })).status, 403);
      });
    });

    test('TM-21 variant: withoutHeaders regex "*" becomes a present match', async () => {
      await withProxy(withoutHeaders([{ name: 'end-user', invert: true }]), async (c) => {
        assert.equal((await c.request({ path: '/foo', headers: { 'end-user': 'jason' } })).status, 200);
        assert.equal((await c.request({ path: '/foo', headers: { 'end-user': '' } })).status, 200);
        assert.equal((await c.request({ path: '/foo' })).status, 403);
      });
    });

    test('TM-21 variant: withoutHeaders regex ".*" never holds', async () => {
      await withProxy(withoutHeaders([{ name: 'end-user', match: { regex: '.*' }, invert: true, treatMissingAsEmpty: true }]), async (c) => {
        assert.equal((await c.request({ path: '/foo', headers: { 'end-user': 'jason' } })).status, 200);
        assert.equal((await c.request({ path: '/foo', headers: { 'end-user': 'not-jason' } })).status, 200);
        assert.equal((await c.request({ path: '/foo' })).status, 200);
      });
    });

    test('TM-22: header names may use any RFC 7230 token character', async () => {
      await withProxy(config([route('default/default/0', { headers: [{ name: "a!#$%&'*+-.^_`|~z", match: { exact: 'why' } }] }, routeTo(ECHO))]), async (c) => {
        const miss = await c.request({ path: '/' });
        assert.equal(miss.status, 404);
        assert.equal(miss.headers['x-sinew-response-flags'], 'NR');
        assert.equal((await c.request({ path: '/', headers: { "a!#$%&'*+-.^_`|~z": 'why' } })).status, 200);
      });
    });

    test('routing-go catch all route short-circuits the later routes (regex .* + abort 418)', async () => {
      await withProxy(config([
        route('default/default/0', { path: { regex: '.*' } }, routeTo(ECHO), { perFilterConfig: { [HTTP_FILTERS.fault]: { abort: { httpStatus: 418, percentage: 100 } } } }),
        route('default/default/1', {}, routeTo(ECHO)),
      ]), async (c) => {
        const r = await c.request({ path: '/anything' });
        assert.equal(r.status, 418);
        assert.equal(r.headers['x-sinew-response-flags'], 'FI');
      });
    });

    test('RS-05: fault abort with gRPC status UNAVAILABLE', async () => {
      await withProxy(config([route('default/default/0', {}, routeTo(ECHO), { perFilterConfig: { [HTTP_FILTERS.fault]: { abort: { grpcStatus: 14, percentage: 100 } } } })]), async (c) => {
        const r = await c.request({ method: 'POST', path: '/echo.Echo/Call', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: Buffer.alloc(5) });
        assert.equal(r.status, 200);
        assert.equal(r.headers['grpc-status'], '14');
        assert.equal(r.headers['x-sinew-response-flags'], 'FI');
      });
    });

    test('HD-01 and HD-03: x-request-id generated or kept; x-envoy-attempt-count 1; x-forwarded-*', async () => {
      await withProxy(config([route('default/default/0', {}, routeTo(ECHO))]), async (c) => {
        const first = seen((await c.request({ path: '/headers' })).body);
        assert.match(String(first.headers['x-request-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        assert.equal(first.headers['x-envoy-attempt-count'], '1');
        assert.equal(first.headers['x-forwarded-for'], '127.0.0.1');
        assert.equal(first.headers['x-forwarded-proto'], 'http');
        const kept = seen((await c.request({ path: '/headers', headers: { 'x-request-id': '3f1c2b9e-7d4a-4c1e-9b2f-0a1b2c3d4e5f' } })).body);
        assert.equal(kept.headers['x-request-id'], '3f1c2b9e-7d4a-4c1e-9b2f-0a1b2c3d4e5f');
      });
    });

    test('route matching: method, query params, authority, scheme, port, ignorePathCase, regex whole-value', async () => {
      const hit = (n: number) => routeTo(ECHO, { rewrite: { pathPrefix: `/r${n}` } });
      await withProxy(config([
        route('r0', { path: { prefix: '/a' }, ignorePathCase: true, method: { exact: 'PUT' } }, hit(0)),
        route('r1', { queryParams: [{ name: 'v', match: { exact: '2' } }, { name: 'flag' }] }, hit(1)),
        route('r2', { queryParams: [{ name: 'q', match: { regex: 'ab+' } }] }, hit(2)),
        route('r3', { path: { regex: '/re/[0-9]+' } }, hit(3)),
        route('r4', { authority: { prefix: 'echo:' } }, hit(4)),
        route('r5', { scheme: { exact: 'https' } }, hit(5)),
        route('r6', { path: { exact: '/exact' } }, hit(6)),
        route('r7', {}, hit(7)),
      ]), async (c) => {
        const path = async (p: string, extra: { method?: string; host?: string } = {}) => seen((await c.request({ path: p, ...extra, body: extra.method === 'PUT' ? 'x' : undefined })).body).path;
        assert.match(await path('/A/x', { method: 'PUT' }), /^\/r0/);
        assert.match(await path('/a/x'), /^\/r7/);
        assert.match(await path('/x?v=2&flag'), /^\/r1/);
        assert.match(await path('/x?v=2'), /^\/r7/);
        assert.match(await path('/x?q=abbb'), /^\/r2/);
        assert.match(await path('/x?q=abc'), /^\/r7/, 'regexes match the whole value');
        assert.match(await path('/re/123'), /^\/r3/);
        assert.match(await path('/re/123x'), /^\/r7/);
        assert.match(await path('/y', { host: 'echo:80' }), /^\/r4/);
        assert.match(await path('/exact'), /^\/r6/);
      });
    });

    test('redirect details: host, port, FROM_PROTOCOL_DEFAULT, 302; a requireTls virtual host answers 301 to https', async () => {
      await withProxy(config([
        route('a', { path: { prefix: '/a' } }, { kind: 'redirect', host: 'other.example', port: 8443, scheme: 'https', responseCode: 302 }),
        route('b', { path: { prefix: '/b' } }, { kind: 'redirect', scheme: 'https', derivePort: 'FROM_PROTOCOL_DEFAULT', responseCode: 301 }),
        route('c', { path: { prefix: '/c' } }, { kind: 'redirect', scheme: 'https', responseCode: 301 }),
      ]), async (c) => {
        const a = await c.request({ path: '/a/x?q=1', host: 'echo:80' });
        assert.equal(a.status, 302);
        assert.equal(a.headers['location'], 'https://other.example:8443/a/x?q=1');
        assert.equal((await c.request({ path: '/b', host: 'echo:80' })).headers['location'], 'https://echo/b');
        // Envoy drops the old scheme's default port when only the scheme changes.
        assert.equal((await c.request({ path: '/c', host: 'echo:80' })).headers['location'], 'https://echo/c');
      });
      const tls = config([route('r', {}, routeTo(ECHO))]);
      tls.routeConfigs[0].virtualHosts[0].requireTls = true;
      await withProxy(tls, async (c) => {
        const r = await c.request({ path: '/login?next=1' });
        assert.equal(r.status, 301);
        assert.equal(r.headers['location'], 'https://echo/login?next=1');
      });
    });

    test('direct response and unknown cluster (503 NC)', async () => {
      await withProxy(config([
        route('d', { path: { exact: '/direct' } }, { kind: 'direct', status: 418, body: 'teapot' }),
        route('nc', {}, routeTo('outbound|80|v9|echo.default.svc.cluster.local')),
      ]), async (c) => {
        const d = await c.request({ path: '/direct' });
        assert.equal(d.status, 418);
        assert.match(d.body, /teapot/);
        const nc = await c.request({ path: '/x' });
        assert.equal(nc.status, 503);
        assert.equal(nc.headers['x-sinew-response-flags'], 'NC');
      });
    });

    test('response headers set/add/remove at route and destination level', async () => {
      await withProxy(config([
        route('h', {}, routeTo([{ cluster: ECHO, weight: 1, responseHeaders: { set: { 'x-dest': 'd' }, add: { 'x-both': 'dest' } } }]), {
          responseHeaders: { set: { 'x-route': 'r' }, add: { 'x-both': 'route' }, remove: ['x-echo-name'] },
          requestHeaders: { remove: ['x-drop'] },
        }),
      ]), async (c) => {
        const r = await c.request({ path: '/', headers: { 'x-drop': '1' } });
        assert.equal(r.headers['x-route'], 'r');
        assert.equal(r.headers['x-dest'], 'd');
        assert.equal(r.headers['x-echo-name'], undefined);
        assert.match(String(r.headers['x-both']), /dest.*route/);
        assert.equal(seen(r.body).headers['x-drop'], undefined);
      });
    });
  });
}
