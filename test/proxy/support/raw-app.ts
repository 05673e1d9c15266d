/**
 * An upstream app that records, byte for byte, every request head that reaches it: a raw `net`
 * server, so that anything a proxy splices through unrouted shows up too (node's own server
 * would hide a smuggled request behind its parser). It reads Content-Length and chunked
 * bodies, answers each whole request with 200 and `app:<path>`, except:
 *
 *   - a WebSocket handshake to a path starting with `/ws/accept` switches to an echo of every
 *     byte it receives after the 101;
 *   - a path starting with `/api/hang` is never answered;
 *   - `/health` answers 200 and `/_seen` the heads seen so far (JSON), neither recorded: the
 *     runner's readiness probe, and a test asking the app directly what reached it.
 *
 * With `h2c`, a connection that opens with the HTTP/2 preface is served by node's http2
 * server instead, its requests recorded alike (a sidecar whose port speaks HTTP/2 sends those).
 */
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface SeenHead {
  method: string;
  path: string;
  /** Lower-case names; a repeated field keeps its last value. */
  headers: Record<string, string>;
  /** Its body arrived whole. */
  complete: boolean;
}

export interface RawApp {
  readonly port: number;
  readonly heads: SeenHead[];
  /** Paths of every head seen, in order. */
  paths(): string[];
  /** Connections open now. */
  connections(): number;
  close(): Promise<void>;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export async function startRawApp(options: { host?: string; port?: number; h2c?: boolean } = {}): Promise<RawApp> {
  const heads: SeenHead[] = [];
  const sockets = new Set<net.Socket>();
  const h2 = options.h2c ? http2.createServer() : undefined;
  h2?.on('stream', (stream, headers) => {
    const path = String(headers[':path'] ?? '/');
    stream.on('error', () => {});
    if (path === '/health' || path === '/_seen') {
      stream.respond({ ':status': 200 });
      stream.end(path === '/_seen' ? JSON.stringify(heads) : 'ok');
      return;
    }
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && v !== undefined) flat[k] = String(v);
    const head: SeenHead = { method: String(headers[':method']), path, headers: flat, complete: false };
    heads.push(head);
    stream.resume();
    stream.on('end', () => {
      head.complete = true;
      if (path.startsWith('/api/hang')) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`app:${path}`);
    });
  });
  h2?.on('session', (s) => s.on('error', () => {}));
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (h2 !== undefined) {
      // The first bytes say which protocol: the HTTP/2 preface, or an HTTP/1.1 request line.
      socket.once('data', (first: Buffer) => {
        socket.pause();
        socket.unshift(first);
        const n = Math.min(first.length, PREFACE.length);
        // node's http2 session reads the socket itself, buffered bytes first (nodejs/node#35475).
        if (first.subarray(0, n).equals(PREFACE.subarray(0, n))) h2.emit('connection', socket);
        else {
          serveHttp1(socket);
          socket.resume();
        }
      });
      return;
    }
    serveHttp1(socket);
  });
  const serveHttp1 = (socket: net.Socket) => {
    let buf = Buffer.alloc(0);
    let switched = false;
    /** The request whose body is being read, and how: bytes left, or chunked. */
    let current: { head: SeenHead; remaining: number; chunked: boolean } | undefined;
    const respond = (head: SeenHead) => {
      head.complete = true;
      if (head.path === '/health' || head.path === '/_seen') {
        heads.splice(heads.indexOf(head), 1);
        const body = head.path === '/_seen' ? JSON.stringify(heads) : 'ok';
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        return;
      }
      if (head.path.startsWith('/api/hang')) return;
      const body = `app:${head.path}`;
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    };
    socket.on('data', (chunk: Buffer) => {
      if (switched) {
        socket.write(Buffer.concat([Buffer.from('echo:'), chunk]));
        return;
      }
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (current === undefined) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const [line, ...fields] = buf.subarray(0, end).toString('latin1').split('\r\n');
          buf = buf.subarray(end + 4);
          const [method, path] = line.split(' ');
          const headers: Record<string, string> = {};
          for (const f of fields) {
            const c = f.indexOf(':');
            if (c > 0) headers[f.slice(0, c).trim().toLowerCase()] = f.slice(c + 1).trim();
          }
          const head: SeenHead = { method, path, headers, complete: false };
          heads.push(head);
          if (headers['upgrade']?.toLowerCase() === 'websocket' && path.startsWith('/ws/accept')) {
            switched = true;
            socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
            if (buf.length > 0) socket.write(Buffer.concat([Buffer.from('echo:'), buf]));
            return;
          }
          const chunked = /chunked/i.test(headers['transfer-encoding'] ?? '');
          current = { head, remaining: chunked ? 0 : Number(headers['content-length'] ?? 0), chunked };
        }
        if (current.chunked) {
          // chunk-size CRLF data CRLF ... 0 CRLF CRLF (no trailers from the proxies)
          const lf = buf.indexOf('\r\n');
          if (lf < 0) return;
          const size = parseInt(buf.subarray(0, lf).toString('latin1'), 16);
          if (buf.length < lf + 2 + size + 2) return;
          buf = buf.subarray(lf + 2 + size + 2);
          if (size > 0) continue;
        } else {
          const take = Math.min(current.remaining, buf.length);
          current.remaining -= take;
          buf = buf.subarray(take);
          if (current.remaining > 0) return;
        }
        const done = current.head;
        current = undefined;
        respond(done);
      }
    });
  };
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    heads,
    paths: () => heads.map((h) => h.path),
    connections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
