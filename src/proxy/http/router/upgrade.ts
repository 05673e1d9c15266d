/**
 * An upgrade the upstream accepted (Envoy's upgrade_configs): the 101 goes to the client, and
 * the two connections are spliced, with the bytes the client sent early passed on first. The
 * upstream side is the pool's own connection (through the cluster's transport socket: TLS
 * upstreams stay TLS), handed over by the HTTP/1.1 client on the 101. Only now does the
 * downstream connection stop being HTTP: any other answer was an ordinary response, and the
 * connection went on parsing requests. Either side closing or failing, or the stream idle
 * timeout, tears down both.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ResponseFlag } from '../../../api/response-flags.js';
import { H1Response } from '../h1-server.js';
import type { HeaderBag } from '../headers.js';
import type { RouterStream } from './types.js';

/**
 * Writes the 101 and splices; `onEnd` runs once when the tunnel closes. Throws when the head
 * cannot be written (the caller answers 502).
 */
export function spliceUpgrade(s: RouterStream, status: number, head: HeaderBag, upstream: Duplex, onEnd: () => void): void {
  const res = s.res as H1Response;
  res.writeHead(status, head);
  const switched: { socket: Socket; head: Buffer } = res.switchProtocols();
  const { socket: downstream, head: early } = switched;
  let closed = false;
  const teardown = () => {
    if (closed) return;
    closed = true;
    onEnd();
    upstream.destroy();
    downstream.destroy();
    s.finish();
  };
  upstream.on('close', teardown);
  downstream.on('close', teardown);
  downstream.on('error', teardown);
  const idleMs = s.lctx.http.streamIdleTimeoutMs;
  if (idleMs !== undefined && idleMs > 0) {
    // Envoy's stream idle timeout applies to an upgraded stream too: no bytes either way.
    downstream.setTimeout(idleMs, () => {
      s.addFlag(ResponseFlag.StreamIdleTimeout);
      teardown();
    });
  }
  if (early.length > 0) upstream.write(early);
  upstream.pipe(downstream);
  downstream.pipe(upstream);
}

/** The client can still be switched: sinew's HTTP/1.1 codec, nothing sent yet. */
export function canSwitchProtocols(s: RouterStream): boolean {
  return s.res instanceof H1Response && !s.res.headersSent;
}
