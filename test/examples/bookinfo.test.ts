/**
 * The Bookinfo demo apps run as real child processes and talk over real sockets, wired together
 * either with the *_URL fallbacks or through a small recording HTTP proxy that stands where the
 * sidecar's outbound listener will stand (HTTP_PROXY, absolute-URL request targets).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const appDir = fileURLToPath(new URL('../../examples/bookinfo/', import.meta.url));
const startupLimitMs = 25_000;

// === child processes ===

interface App {
  name: string;
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

const children: ChildProcess[] = [];

/** Starts one app with PORT=0 and resolves once it prints the port it is listening on. */
function startApp(name: string, file: string, env: Record<string, string>): Promise<App> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  // A proxy set in the developer's shell must not leak into apps wired with *_URL.
  for (const key of ['HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'REVIEWS_VERSION', 'SINEW_WORKLOAD']) delete childEnv[key];
  Object.assign(childEnv, { HOST: '127.0.0.1', PORT: '0' }, env);
  const child = spawn(process.execPath, ['--import', 'tsx', appDir + file], {
    cwd: repoRoot,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise<App>((resolve, reject) => {
    // A guard against a child that never starts, not a wait for time to pass.
    const guard = setTimeout(() => reject(new Error(`${name} did not start within ${startupLimitMs} ms: ${stderr}`)), startupLimitMs);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /listening on (\d+)/.exec(stdout);
      if (match) {
        clearTimeout(guard);
        resolve({ name, child, url: `http://127.0.0.1:${match[1]}`, stderr: () => stderr });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(guard);
      reject(new Error(`${name} exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
}

async function stopAll(): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }),
  );
}

// === plain HTTP helpers ===

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A port nothing listens on: bound by us, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}

function countOf(text: string, fragment: string): number {
  return text.split(fragment).length - 1;
}

// === a recording forward proxy, where the sidecar will be ===

interface Seen {
  target: string;
  host: string;
  headers: http.IncomingHttpHeaders;
}

type Route = { forwardTo: string } | { status: number; body: string };

class RecordingProxy {
  readonly seen: Seen[] = [];
  readonly routes = new Map<string, Route>();
  /** Requests with one of these x-request-id values are held unanswered, like a hung upstream. */
  readonly hangRequestIds = new Set<string>();
  private readonly agent = new http.Agent({ keepAlive: false });
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  url = '';

  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    this.agent.destroy();
  }

  requestsTo(host: string): Seen[] {
    return this.seen.filter((s) => s.host === host);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const host = req.headers.host ?? '';
    this.seen.push({ target: req.url ?? '', host, headers: req.headers });
    if (this.hangRequestIds.has(String(req.headers['x-request-id']))) return;
    const route = this.routes.get(host);
    if (route === undefined) {
      res.writeHead(502).end(`no route for ${host}`);
      return;
    }
    if ('status' in route) {
      res.writeHead(route.status, { 'content-type': 'text/plain' }).end(route.body);
      return;
    }
    const target = new URL(req.url ?? '/');
    const upstream = http.request(
      `${route.forwardTo}${target.pathname}${target.search}`,
      { method: req.method, headers: { ...req.headers, host }, agent: this.agent },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(503).end('upstream connect error');
      else res.destroy();
    });
    req.pipe(upstream);
  }
}

// === the suite ===

describe('bookinfo demo apps', () => {
  const proxy = new RecordingProxy();
  let ratings: App;
  let details: App;
  let reviewsV1: App;
  let reviewsV2: App;
  let reviewsV3: App;
  let reviewsV2NoRatings: App;
  let pageDirect: App;
  let pageProxied: App;

  before(async () => {
    await proxy.start();
    const deadPort = await closedPort();
    // Apps that need no other app's address start together; the rest follow as addresses appear.
    [ratings, details, reviewsV1, reviewsV3, reviewsV2NoRatings, pageProxied] = await Promise.all([
      startApp('ratings', 'ratings.ts', {}),
      startApp('details', 'details.ts', {}),
      startApp('reviews-v1', 'reviews.ts', { REVIEWS_VERSION: 'v1' }),
      // v3 reaches ratings by its mesh name through the proxy, as it will inside the mesh.
      startApp('reviews-v3', 'reviews.ts', { REVIEWS_VERSION: 'v3', HTTP_PROXY: proxy.url }),
      startApp('reviews-v2 without ratings', 'reviews.ts', { REVIEWS_VERSION: 'v2', RATINGS_URL: `http://127.0.0.1:${deadPort}` }),
      startApp('productpage via proxy', 'productpage.ts', { HTTP_PROXY: proxy.url }),
    ]);
    reviewsV2 = await startApp('reviews-v2', 'reviews.ts', { REVIEWS_VERSION: 'v2', RATINGS_URL: ratings.url });
    pageDirect = await startApp('productpage', 'productpage.ts', { DETAILS_URL: details.url, REVIEWS_URL: reviewsV2.url });
    proxy.routes.set('ratings:9080', { forwardTo: ratings.url });
    proxy.routes.set('details:9080', { forwardTo: details.url });
  });

  after(async () => {
    await stopAll();
    await proxy.close();
  });

  describe('ratings and details', () => {
    test('ratings answers the real app\'s JSON and health', async () => {
      const res = await request(`${ratings.url}/ratings/0`);
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
      assert.equal((await request(`${ratings.url}/ratings/abc`)).status, 400);
      assert.equal((await request(`${ratings.url}/health`)).status, 200);
    });

    test('details answers the real app\'s JSON and health', async () => {
      const res = await request(`${details.url}/details/0`);
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body), {
        id: 0,
        author: 'William Shakespeare',
        year: 1595,
        type: 'paperback',
        pages: 200,
        publisher: 'PublisherA',
        language: 'English',
        'ISBN-10': '1234567890',
        'ISBN-13': '123-1234567890',
      });
      assert.equal((await request(`${details.url}/details/x`)).status, 400);
      assert.equal((await request(`${details.url}/health`)).status, 200);
    });
  });

  describe('reviews', () => {
    test('v1 has no rating key at all', async () => {
      const res = await request(`${reviewsV1.url}/reviews/0`);
      assert.equal(res.status, 200);
      assert.ok(!res.body.includes('"rating"'), res.body);
      const body = JSON.parse(res.body);
      assert.equal(body.id, '0');
      assert.equal(body.clustername, 'null');
      assert.deepEqual(body.reviews.map((r: { reviewer: string }) => r.reviewer), ['Reviewer1', 'Reviewer2']);
      assert.equal(body.reviews[0].text, 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!');
      assert.equal(body.reviews[1].text, 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.');
    });

    test('v2 adds black stars from ratings, spaced as the Java service writes them', async () => {
      const res = await request(`${reviewsV2.url}/reviews/0`);
      assert.equal(res.status, 200);
      assert.ok(res.body.includes('"color": "black"'), res.body);
      const body = JSON.parse(res.body);
      assert.deepEqual(body.reviews.map((r: { rating: unknown }) => r.rating), [
        { stars: 5, color: 'black' },
        { stars: 4, color: 'black' },
      ]);
    });

    test('v3 adds red stars, calling ratings by its mesh name through HTTP_PROXY with headers propagated', async () => {
      const before = proxy.requestsTo('ratings:9080').length;
      const res = await request(`${reviewsV3.url}/reviews/0`, {
        headers: { 'end-user': 'jason', 'x-request-id': 'req-v3', 'x-b3-traceid': '463ac35c9f6413ad', 'x-unrelated': 'no' },
      });
      assert.equal(res.status, 200);
      assert.ok(res.body.includes('"color": "red"'), res.body);
      assert.deepEqual(JSON.parse(res.body).reviews.map((r: { rating: unknown }) => r.rating), [
        { stars: 5, color: 'red' },
        { stars: 4, color: 'red' },
      ]);
      const calls = proxy.requestsTo('ratings:9080').slice(before);
      assert.equal(calls.length, 1);
      assert.equal(calls[0].target, 'http://ratings:9080/ratings/0');
      assert.equal(calls[0].headers['end-user'], 'jason');
      assert.equal(calls[0].headers['x-request-id'], 'req-v3');
      assert.equal(calls[0].headers['x-b3-traceid'], '463ac35c9f6413ad');
      assert.equal(calls[0].headers['x-unrelated'], undefined);
    });

    test('v2 reports the ratings error in each review when ratings is down, still with 200', async () => {
      const res = await request(`${reviewsV2NoRatings.url}/reviews/0`);
      assert.equal(res.status, 200);
      const body = JSON.parse(res.body);
      assert.deepEqual(body.reviews.map((r: { rating: unknown }) => r.rating), [
        { error: 'Ratings service is currently unavailable' },
        { error: 'Ratings service is currently unavailable' },
      ]);
    });

    test('v3 gives up on ratings after its 2.5 s client timeout', async () => {
      proxy.hangRequestIds.add('hang-ratings');
      const started = performance.now();
      const res = await request(`${reviewsV3.url}/reviews/0`, { headers: { 'x-request-id': 'hang-ratings' } });
      const elapsed = performance.now() - started;
      assert.equal(res.status, 200);
      assert.ok(res.body.includes('Ratings service is currently unavailable'), res.body);
      // v2 would wait 10 s; the upper bound leaves room for a loaded machine.
      assert.ok(elapsed >= 2_400 && elapsed < 9_000, `took ${elapsed} ms`);
    });

    test('a non-numeric product id is not a reviews resource', async () => {
      assert.equal((await request(`${reviewsV1.url}/reviews/abc`)).status, 404);
      assert.equal((await request(`${reviewsV1.url}/health`)).status, 200);
    });
  });

  describe('productpage wired with DETAILS_URL and REVIEWS_URL', () => {
    test('shows the book details and black stars from reviews v2', async () => {
      const res = await request(`${pageDirect.url}/productpage`);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /text\/html/);
      assert.ok(res.body.includes('Book Details'));
      assert.ok(res.body.includes('paperback') && res.body.includes('PublisherA') && res.body.includes('123-1234567890'));
      // 5 + 4 full stars, all black.
      assert.equal(countOf(res.body, '<span class="glyphicon glyphicon-star" style="color: black">'), 9);
      assert.equal(countOf(res.body, 'color: red'), 0);
      assert.ok(!res.body.includes('currently unavailable'));
    });

    test('login sets the user cookie and redirects; logout clears it', async () => {
      const login = await request(`${pageDirect.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=jason&passwd=secret',
      });
      assert.equal(login.status, 302);
      assert.equal(login.headers.location, '/productpage');
      assert.match(String(login.headers['set-cookie']), /^user=jason;/);
      const page = await request(`${pageDirect.url}/productpage`, { headers: { cookie: 'user=jason' } });
      assert.ok(page.body.includes('jason ( <a href="logout">sign out</a> )'));
      const logout = await request(`${pageDirect.url}/logout`);
      assert.equal(logout.status, 302);
      assert.match(String(logout.headers['set-cookie']), /^user=;.*Max-Age=0/);
    });

    test('serves health and the product API', async () => {
      const health = await request(`${pageDirect.url}/health`);
      assert.equal(health.status, 200);
      assert.equal(health.body, 'Product page is healthy');
      const products = JSON.parse((await request(`${pageDirect.url}/api/v1/products`)).body);
      assert.equal(products[0].id, 0);
      assert.equal(products[0].title, 'The Comedy of Errors');
      const product = await request(`${pageDirect.url}/api/v1/products/0`);
      assert.equal(product.status, 200);
      assert.equal(JSON.parse(product.body).publisher, 'PublisherA');
      const reviews = await request(`${pageDirect.url}/api/v1/products/0/reviews`);
      assert.equal(reviews.status, 200);
      assert.equal(JSON.parse(reviews.body).reviews[0].rating.color, 'black');
    });
  });

  describe('productpage calling through HTTP_PROXY', () => {
    test('shows red stars from reviews v3 and names mesh hosts in absolute-URL targets', async () => {
      proxy.routes.set('reviews:9080', { forwardTo: reviewsV3.url });
      const before = proxy.seen.length;
      const res = await request(`${pageProxied.url}/productpage`);
      assert.equal(res.status, 200);
      assert.equal(countOf(res.body, '<span class="glyphicon glyphicon-star" style="color: red">'), 9);
      assert.ok(res.body.includes('PublisherA'));
      const targets = proxy.seen.slice(before).map((s) => s.target);
      // Details first, then reviews, whose ratings call also passes the proxy.
      assert.deepEqual(targets, ['http://details:9080/details/0', 'http://reviews:9080/reviews/0', 'http://ratings:9080/ratings/0']);
    });

    test('shows no stars with reviews v1', async () => {
      proxy.routes.set('reviews:9080', { forwardTo: reviewsV1.url });
      const res = await request(`${pageProxied.url}/productpage`);
      assert.equal(res.status, 200);
      assert.ok(res.body.includes('Book Reviews'));
      assert.ok(!res.body.includes('glyphicon glyphicon-star'));
    });

    test('shows the reviews error text after one retry when reviews fails', async () => {
      proxy.routes.set('reviews:9080', { status: 503, body: 'no healthy upstream' });
      const before = proxy.requestsTo('reviews:9080').length;
      const res = await request(`${pageProxied.url}/productpage`);
      assert.equal(res.status, 200);
      assert.ok(res.body.includes('Sorry, product reviews are currently unavailable for this book.'));
      assert.ok(res.body.includes('PublisherA'), 'details still shown');
      assert.equal(proxy.requestsTo('reviews:9080').length - before, 2);
      const api = await request(`${pageProxied.url}/api/v1/products/0/reviews`);
      assert.equal(api.status, 503);
      assert.deepEqual(JSON.parse(api.body), { error: 'Sorry, product reviews are currently unavailable for this book.' });
    });

    test('shows the details error text when details fails', async () => {
      proxy.routes.set('reviews:9080', { forwardTo: reviewsV1.url });
      proxy.routes.set('details:9080', { status: 555, body: 'fault filter abort' });
      try {
        const res = await request(`${pageProxied.url}/productpage`);
        assert.equal(res.status, 200);
        assert.ok(res.body.includes('Sorry, product details are currently unavailable for this book.'));
        assert.equal((await request(`${pageProxied.url}/api/v1/products/0`)).status, 555);
      } finally {
        proxy.routes.set('details:9080', { forwardTo: details.url });
      }
    });

    test('sends end-user to details and reviews after login, and propagates tracing headers', async () => {
      proxy.routes.set('reviews:9080', { forwardTo: reviewsV3.url });
      const login = await request(`${pageProxied.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=jason',
      });
      const cookie = String(login.headers['set-cookie']).split(';')[0];
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const before = proxy.seen.length;
      const res = await request(`${pageProxied.url}/productpage`, {
        headers: { cookie, 'x-request-id': 'req-1', traceparent, tracestate: 'a=b', b3: '80f198ee56343ba8-e457b5a2e4d86bd1-1', 'user-agent': 'bookinfo-test', 'x-secret': 'stay' },
      });
      assert.equal(res.status, 200);
      const calls = proxy.seen.slice(before).filter((s) => s.host !== 'ratings:9080');
      assert.deepEqual(calls.map((s) => s.host), ['details:9080', 'reviews:9080']);
      for (const call of calls) {
        assert.equal(call.headers['end-user'], 'jason');
        assert.equal(call.headers['x-request-id'], 'req-1');
        assert.equal(call.headers.traceparent, traceparent);
        assert.equal(call.headers.tracestate, 'a=b');
        assert.equal(call.headers.b3, '80f198ee56343ba8-e457b5a2e4d86bd1-1');
        assert.equal(call.headers['user-agent'], 'bookinfo-test');
        assert.equal(call.headers.cookie, 'user=jason');
        assert.equal(call.headers['x-secret'], undefined);
      }
      // Reviews carries them on to ratings.
      const ratingsCall = proxy.seen.slice(before).find((s) => s.host === 'ratings:9080');
      assert.equal(ratingsCall?.headers['end-user'], 'jason');
      assert.equal(ratingsCall?.headers['x-request-id'], 'req-1');
      assert.equal(ratingsCall?.headers.traceparent, traceparent);
    });

    test('sends no end-user when nobody is signed in', async () => {
      const before = proxy.seen.length;
      await request(`${pageProxied.url}/productpage`);
      const calls = proxy.seen.slice(before);
      assert.ok(calls.length >= 2);
      for (const call of calls) assert.equal(call.headers['end-user'], undefined);
    });
  });
});
