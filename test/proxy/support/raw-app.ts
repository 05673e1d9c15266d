/**
 * An upstream app that records, byte for byte, every request head that reaches it: a raw `net`
 * server, so that anything a proxy splices through unrouted shows up too (node's own server
 * would hide a smuggled request behind its parser). It answers each head with 200 and a short
 * body, except WebSocket handshakes to a path starting with `/ws/accept`, which it switches to
 * an echo of every frame byte it receives.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface SeenHead {
  method: string;
  path: string;
  /** Lower-case names; a repeated field keeps its last value. */
  headers: Record<string, string>;
}

export interface RawApp {
  readonly port: number;
  readonly heads: SeenHead[];
  /** Paths of every head seen, in order. */
  paths(): string[];
  close(): Promise<void>;
}

export async function startRawApp(): Promise<RawApp> {
  const heads: SeenHead[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    let switched = false;
    socket.on('data', (chunk: Buffer) => {
      if (switched) {
        socket.write(Buffer.concat([Buffer.from('echo:'), chunk]));
        return;
      }
      buf += chunk.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0 && !switched; end = buf.indexOf('\r\n\r\n')) {
        const [line, ...fields] = buf.slice(0, end).split('\r\n');
        buf = buf.slice(end + 4);
        const [method, path] = line.split(' ');
        const headers: Record<string, string> = {};
        for (const f of fields) {
          const c = f.indexOf(':');
          if (c > 0) headers[f.slice(0, c).trim().toLowerCase()] = f.slice(c + 1).trim();
        }
        heads.push({ method, path, headers });
        if (headers['upgrade']?.toLowerCase() === 'websocket' && path.startsWith('/ws/accept')) {
          switched = true;
          socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
          if (buf.length > 0) socket.write(Buffer.concat([Buffer.from('echo:'), Buffer.from(buf, 'latin1')]));
          buf = '';
        } else {
          const body = `app:${path}`;
          socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    heads,
    paths: () => heads.map((h) => h.path),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
