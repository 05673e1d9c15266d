/**
 * Bookinfo productpage: the web page that calls details and reviews and shows one book.
 *
 * A stand-alone copy of Istio's samples/bookinfo/src/productpage (the Python Flask service):
 *   GET  /productpage                    HTML page with the book's details and reviews
 *   POST /login (form field username)    sets the `user` cookie and redirects to /productpage
 *   GET  /logout                         clears the cookie and redirects to /productpage
 *   GET  /health                         "Product page is healthy"
 *   GET  /api/v1/products                the product list
 *   GET  /api/v1/products/{id}           details JSON, with the details service's status
 *   GET  /api/v1/products/{id}/reviews   reviews JSON, with the reviews service's status
 *   GET  /api/v1/products/{id}/ratings   ratings JSON, with the ratings service's status
 *
 * Its client behaviour is copied on purpose, because Istio's fault-injection and timeout tasks
 * depend on it: details and ratings get one try with a 3 s timeout; reviews gets two tries with
 * 3 s each (so a page whose reviews hang takes about 6 s), and any non-200 answer from either
 * shows an error text in the page rather than failing it. Calls are made one after the other.
 * A signed-in user is sent to details and reviews as `end-user: <name>`.
 *
 * Outbound calls name the mesh hosts (http://details:9080, http://reviews:9080,
 * http://ratings:9080) and go through the HTTP proxy in HTTP_PROXY when it is set, with the
 * absolute URL as the request target as curl sends it. Without a proxy, DETAILS_URL, REVIEWS_URL
 * and RATINGS_URL say where each service listens, so the app can run alone.
 */
import http from 'node:http';

// === configuration ===

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? '9080');
const detailsBase = process.env.DETAILS_URL ?? 'http://details:9080';
const reviewsBase = process.env.REVIEWS_URL ?? 'http://reviews:9080';
const ratingsBase = process.env.RATINGS_URL ?? 'http://ratings:9080';

// Python requests' timeout=3.0 in the real app.
const upstreamTimeoutMs = 3_000;
// "Do not remove. Bug introduced explicitly for illustration in fault injection task": the real
// app loops twice over the reviews call.
const reviewsAttempts = 2;
const maxFormBytes = 64 * 1024;

// The headers the real productpage forwards (getForwardHeaders). It lets its tracer write the B3
// headers; without a tracer in this copy they are forwarded as received, which keeps the trace.
const propagatedHeaders = [
  'x-request-id',
  'x-ot-span-context',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'traceparent',
  'tracestate',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'sw8',
  'user-agent',
  'cookie',
  'authorization',
  'jwt',
];

// === outbound HTTP through the mesh proxy ===

const maxUpstreamBodyBytes = 1024 * 1024;
const proxy = parseProxy(process.env.HTTP_PROXY ?? process.env.http_proxy);
const noProxy = (process.env.NO_PROXY ?? process.env.no_proxy ?? '')
  .split(',')
  .map((entry) => entry.trim().toLowerCase().replace(/^\*?\./, ''))
  .filter((entry) => entry !== '');
// One pool for this app's calls, so keep-alive connections to the proxy are reused.
const agent = new http.Agent({ keepAlive: true });

function parseProxy(value: string | undefined): URL | undefined {
  if (value === undefined || value === '') return undefined;
  const url = new URL(value.includes('://') ? value : `http://${value}`);
  if (url.protocol !== 'http:') throw new Error(`HTTP_PROXY must be an http:// URL, got ${value}`);
  return url;
}

function bypassesProxy(hostname: string): boolean {
  return noProxy.some((entry) => entry === '*' || hostname === entry || hostname.endsWith(`.${entry}`));
}

function bareHost(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
}

interface Reply {
  status: number;
  body: string;
}

/** GET `target` within `timeoutMs` (connect and response together), through the proxy if one is set. */
async function httpGet(target: URL, headers: Record<string, string>, timeoutMs: number): Promise<Reply> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return await sendGet(target, headers, signal);
  } catch (err) {
    // A kept-alive connection the peer closed while idle fails on reuse before anything was sent
    // back; Node's documentation recommends retrying exactly this case once.
    if (err instanceof StaleConnectionError) return sendGet(target, headers, signal);
    throw err;
  }
}

