/**
 * Bookinfo reviews: two reviews of the book, in three versions.
 *
 * A stand-alone copy of Istio's samples/bookinfo/src/reviews (the Java Liberty service), chosen by
 * REVIEWS_VERSION:
 *   v1  reviews without any "rating" key; never calls ratings.
 *   v2  calls ratings (10 s client timeout) and adds "rating": {"stars": N, "color": "black"}.
 *   v3  calls ratings (2.5 s client timeout) and adds "rating": {"stars": N, "color": "red"}.
 * When ratings fails, each review carries "rating": {"error": "Ratings service is currently
 * unavailable"} instead, and the reply is still 200, as the real service answers.
 *
 * The JSON text is built the way the Java service builds it (same key order and spacing), because
 * clients and tests match on fragments such as `"color": "black"`.
 *
 * Outbound calls name the mesh host (http://ratings:9080) and go through the HTTP proxy in
 * HTTP_PROXY when it is set, with the absolute URL as the request target as curl sends it.
 * Without a proxy, RATINGS_URL (for example http://127.0.0.1:9081) says where ratings listens, so
 * the app runs alone: `REVIEWS_VERSION=v2 RATINGS_URL=http://127.0.0.1:9081 PORT=9082 npx tsx reviews.ts`.
 */
import http from 'node:http';

// === configuration ===

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? '9080');
const version = process.env.REVIEWS_VERSION ?? 'v1';
const ratingsBase = process.env.RATINGS_URL ?? 'http://ratings:9080';

interface VersionBehaviour {
  ratingsEnabled: boolean;
  starColor: string;
  /** The real v2 waits 10 s for ratings, v3 only 2.5 s: the fault-injection tasks rely on both. */
  ratingsTimeoutMs: number;
}

const versions: Record<string, VersionBehaviour> = {
  v1: { ratingsEnabled: false, starColor: 'black', ratingsTimeoutMs: 10_000 },
  v2: { ratingsEnabled: true, starColor: 'black', ratingsTimeoutMs: 10_000 },
  v3: { ratingsEnabled: true, starColor: 'red', ratingsTimeoutMs: 2_500 },
};

const behaviour = versions[version];
if (behaviour === undefined) {
  process.stderr.write(`reviews: REVIEWS_VERSION must be one of ${Object.keys(versions).join(', ')}, got "${version}"\n`);
  process.exit(2);
}

// A pod's name in Kubernetes; under the embedded runner the workload name plus the process id
// tells replicas apart the same way.
const podName = process.env.SINEW_WORKLOAD
  ? `${process.env.SINEW_WORKLOAD}-${process.pid}`
  : (process.env.HOSTNAME ?? `reviews-${version}-${process.pid}`);
// The Java service concatenates a missing CLUSTER_NAME as the string "null".
const clusterName = process.env.CLUSTER_NAME ?? 'null';

// The headers the real reviews service forwards to ratings (LibertyRestEndpoint.headers_to_propagate).
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
  'end-user',
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

// === ratings ===

function forwardHeaders(req: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of propagatedHeaders) {
    const value = req.headers[name];
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Stars per reviewer, or undefined when ratings could not be reached or answered badly. */
async function fetchRatings(productId: string, headers: Record<string, string>, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
  const target = new URL(`${ratingsBase.replace(/\/+$/, '')}/ratings/${productId}`);
  try {
    const reply = await httpGet(target, { ...headers, accept: 'application/json' }, timeoutMs);
    if (reply.status !== 200) {
      process.stderr.write(`Error: unable to contact ${target.href} got status of ${reply.status}\n`);
      return undefined;
    }
    const parsed: unknown = JSON.parse(reply.body);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const ratings = (parsed as { ratings?: unknown }).ratings;
    return typeof ratings === 'object' && ratings !== null ? (ratings as Record<string, unknown>) : {};
  } catch (err) {
    process.stderr.write(`Error: unable to contact ${target.href} got exception ${err instanceof Error ? err.message : String(err)}\n`);
    return undefined;
  }
}

function starsOf(ratings: Record<string, unknown> | undefined, reviewer: string): number {
  const stars = ratings?.[reviewer];
  return typeof stars === 'number' && Number.isInteger(stars) ? stars : -1;
}

// === reply body ===

const reviewTexts = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
];

/** Mirrors LibertyRestEndpoint.getJsonResponse, spacing included. */
function reviewsJson(productId: string, stars: number[], b: VersionBehaviour): string {
  const q = (s: string): string => JSON.stringify(s);
  const reviews = reviewTexts.map((review, i) => {
    let item = `{  "reviewer": ${q(review.reviewer)},  "text": ${q(review.text)}`;
    if (b.ratingsEnabled) {
      item += stars[i] !== -1
        ? `, "rating": {"stars": ${stars[i]}, "color": ${q(b.starColor)}}`
        : ', "rating": {"error": "Ratings service is currently unavailable"}';
    }
    return item + '}';
  });
  return `{"id": ${q(productId)},"podname": ${q(podName)},"clustername": ${q(clusterName)},"reviews": [${reviews.join(',')}]}`;
}

// === server ===

function sendJsonText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, b: VersionBehaviour): Promise<void> {
  const pathname = new URL(req.url ?? '/', 'http://reviews').pathname;

  if (pathname === '/health' && req.method === 'GET') {
    sendJsonText(res, 200, '{"status": "Reviews is healthy"}');
    return;
  }

  // JAX-RS binds {productId} to an int: anything else does not match the resource at all.
  const match = /^\/reviews\/([+-]?\d+)$/.exec(pathname);
  if (match && req.method === 'GET') {
    const productId = String(Number.parseInt(match[1], 10));
    let stars = [-1, -1];
    if (b.ratingsEnabled) {
      const ratings = await fetchRatings(productId, forwardHeaders(req), b.ratingsTimeoutMs);
      stars = reviewTexts.map((review) => starsOf(ratings, review.reviewer));
    }
    sendJsonText(res, 200, reviewsJson(productId, stars, b));
    return;
  }

  sendJsonText(res, 404, '{"error": "Not found"}');
}

const server = http.createServer((req, res) => {
  handle(req, res, behaviour).catch((err: unknown) => {
    if (!res.headersSent) sendJsonText(res, 500, JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
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
