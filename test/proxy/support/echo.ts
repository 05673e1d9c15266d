/**
 * Upstream test servers on port 0: an echo server replying JSON {method, path, host, headers,
 * version, body} like the acceptance echo workload, and helpers to control its replies.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface EchoReply {
  name: string;
  method: string;
  path: string;
  host: string;
  headers: Record<string, string | string[] | undefined>;
  version: string;
  body: string;
}

export interface EchoServer {
  readonly name: string;
  readonly port: number;
  /** Requests seen, in order. */
  readonly seen: EchoReply[];
  /** Replace the handler: return true when the request was answered. */
  override?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
  close(): Promise<void>;
}

/** An HTTP/1.1 echo server (or h2c prior-knowledge with `h2: true`). */
export async function startEcho(name: string, opts: { h2?: boolean; status?: number } = {}): Promise<EchoServer> {
  const seen: EchoReply[] = [];
  const echo: EchoServer = { name, port: 0, seen, close: async () => {} };
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = { ...req.headers } as Record<string, string | string[] | undefined>;
      const host = (headers[':authority'] as string | undefined) ?? (headers.host as string | undefined) ?? '';
      const reply: EchoReply = { name, method: req.method ?? '', path: req.url ?? '', host, headers, version: req.httpVersion, body: Buffer.concat(chunks).toString() };
      seen.push(reply);
      if (echo.override?.(req as http.IncomingMessage, res as http.ServerResponse)) return;
      const text = JSON.stringify(reply);
      (res as http.ServerResponse).writeHead(opts.status ?? 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-echo-name': name });
      res.end(text);
    });
  };
  const server = opts.h2 ? http2.createServer(handler) : http.createServer(handler);
  const sockets = new Set<net.Socket | http2.Http2Session>();
  if (opts.h2) server.on('session', (s: http2.Http2Session) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  else server.on('connection', (s: net.Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  Object.assign(echo, {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
  return echo;
}

/** A port nothing listens on (bound then released). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
