/**
 * An upstream app that records, byte for byte, every request head that reaches it: a raw `net`
 * server, so that anything a proxy splices through unrouted shows up too (node's own server
 * would hide a smuggled request behind its parser). It reads Content-Length and chunked
 * bodies, answers each whole request with 200 and `app:<path>`, except:
 *
 *   - a WebSocket handshake to a path starting with `/ws/accept` switches to an echo of every
 *     byte it receives after the 101;
 *   - a path starting with `/api/hang` is never answered.
 */
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

export async function startRawApp(): Promise<RawApp> {
  const heads: SeenHead[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let switched = false;
    /** The request whose body is being read, and how: bytes left, or chunked. */
    let current: { head: SeenHead; remaining: number; chunked: boolean } | undefined;
    const respond = (head: SeenHead) => {
      head.complete = true;
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
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
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