class StaleConnectionError extends Error {}

function sendGet(target: URL, headers: Record<string, string>, signal: AbortSignal): Promise<Reply> {
  const viaProxy = proxy !== undefined && !bypassesProxy(bareHost(target.hostname));
  const next = viaProxy ? proxy : target;
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request({
      agent,
      signal,
      method: 'GET',
      host: bareHost(next.hostname),
      port: next.port === '' ? 80 : Number(next.port),
      path: viaProxy ? target.href : target.pathname + target.search,
      headers: { ...headers, host: target.host },
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(req.reusedSocket && err.code === 'ECONNRESET' ? new StaleConnectionError(err.message) : err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxUpstreamBodyBytes) {
          req.destroy(new Error(`response from ${target.host} exceeds ${maxUpstreamBodyBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('close', () => {
        if (!res.complete) reject(new Error(`response from ${target.host} ended early`));
      });
    });
    req.end();
  });
}

function serviceUrl(base: string, path: string): URL {
  return new URL(base.replace(/\/+$/, '') + path);
}

// === calls to details, reviews and ratings ===

/** A service's answer as the page uses it: its status (500 when it never answered) and JSON. */
interface ServiceResult {
  status: number;
  data: Record<string, unknown>;
}

const errorTexts = {
  details: 'Sorry, product details are currently unavailable for this book.',
  reviews: 'Sorry, product reviews are currently unavailable for this book.',
  ratings: 'Sorry, product ratings are currently unavailable for this book.',
};

/**
 * One call as the real app makes it: a 200 whose body is a JSON object is a success; any other
 * status is reported as that status, and no answer at all as 500, each with the error text.
 */
async function callService(target: URL, headers: Record<string, string>, errorText: string): Promise<ServiceResult> {
  let status = 500;
  try {
    const reply = await httpGet(target, headers, upstreamTimeoutMs);
    status = reply.status || 500;
    if (reply.status === 200) {
      const data: unknown = JSON.parse(reply.body);
      if (typeof data === 'object' && data !== null && !Array.isArray(data)) return { status: 200, data: data as Record<string, unknown> };
      status = 500;
    }
  } catch {
    // No answer (refused, reset, timed out) or a body that is not JSON: reported as below.
  }
  return { status, data: { error: errorText } };
}

function productDetails(productId: string, headers: Record<string, string>): Promise<ServiceResult> {
  return callService(serviceUrl(detailsBase, `/details/${encodeURIComponent(productId)}`), headers, errorTexts.details);
}

async function productReviews(productId: string, headers: Record<string, string>): Promise<ServiceResult> {
  const target = serviceUrl(reviewsBase, `/reviews/${encodeURIComponent(productId)}`);
  let result: ServiceResult = { status: 500, data: { error: errorTexts.reviews } };
  for (let attempt = 0; attempt < reviewsAttempts; attempt++) {
    result = await callService(target, headers, errorTexts.reviews);
    if (result.status === 200) break;
  }
  return result;
}

function productRatings(productId: string, headers: Record<string, string>): Promise<ServiceResult> {
  return callService(serviceUrl(ratingsBase, `/ratings/${encodeURIComponent(productId)}`), headers, errorTexts.ratings);
}

// === users and headers ===

function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      // Not percent-encoded by us: keep it as sent.
    }
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

function signedInUser(req: http.IncomingMessage): string {
  return parseCookies(req.headers.cookie).get('user') ?? '';
}

function forwardHeaders(req: http.IncomingMessage, user: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of propagatedHeaders) {
    const value = req.headers[name];
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (user !== '') headers['end-user'] = user;
  return headers;
}

// === page ===

const product = {
  id: 0,
  title: 'The Comedy of Errors',
  descriptionHtml:
    '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of ' +
    '<b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major ' +
    'part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.',
};

function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function detailsHtml(details: ServiceResult): string {
  if (details.status !== 200) {
    return `<h4 class="text-center text-primary">Error fetching product details!</h4>
      <p>${escapeHtml(details.data.error)}</p>`;
  }
  const d = details.data;
  return `<h4 class="text-center text-primary">Book Details</h4>
      <dl>
        <dt>Author:</dt>${escapeHtml(d.author)}
        <dt>Year:</dt>${escapeHtml(d.year)}
        <dt>Type:</dt>${escapeHtml(d.type)}
        <dt>Pages:</dt>${escapeHtml(d.pages)}
        <dt>Publisher:</dt>${escapeHtml(d.publisher)}
        <dt>Language:</dt>${escapeHtml(d.language)}
        <dt>ISBN-10:</dt>${escapeHtml(d['ISBN-10'])}
        <dt>ISBN-13:</dt>${escapeHtml(d['ISBN-13'])}
      </dl>`;
}

function starsHtml(rating: Record<string, unknown>): string {
  const stars = typeof rating.stars === 'number' ? Math.max(0, Math.min(5, Math.trunc(rating.stars))) : 0;
  // The colour lands in an attribute: accept a plain colour name or hex code only.
  const color = typeof rating.color === 'string' && /^(?:[a-z]+|#[0-9a-f]{3,8})$/i.test(rating.color) ? rating.color : 'black';
  const full = `<span class="glyphicon glyphicon-star" style="color: ${color}"></span>`;
  const empty = `<span class="glyphicon glyphicon-star-empty" style="color: ${color}"></span>`;
  return `<div class="rating">${full.repeat(stars)}${empty.repeat(5 - stars)}</div>`;
}

function reviewsHtml(reviews: ServiceResult): string {
  if (reviews.status !== 200) {
    return `<h4 class="text-center text-primary">Error fetching product reviews!</h4>
      <p>${escapeHtml(reviews.data.error)}</p>`;
  }
  const list = Array.isArray(reviews.data.reviews) ? (reviews.data.reviews as unknown[]) : [];
  const items = list.map((item) => {
    const review = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    const rating = (typeof review.rating === 'object' && review.rating !== null ? review.rating : undefined) as Record<string, unknown> | undefined;
    let ratingHtml = '';
    // As in the real template: stars when the rating has any, the error text when it has one.
    if (rating?.stars) ratingHtml = starsHtml(rating);
    else if (rating?.error) ratingHtml = `<p><i>${escapeHtml(rating.error)}</i></p>`;
    return `<blockquote>
        <p>${escapeHtml(review.text)}</p>
        <small>${escapeHtml(review.reviewer)}</small>
        ${ratingHtml}
      </blockquote>`;
  });
  const cluster = reviews.data.clustername !== undefined && reviews.data.clustername !== 'null'
    ? ` on cluster <u>${escapeHtml(reviews.data.clustername)}</u>`
    : '';
  return `<h4 class="text-center text-primary">Book Reviews</h4>
      ${items.join('\n      ')}
      <dl>
        <dt>Reviews served by:</dt>
        <u>${escapeHtml(reviews.data.podname)}</u>${cluster}
      </dl>`;
}

function navHtml(user: string): string {
  const account = user !== ''
    ? `<p class="navbar-text navbar-right">${escapeHtml(user)} ( <a href="logout">sign out</a> )</p>`
    : `<form class="navbar-form navbar-right" method="post" action="login">
        <input type="text" name="username" placeholder="User Name" required>
        <input type="password" name="passwd" placeholder="Password">
        <button type="submit" class="btn btn-default">Sign in</button>
      </form>`;
  return `<nav class="navbar navbar-inverse navbar-static-top">
  <div class="container">
    <div class="navbar-header"><a class="navbar-brand" href="#">BookInfo Sample</a></div>
    ${account}
  </div>
</nav>`;
}

function pageHtml(user: string, details: ServiceResult, reviews: ServiceResult): string {
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Simple Bookstore App</title>
<style>
  body { font-family: sans-serif; margin: 0; }
  .navbar { background: #222; color: #eee; padding: 8px 16px; display: flex; justify-content: space-between; }
  .navbar a { color: #eee; }
  .row { display: flex; flex-wrap: wrap; gap: 32px; padding: 0 16px; }
  .col-md-6 { flex: 1 1 320px; }
  .text-primary { color: #337ab7; }
  .text-center { text-align: center; }
  blockquote { border-left: 4px solid #eee; margin: 12px 0; padding: 4px 12px; }
  .glyphicon-star::before { content: "\\2605"; }
  .glyphicon-star-empty::before { content: "\\2606"; }
</style>
</head>
<body>
${navHtml(user)}
<div class="container-fluid">
  <div class="row">
    <div class="col-md-12">
      <h3 class="text-center text-primary">${escapeHtml(product.title)}</h3>
      <p>Summary: ${product.descriptionHtml}</p>
    </div>
  </div>
  <div class="row">
    <div class="col-md-6">
      ${detailsHtml(details)}
    </div>
    <div class="col-md-6">
      ${reviewsHtml(reviews)}
    </div>
  </div>
</div>
</body>
</html>
`;
}

function indexHtml(): string {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Simple Bookstore App</title></head>
<body>
<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
<p>productpage calls details and reviews; reviews v2 and v3 call ratings.</p>
<p><a href="productpage?u=normal">Normal user</a></p>
<p><a href="productpage?u=test">Test user</a></p>
</body>
</html>
`;
}

// === server ===

function send(res: http.ServerResponse, status: number, contentType: string, body: string, extra: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { ...extra, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', JSON.stringify(body));
}

function redirect(res: http.ServerResponse, location: string, cookie: string): void {
  send(res, 302, 'text/html; charset=utf-8', `<a href="${escapeHtml(location)}">${escapeHtml(location)}</a>`, {
    location,
    'set-cookie': cookie,
  });
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://productpage');
  const path = url.pathname;
  const method = req.method ?? 'GET';

  if (path === '/' || path === '/index.html') {
    send(res, 200, 'text/html; charset=utf-8', indexHtml());
    return;
  }
  if (path === '/health') {
    send(res, 200, 'text/html; charset=utf-8', 'Product page is healthy');
    return;
  }

  if (path === '/login' && method === 'POST') {
    // Flask's request.values: the form body, then the query string.
    const form = new URLSearchParams(await readBody(req, maxFormBytes));
    const user = form.get('username') ?? url.searchParams.get('username') ?? '';
    redirect(res, '/productpage', `user=${encodeURIComponent(user)}; Path=/`);
    return;
  }
  if (path === '/logout' && method === 'GET') {
    redirect(res, '/productpage', 'user=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT');
    return;
  }

  if (path === '/productpage' && method === 'GET') {
    const user = signedInUser(req);
    const headers = forwardHeaders(req, user);
    const productId = String(product.id);
    // One after the other, as the real page does: the page time is the sum of both calls.
    const details = await productDetails(productId, headers);
    const reviews = await productReviews(productId, headers);
    send(res, 200, 'text/html; charset=utf-8', pageHtml(user, details, reviews));
    return;
  }

  if (method === 'GET' && path === '/api/v1/products') {
    sendJson(res, 200, [product]);
    return;
  }
  const api = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/.exec(path);
  if (api && method === 'GET') {
    const productId = decodeURIComponent(api[1]);
    const headers = forwardHeaders(req, signedInUser(req));
    const result = api[2] === 'reviews'
      ? await productReviews(productId, headers)
      : api[2] === 'ratings'
        ? await productRatings(productId, headers)
        : await productDetails(productId, headers);
    sendJson(res, result.status, result.data);
    return;
  }

  send(res, 404, 'text/html; charset=utf-8', '<h1>Not Found</h1>');
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `Internal Server Error: ${err instanceof Error ? err.message : String(err)}\n`);
    else res.destroy();
  });
});

server.listen(port, host, () => {
  const address = server.address();
  // The line lets a parent that started us with PORT=0 learn the port the kernel chose.
  process.stdout.write(`listening on ${typeof address === 'object' && address ? address.port : port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    agent.destroy();
    process.exit(0);
  });
}
