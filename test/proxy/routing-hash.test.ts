/**
 * Istio's `consistentHash.httpCookie` through a real proxy, its real RING_HASH balancer and
 * three upstreams: with a `ttl`, a client without the cookie gets one generated (Envoy's
 * router sets it on the response, with that TTL as Max-Age) and every request carrying it
 * reaches the same upstream. Runs over HTTP/1.1 and HTTP/2, and once with curl's cookie jar.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { HashPolicy, ProxyConfig } from '../../src/api/proxy-config.js';
import { SeededRandom } from '../../src/core/random.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import { protocols, type Client, type Resp } from './support/client.js';
import { cluster, endpoint, meshConfig, route, routeTo } from './support/config.js';
import { startEcho, type EchoReply, type EchoServer } from './support/echo.js';

const REVIEWS = 'outbound|80||reviews.default.svc.cluster.local';
/** Envoy's generated cookie: quoted hex value, Max-Age (when the TTL is not 0), Path, HttpOnly. */
const GENERATED = /^user="([0-9a-f]+)"; Max-Age=3600; Path=\/; HttpOnly$/;

const served = (r: Resp): string => (JSON.parse(r.body) as EchoReply).name;
const setCookies = (r: Resp): string[] => {
  const v = r.headers['set-cookie'];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
};

describe('consistentHash.httpCookie through the proxy', () => {
  let upstreams: EchoServer[];
  before(async () => {
    upstreams = await Promise.all(['reviews-a', 'reviews-b', 'reviews-c'].map((n) => startEcho(n)));
  });
  after(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
  });

  const config = (hashPolicy: HashPolicy): ProxyConfig =>
    meshConfig(
      [route('default/reviews/0', {}, routeTo(REVIEWS, { hashPolicy }))],
      [cluster(REVIEWS, { lb: { policy: 'RING_HASH' } })],
      [{ clusterName: REVIEWS, endpoints: upstreams.map((u) => endpoint(u.port)) }],
    );

  async function withProxy(cfg: ProxyConfig, fn: (port: number) => Promise<void>): Promise<void> {
    const cm = createClusterManager({ random: new SeededRandom(3) });
    const proxy: Proxy = createProxy({ config: cfg, clusterManager: cm, random: new SeededRandom(3) });
    await proxy.start();
    try {
      await fn(Object.values(proxy.listenerAddresses())[0].port);
    } finally {
      await proxy.close({ drainMs: 100 });
      await cm.close();
    }
  }

  for (const proto of protocols) {
    test(`regression over ${proto.name}: with a ttl, a missing cookie is generated, set on the response, and sticks to one upstream`, async () => {
      await withProxy(config({ cookie: { name: 'user', path: '/', ttlMs: 3_600_000 } }), async (port) => {
        const c: Client = proto.client(port);
        try {
          const first = await c.request({ path: '/reviews/1', host: 'echo' });
          assert.equal(first.status, 200);
          const cookies = setCookies(first);
          assert.equal(cookies.length, 1, JSON.stringify(first.headers));
          const value = GENERATED.exec(cookies[0])?.[1];
          assert.ok(value, cookies[0]);
          // Every later request carries the cookie (as the browser sends it back, quoted) and
          // lands where the first one did; no new cookie is set.
          for (let i = 0; i < 12; i++) {
            const r = await c.request({ path: `/reviews/${i}`, host: 'echo', headers: { cookie: `theme=dark; user="${value}"` } });
            assert.equal(served(r), served(first), `request ${i} with the cookie`);
            assert.deepEqual(setCookies(r), []);
          }
          // Other users' cookies spread over the upstreams, each sticking to its own.
          const where = new Map<string, string>();
          for (let u = 0; u < 24; u++) {
            const cookie = `user=u${u}`;
            const a = served(await c.request({ host: 'echo', headers: { cookie } }));
            const b = served(await c.request({ host: 'echo', headers: { cookie } }));
            assert.equal(a, b, cookie);
            where.set(cookie, a);
          }
          assert.ok(new Set(where.values()).size >= 2, JSON.stringify([...where]));
        } finally {
          await c.close();
        }
      });
    });
  }

  test('a ttl of 0 asks for a session cookie (no Max-Age); no ttl, no cookie', async () => {
    await withProxy(config({ cookie: { name: 'user', path: '/', ttlMs: 0 } }), async (port) => {
      const c = protocols[0].client(port);
      try {
        const cookies = setCookies(await c.request({ host: 'echo' }));
        assert.equal(cookies.length, 1);
        assert.match(cookies[0], /^user="[0-9a-f]+"; Path=\/; HttpOnly$/);
      } finally {
        await c.close();
      }
    });
    await withProxy(config({ cookie: { name: 'user' } }), async (port) => {
      const c = protocols[0].client(port);
      try {
        assert.deepEqual(setCookies(await c.request({ host: 'echo' })), []);
      } finally {
        await c.close();
      }
    });
  });

  test('curl with a cookie jar: the first answer sets the cookie, and every request after it reaches the same upstream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sinew-cookie-'));
    try {
      await withProxy(config({ cookie: { name: 'user', path: '/', ttlMs: 3_600_000 } }), async (port) => {
        const jar = join(dir, 'jar.txt');
        const names: string[] = [];
        for (let i = 0; i < 6; i++) {
          // A new connection each time: only the cookie can keep the client on one upstream.
          const { stdout } = await promisify(execFile)('curl', ['-s', '--max-time', '10', '-c', jar, '-b', jar, '-H', 'Host: echo', `http://127.0.0.1:${port}/reviews/${i}`]);
          names.push((JSON.parse(stdout) as EchoReply).name);
        }
        assert.match(readFileSync(jar, 'utf8'), /\tuser\t"[0-9a-f]+"\n/);
        assert.equal(new Set(names).size, 1, names.join(' '));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
