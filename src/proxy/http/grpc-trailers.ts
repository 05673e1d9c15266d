/**
 * gRPC's status travels in trailers, or — when a call fails before any message — in a
 * "Trailers-Only" response: one HEADERS frame with END_STREAM carrying `grpc-status` (gRPC over
 * HTTP/2, "Responses"). Node's compatibility API never ends a stream on its headers: it sends
 * HEADERS, then an empty DATA frame with END_STREAM, which a gRPC client reads as response
 * headers followed by a call that "ended without gRPC status" (grpc-js: INTERNAL). So the
 * proxy's own gRPC answers go out as real trailers-only responses on the HTTP/2 stream, and an
 * upstream's trailers-only answer is passed on with its status repeated as trailers, which
 * clients read whichever frame carries it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';

/** What a trailers-only upstream answer needs repeated at its end. */
export interface GrpcHeadStatus {
  'grpc-status': string;
  'grpc-message'?: string;
}

/** The gRPC status a response head carries (a trailers-only answer), or undefined. */
export function grpcHeadStatus(headers: IncomingHttpHeaders): GrpcHeadStatus | undefined {
  const status = headers['grpc-status'];
  if (status === undefined) return undefined;
  const message = headers['grpc-message'];
  return { 'grpc-status': String(status), ...(message !== undefined ? { 'grpc-message': String(message) } : {}) };
}

/**
 * The trailers to end an HTTP/2 gRPC response with: the upstream's own, or — when it sent none
 * and its head carried the status — that status again.
 */
export function grpcEndTrailers(head: GrpcHeadStatus | undefined, trailers: IncomingHttpHeaders): IncomingHttpHeaders {
  if (trailers && Object.keys(trailers).length > 0) return trailers;
  return head ? { ...head } : trailers;
}

/**
 * Sends `headers` (status 200) as one HEADERS frame that ends the stream, when `res` is an
 * HTTP/2 response that has sent nothing yet. Returns false when it cannot (HTTP/1.1).
 */
export function sendTrailersOnly(res: unknown, headers: Record<string, string | string[] | number>): boolean {
  const stream = (res as { stream?: ServerHttp2Stream }).stream;
  if (stream === undefined || typeof stream.respond !== 'function' || stream.headersSent || stream.destroyed) return false;
  stream.respond({ ...headers, ':status': 200 }, { endStream: true });
  return true;
}
