/**
 * HTTP/1.1 upgrades (WebSocket). The request is routed like any other (same route table,
 * filters, rewrites); the router then splices the client socket to a raw upstream connection.
 * Local replies before the splice are written to the raw socket through `RawResponse`.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { ListenerContext, ProxyRuntime } from '../runtime.js';
import { HttpStream, type DownstreamResponseObject } from './stream.js';

/** The response surface HttpStream needs, over a socket node has handed over on 'upgrade'. */
class RawResponse extends EventEmitter {
  headersSent = false;
  writableFinished = false;

  constructor(private readonly socket: Duplex) {
    super();
    socket.on('close', () => this.emit('close'));
  }

  writeHead(status: number, headers: Record<string, string | string[] | number> = {}): this {
    let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nconnection: close\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      if (k === 'connection') continue;
      for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
    }
    this.socket.write(head + '\r\n');
    this.headersSent = true;
    return this;
  }

  end(body?: string | Buffer): this {
    this.writableFinished = true;
    this.socket.end(body);
    return this;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function handleUpgrade(runtime: ProxyRuntime, ctx: ListenerContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  const snapshot = runtime.current;
  const kind = String(req.headers['upgrade'] ?? '').toLowerCase();
  if (!snapshot || kind !== 'websocket') {
    // Envoy refuses upgrade types it is not configured for.
    socket.end(`HTTP/1.1 ${snapshot ? 403 : 503} ${snapshot ? 'Forbidden' : 'Service Unavailable'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    return;
  }
  const res = new RawResponse(socket) as unknown as DownstreamResponseObject;
  const stream = new HttpStream(runtime, ctx, req, res, snapshot);
  stream.upgrade = { socket, head };
  stream.run();
}
