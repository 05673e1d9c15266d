/**
 * The HTTP filter contract (src/proxy/http/filter-api.ts) through a running proxy: filters
 * registered by factory, decode in the listed order and encode in reverse, per-route config
 * overriding the listener's, a filter replacing an upstream response, and factory errors at
 * apply time (the previous config stays in force). Real sockets on port 0, a real upstream,
 * the proxy's own cluster manager, over HTTP/1.1 and HTTP/2 (STYLE.md 17).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HTTP_FILTERS, type HttpFilterConfig, type ProxyConfig, type Route } from '../../src/api/proxy-config.js';
import { FilterConfigError, FilterStatus, type HttpFilterFactory } from '../../src/proxy/http/filter-api.js';
import { ProxyConfigError } from '../../src/proxy/errors.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { h1Client, protocols } from './support/client.js';
import { cluster, endpoint, meshConfig, route, routeTo } from './support/config.js';
import { startEcho, type EchoReply, type EchoServer } from './support/echo.js';

const ECHO = 'outbound|80||echo.default.svc.cluster.local';

/**
 * A filter that appends its tag to `x-decoded` on the request and to `x-encoded` on the
 * response: the order of the tags is the order the hooks ran in. Its listener config is
 * `{ tag }`; a route may override the tag (`perFilterConfig`).
 */
function tagFilter(name: string): HttpFilterFactory {
  const append = (value: string | string[] | undefined, tag: string) => (value === undefined ? tag : `${value},${tag}`);
  return {
    name,
    compile(config) {
      const c = config as { tag?: unknown } | undefined;
      if (typeof c?.tag !== 'string' || c.tag.length === 0) throw new FilterConfigError([['tag', `${name} needs a tag (a non-empty string)`]]);
      const listenerTag = c.tag;
      return {
        name,
        create(stream) {
          const tag = (stream.route?.perFilterConfig?.get(name) as string | undefined) ?? listenerTag;
          return {
            decodeHeaders(s) {
              s.headers['x-decoded'] = append(s.headers['x-decoded'], tag);
              return FilterStatus.Continue;
            },
            encodeHeaders(_s, _status, headers) {
              headers['x-encoded'] = append(headers['x-encoded'], tag);
              return FilterStatus.Continue;
            },
          };
        },
      };
    },
    compilePerRoute(config, path) {
      const c = config as { tag?: unknown };
      if (typeof c?.tag !== 'string') throw new FilterConfigError([[`${path}.tag`, 'must be a string']]);
      return c.tag;
    },
  };
}

/** Replaces any upstream 5xx with its own 502 carrying `x-replaced` (an encode filter that stops). */
const replace5xx: HttpFilterFactory = {
  name: 'test.replace_5xx',
  compile: () => ({
    name: 'test.replace_5xx',
    create: () => ({
      encodeHeaders(s, status, _headers, upstream) {
        if (upstream === undefined || status < 500) return FilterStatus.Continue;
        s.localReply({ status: 502, details: 'replaced_by_filter', body: 'replaced' }, { 'x-replaced': String(status) }, true);
        return FilterStatus.Stop;
      },
    }),
  }),
};

const FACTORIES = [tagFilter('test.a'), tagFilter('test.b'), replace5xx];

function chain(...names: HttpFilterConfig[]): HttpFilterConfig[] {
  return [...names, { name: HTTP_FILTERS.router }];
}

function config(echo: EchoServer, filters: HttpFilterConfig[], routes?: Route[]): ProxyConfig {
  return meshConfig(
    routes ?? [route('default/echo/0', {}, routeTo(ECHO))],
    [cluster(ECHO)],
    [{ clusterName: ECHO, endpoints: [endpoint(echo.port)] }],
    { http2: true, filters },
  );
}

