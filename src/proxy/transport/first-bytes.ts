/**
 * Holds a new connection until its first bytes say how to serve it (Envoy's listener filters:
 * tls_inspector, http_inspector). HTTP and TCP listeners both choose their filter chain this
 * way (and the HTTP listener its codec).
 */
import type net from 'node:net';

/**
 * `decide` gets everything read so far and returns what to hand the socket to, or undefined to
 * wait for more; the bytes read are put back first. A connection that ends while still
 * undecided is closed; one that says too little within `timeoutMs` is closed too, or handed to
 * `onTimeout` (with what it sent put back) when given.
 */
export function peekFirstBytes(
  socket: net.Socket,
  timeoutMs: number,
  decide: (seen: Buffer) => ((socket: net.Socket) => void) | undefined,
  onTimeout: (socket: net.Socket) => void = (s) => s.destroy(),
): void {
  let seen: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => {
    stop();
    socket.pause();
    if (seen.length) socket.unshift(seen);
    onTimeout(socket);
  }, timeoutMs);
  const stop = () => {
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', stop);
  };
  const onEnd = () => socket.destroy();
  const onData = (chunk: Buffer) => {
    seen = seen.length ? Buffer.concat([seen, chunk]) : chunk;
    const serve = decide(seen);
    if (serve === undefined) return;
    stop();
    socket.pause();
    socket.unshift(seen);
    serve(socket);
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', stop);
  if (socket.isPaused()) socket.resume(); // a previous peek paused it before handing it on
}
