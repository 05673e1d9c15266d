/**
 * Bookinfo details: the publishing facts of a book.
 *
 * A stand-alone copy of Istio's samples/bookinfo/src/details (the Ruby v1 service, without the
 * optional external Google Books lookup): GET /details/{id} answers the same hard-coded JSON for
 * any numeric id, and a non-numeric id gets 400. It makes no outbound calls.
 * Run alone with `PORT=9080 npx tsx details.ts`.
 */
import http from 'node:http';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? '9080');

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function bookDetails(id: number): Record<string, string | number> {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const pathname = new URL(req.url ?? '/', 'http://details').pathname;

  if (pathname === '/health') {
    sendJson(res, 200, { status: 'Details is healthy' });
    return;
  }

  // WEBrick mounts the handler on the /details prefix and reads the id from the last segment.
  if (pathname === '/details' || pathname.startsWith('/details/')) {
    const last = pathname.split('/').pop() ?? '';
    // Ruby's Integer() accepts only a whole decimal number here, not "12abc".
    if (!/^[+-]?\d+$/.test(last)) {
      sendJson(res, 400, { error: 'please provide numeric product id' });
      return;
    }
    sendJson(res, 200, bookDetails(Number(last)));
    return;
  }

  sendJson(res, 404, { error: 'Not found' });
}

const server = http.createServer((req, res) => {
  try {
    handle(req, res);
  } catch (err) {
    if (!res.headersSent) sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
    else res.destroy();
  }
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