describe('HTTP filter chain', () => {
  let echo: EchoServer;
  let failing: EchoServer;
  before(async () => {
    echo = await startEcho('echo');
    failing = await startEcho('failing', { status: 503 });
  });
  after(async () => {
    await echo.close();
    await failing.close();
  });

  async function withProxy(c: ProxyConfig, fn: (proxy: Proxy, port: number) => Promise<void>): Promise<void> {
    const proxy = createProxy({ config: c, httpFilters: FACTORIES, telemetry: false });
    try {
      await proxy.start();
      await fn(proxy, proxy.listenerAddresses().outbound.port);
    } finally {
      await proxy.close({ drainMs: 100 });
    }
  }

  for (const { name: protocol, client: makeClient } of protocols) {
    test(`${protocol}: decode runs in the listed order, encode in reverse, on upstream and local replies`, async () => {
      const filters = chain({ name: 'test.a', config: { tag: 'a' } }, { name: 'test.b', config: { tag: 'b' } });
      await withProxy(config(echo, filters, [route('default/echo/0', { path: { prefix: '/' } }, routeTo(ECHO))]), async (_p, port) => {
        const c = makeClient(port);
        try {
          const res = await c.request({ path: '/x' });
          assert.equal(res.status, 200);
          assert.equal((JSON.parse(res.body) as EchoReply).headers['x-decoded'], 'a,b');
          // b is listed after a, so it sees the response first: a can act on what b did.
          assert.equal(res.headers['x-encoded'], 'b,a');
          // The router's own 404 goes back through the same filters.
          const missing = await c.request({ path: '/', host: 'nowhere' });
          assert.equal(missing.status, 404);
          assert.equal(missing.headers['x-encoded'], 'b,a');
        } finally {
          await c.close();
        }
      });
    });
  }

  test("a route's per-filter config overrides the listener's, for that route only", async () => {
    const filters = chain({ name: 'test.a', config: { tag: 'listener' } });
    const routes = [
      route('default/echo/0', { path: { prefix: '/special' } }, routeTo(ECHO), { perFilterConfig: { 'test.a': { tag: 'route' } } }),
      route('default/echo/1', { path: { prefix: '/' } }, routeTo(ECHO)),
    ];
    await withProxy(config(echo, filters, routes), async (_p, port) => {
      const c = h1Client(port);
      try {
        const special = await c.request({ path: '/special' });
        assert.equal(special.headers['x-encoded'], 'route');
        assert.equal((JSON.parse(special.body) as EchoReply).headers['x-decoded'], 'route');
        const plain = await c.request({ path: '/plain' });
        assert.equal(plain.headers['x-encoded'], 'listener');
      } finally {
        await c.close();
      }
    });
  });

  test('an encode filter that stops replaces the upstream response with its own reply', async () => {
    const c5 = 'outbound|80||failing.default.svc.cluster.local';
    const filters = chain({ name: 'test.a', config: { tag: 'a' } }, { name: 'test.replace_5xx' });
    const cfg = meshConfig([route('r', {}, routeTo(c5, { retry: undefined }))], [cluster(c5)], [{ clusterName: c5, endpoints: [endpoint(failing.port)] }], { filters });
    await withProxy(cfg, async (_p, port) => {
      const c = h1Client(port);
      try {
        const res = await c.request({ path: '/' });
        assert.equal(res.status, 502);
        assert.equal(res.body, 'replaced\n');
        assert.equal(res.headers['x-replaced'], '503');
        // The reply goes on through the filters listed before the one that made it.
        assert.equal(res.headers['x-encoded'], 'a');
      } finally {
        await c.close();
      }
    });
  });

  test('factory errors are found when the config is applied, and the last good config stays in force', async () => {
    const good = config(echo, chain({ name: 'test.a', config: { tag: 'a' } }));
    await withProxy(good, async (proxy, port) => {
      const refused = (c: ProxyConfig): ProxyConfigError => {
        try {
          proxy.apply(c);
        } catch (err) {
          assert.ok(err instanceof ProxyConfigError, String(err));
          return err;
        }
        assert.fail('the config was accepted');
      };
      const bad = { ...config(echo, chain({ name: 'test.a', config: {} }, { name: 'test.b', config: { tag: 'b' } })), version: 'v2' };
      assert.match(refused(bad).message, /listeners\[0\]\.http\.filters\[0\]\.config\.tag: test\.a needs a tag/);
      const unknown = { ...config(echo, chain({ name: 'sinew.filters.http.ratelimit' })), version: 'v3' };
      assert.match(refused(unknown).message, /no HTTP filter named "sinew\.filters\.http\.ratelimit"/);
      // A security filter whose config cannot be used is refused, never run as "allow all".
      const rbacWithoutPolicies = { ...config(echo, chain({ name: 'sinew.filters.http.rbac' })), version: 'v3b' };
      assert.match(refused(rbacWithoutPolicies).message, /listeners\[0\]\.http\.filters\[0\]\.config: .*expected object/);
      const routerFirst = { ...config(echo, [{ name: HTTP_FILTERS.router }, { name: 'test.a', config: { tag: 'a' } }]), version: 'v4' };
      assert.match(refused(routerFirst).message, /terminal filter: it must be last/);
      const badFault = { ...config(echo, chain(), [route('default/echo/0', {}, routeTo(ECHO), { perFilterConfig: { [HTTP_FILTERS.fault]: { abort: { httpStatus: 503, percentage: 150 } } } })]), version: 'v5' };
      assert.match(refused(badFault).message, /perFilterConfig\["sinew\.filters\.http\.fault"\]\.abort\.percentage: 150 is not in 0\.\.100/);
      assert.equal(proxy.version, 'v1');
      const c = h1Client(port);
      try {
        const res = await c.request({ path: '/' });
        assert.equal(res.status, 200);
        assert.equal(res.headers['x-encoded'], 'a');
      } finally {
        await c.close();
      }
    });
  });
});
