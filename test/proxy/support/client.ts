/**
 * Clients for the per-protocol instantiation of the proxy's tests (STYLE.md 17): the same
 * cases run over HTTP/1.1 and over HTTP/2 with prior knowledge (h2c).
 */
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';

export interface Req {
  method?: string;
  path?: string;
  /** Host / :authority. */
  host?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface Resp {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  trailers: Record<string, string | string[] | undefined>;
}

export interface Client {
  readonly protocol: 'HTTP/1.1' | 'HTTP/2';
  request(req: Req): Promise<Resp>;
  close(): Promise<void>;
}

export function h1Client(port: number): Client {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  return {
    protocol: 'HTTP/1.1',
    request: (r) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port, method: r.method ?? 'GET', path: r.path ?? '/', agent, headers: { host: r.host ?? 'echo', ...r.headers } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), trailers: res.trailers }));
            res.on('error', reject);
            res.on('aborted', () => reject(new Error('response aborted')));
            res.on('close', () => { if (!res.complete) reject(new Error('response aborted')); });
          },
        );
        req.on('error', reject);
        req.end(r.body);
      }),
    close: async () => agent.destroy(),
  };
}

export function h2Client(port: number): Client {
  let session: http2.ClientHttp2Session | undefined;
  const connect = () => {
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', () => {});
    }
    return session;
  };
  return {
    protocol: 'HTTP/2',
    request: (r) =>
      new Promise((resolve, reject) => {
        const s = connect();
        const stream = s.request({ ':method': r.method ?? 'GET', ':path': r.path ?? '/', ':authority': r.host ?? 'echo', ...r.headers }, { endStream: r.body === undefined });
        let status = 0;
        let headers: Record<string, string | string[] | undefined> = {};
        let trailers: Record<string, string | string[] | undefined> = {};
        const chunks: Buffer[] = [];
        stream.on('response', (h) => {
          status = Number(h[':status']);
          headers = { ...h };
          delete headers[':status'];
        });
        stream.on('trailers', (t) => { trailers = { ...t }; });
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => resolve({ status, headers, body: Buffer.concat(chunks).toString(), trailers }));
        stream.on('error', reject);
        stream.on('close', () => { if (stream.rstCode) reject(new Error(`stream reset ${stream.rstCode}`)); });
        if (r.body !== undefined) stream.end(r.body);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        if (!session || session.destroyed) return resolve();
        session.close(() => resolve());
      }),
  };
}

export const protocols = [
  { name: 'HTTP/1.1' as const, client: h1Client },
  { name: 'HTTP/2' as const, client: h2Client },
];

/** Writes raw bytes on a new connection and reads until the proxy closes it (malformed input, handshakes). */
export async function rawExchange(port: number, data: Buffer | string, opts: { end?: boolean } = {}): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(data);
  if (opts.end) socket.end();
  await once(socket, 'close');
  return Buffer.concat(chunks);
}
