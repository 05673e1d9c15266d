/**
 * HTTP/1.1 upgrade requests (RFC 9110 §7.8). Node's server parses them and hands their socket
 * over on 'upgrade'; the listener then gives the connection to sinew's own HTTP/1.1 codec
 * (H1Connection.adopt), which serves the request like any other: routed, filtered, sent
 * upstream asking for the upgrade. Only a 101 from the upstream switches the connection to
 * the new protocol (router.ts, H1Response.switchProtocols); any other answer is an ordinary
 * response, and whatever the client sent after its request is parsed as the next request on
 * the connection. (Splicing the sockets before the upstream agreed let a second request on a
 * declined upgrade reach the app unrouted, with forged identity headers intact.)
 *
 * `Upgrade: h2c` is ignored, as Envoy does: the request is served over HTTP/1.1, so
 * `curl --http2 http://...` works. WebSocket is the one protocol switched to; others are
 * refused with 403, as Envoy refuses upgrade types it is not configured for.
 */
import type { IncomingMessage } from 'node:http';

/** What to do with an upgrade request node handed over. */
export type UpgradeDisposition =
  | { serve: true; /** Absent: serve it as a plain HTTP/1.1 request. */ upgrade?: 'websocket'; keepAlive: boolean; bodyLength: number }
  | { serve: false; status: number; details: string; body: string };

export function upgradeDisposition(req: IncomingMessage): UpgradeDisposition {
  const kind = String(req.headers['upgrade'] ?? '').trim().toLowerCase();
  const connection = String(req.headers['connection'] ?? '').toLowerCase();
  const keepAlive = req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && !/(?:^|[\s,])close(?:$|[\s,])/.test(connection);
  // Node's parser stops at the end of an upgrade request's head: a body it declared was not
  // read as one, and only a Content-Length one can be found again in what follows.
  if (req.headers['transfer-encoding'] !== undefined) {
    return { serve: false, status: 400, details: 'http1.upgrade_with_chunked_body', body: 'an upgrade request with a chunked body is not supported' };
  }
  const cl = req.headers['content-length'];
  const bodyLength = cl === undefined ? 0 : /^\d{1,15}$/.test(cl) ? Number(cl) : -1;
  if (bodyLength < 0) return { serve: false, status: 400, details: 'http1.codec_error', body: 'invalid content-length' };
  if (kind === 'h2c') return { serve: true, keepAlive, bodyLength };
  if (kind === 'websocket') {
    // RFC 6455 §4.1: the opening handshake is a GET; §4.2.1: a server answers any other with 400.
    if (req.method !== 'GET' || bodyLength > 0) {
      return { serve: false, status: 400, details: 'http1.invalid_websocket_handshake', body: 'a WebSocket opening handshake is a GET without a body' };
    }
    return { serve: true, upgrade: 'websocket', keepAlive, bodyLength: 0 };
  }
  return { serve: false, status: 403, details: 'upgrade_failed', body: `upgrade to "${kind}" is not supported` };
}
