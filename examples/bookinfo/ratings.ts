/**
 * Bookinfo ratings: the star ratings each reviewer gave a book.
 *
 * A stand-alone copy of Istio's samples/bookinfo/src/ratings (the Node.js v1 service, without its
 * database backends): GET /ratings/{id} answers {"id": N, "ratings": {"Reviewer1": 5,
 * "Reviewer2": 4}}; POST /ratings/{id} replaces the ratings for that product, as the real one does.
 * It makes no outbound calls. Run alone with `PORT=9080 npx tsx ratings.ts`.
 */
import http from 'node:http';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? '9080');
const maxBodyBytes = 64 * 1024;

type Ratings = Record<string, number>;

// Ratings posted by users replace the defaults for their product, kept in memory like the real app.
const userAddedRatings = new Map<number, Ratings>();

function localRatings(productId: number): { id: number; ratings: Ratings } {
  return { id: productId, ratings: userAddedRatings.get(productId) ?? { Reviewer1: 5, Reviewer2: 4 } };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
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

/** The real app takes the last path segment and parses it as an integer. */
function productIdOf(pathname: string): number {
  return Number.parseInt(pathname.split('/').pop() ?? '', 10);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const pathname = new URL(req.url ?? '/', 'http://ratings').pathname;

  if (pathname === '/health' && req.method === 'GET') {
    sendJson(res, 200, { status: 'Ratings is healthy' });
    return;
  }

  if (/^\/ratings\/[0-9]*/.test(pathname)) {
    const productId = productIdOf(pathname);
    if (req.method === 'GET') {
      if (Number.isNaN(productId)) sendJson(res, 400, { error: 'please provide numeric product ID' });
      else sendJson(res, 200, localRatings(productId));
      return;
    }
    if (req.method === 'POST') {
      if (Number.isNaN(productId)) {
        sendJson(res, 400, { error: 'please provide numeric product ID' });
        return;
      }
      let ratings: unknown;
      try {
        ratings = JSON.parse(await readBody(req));
      } catch {
        sendJson(res, 400, { error: 'please provide valid ratings JSON' });
        return;
      }
      if (!isRatings(ratings)) {
        sendJson(res, 400, { error: 'please provide valid ratings JSON' });
        return;
      }
      userAddedRatings.set(productId, ratings);
      sendJson(res, 200, { id: productId, ratings });
      return;
    }
  }

  sendJson(res, 404, { error: 'Not found' });
}

function isRatings(value: unknown): value is Ratings {
  return typeof value === 'object' && value !== null && !Array.isArray(value) &&
    Object.values(value).every((v) => Number.isInteger(v));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    if (!res.headersSent) sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
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
    process.exit(0);
  });
}
