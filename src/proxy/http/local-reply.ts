/**
 * Every reply the proxy makes itself, mapped from its cause in one place (STYLE.md 7 and 8,
 * linkerd2-proxy's "rescue" layer, Envoy's local replies). Each carries the response flag in
 * `x-sinew-response-flags`, the reason in `x-sinew-response-details`, and a short text body.
 * gRPC callers get the same reason as a gRPC status with HTTP 200, as Envoy's local replies do.
 */
import { RESPONSE_DETAILS_HEADER, RESPONSE_FLAGS_HEADER, ResponseFlag, type ResponseFlagCode } from '../../api/response-flags.js';
import { sendTrailersOnly } from './grpc-trailers.js';

export interface LocalReply {
  status: number;
  /** Absent for configured replies (redirects, direct responses): they are not failures. */
  flag?: ResponseFlagCode;
  details: string;
  body: string;
  /** Overrides the gRPC status derived from `status`. */
  grpcStatus?: number;
}

/** The causes the proxy answers for itself, and what each becomes. */
export const Replies = {
  noRoute: { status: 404, flag: ResponseFlag.NoRouteFound, details: 'route_not_found', body: 'no route matched this request' },
  noCluster: { status: 503, flag: ResponseFlag.NoClusterFound, details: 'cluster_not_found', body: 'the route names a cluster this proxy does not have' },
  noHealthyUpstream: { status: 503, flag: ResponseFlag.NoHealthyUpstream, details: 'no_healthy_upstream', body: 'no healthy upstream' },
  /** The cluster waits for TLS secrets that were not pushed (endpoint-pool.ts `unavailable`), as an Envoy cluster warming on SDS. */
  clusterWarming: { status: 503, flag: ResponseFlag.NoHealthyUpstream, details: 'cluster_warming', body: 'no healthy upstream: the cluster is waiting for TLS credentials' },
  /**
   * DESIGN.md behaviour 10: under REGISTRY_ONLY a host outside the registry gets 502 (Istio's
   * block_all route answers 502; its BlackHoleCluster names the traffic in metrics).
   */
  registryOnly: { status: 502, details: 'outbound_traffic_policy_registry_only', body: 'the destination is not in the service registry and outbound traffic is REGISTRY_ONLY' },
  /** A pass-through request whose authority names no destination (upstream/passthrough.ts). */
  noOriginalDestination: { status: 400, flag: ResponseFlag.DownstreamProtocolError, details: 'no_original_destination', body: 'the request names no host:port to pass through to' },
  /** A pass-through back to the listener it came in on would loop (upstream/passthrough.ts). */
  passthroughToSelf: { status: 508, flag: ResponseFlag.NoRouteFound, details: 'passthrough_to_self', body: 'the destination is this proxy\'s own listener: passing the request through would loop' },
  overflow: { status: 503, flag: ResponseFlag.UpstreamOverflow, details: 'upstream_overflow', body: 'upstream connection pool overflow (circuit breaker)' },
  connectFailure: { status: 503, flag: ResponseFlag.UpstreamConnectionFailure, details: 'upstream_connect_failure', body: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure' },
  upstreamReset: { status: 503, flag: ResponseFlag.UpstreamConnectionTermination, details: 'upstream_reset_before_response_started', body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination' },
  /** The upstream's response head cannot be written to the client (Envoy's UPE). */
  upstreamInvalidResponse: { status: 502, flag: ResponseFlag.UpstreamProtocolError, details: 'upstream_response_invalid', body: 'upstream sent an invalid response' },
  /** An encode filter returned Stop without answering (a filter's bug): the response cannot be completed. */
  filterStoppedResponse: { status: 500, details: 'filter_stopped_response', body: 'a filter stopped the response without answering' },
  upstreamTimeout: { status: 504, flag: ResponseFlag.UpstreamRequestTimeout, details: 'upstream_response_timeout', body: 'upstream request timeout' },
  perTryTimeout: { status: 504, flag: ResponseFlag.UpstreamRequestTimeout, details: 'upstream_per_try_timeout', body: 'upstream request timeout' },
  badRequest: { status: 400, flag: ResponseFlag.DownstreamProtocolError, details: 'downstream_protocol_error', body: 'bad request' },
  absoluteUriRejected: { status: 400, flag: ResponseFlag.DownstreamProtocolError, details: 'absolute_path_rejected', body: 'absolute-form request targets are not accepted on this listener' },
  /** A method that is not an upper-case token where authorization applies (security/path-normalization.ts isAcceptedMethod). */
  methodNotAccepted: { status: 400, flag: ResponseFlag.DownstreamProtocolError, details: 'invalid_method', body: 'the request method must be an upper-case token' },
  /** The path cannot be normalised (path.ts): Envoy's `path_normalization_failed`. */
  pathNormalizationFailed: { status: 400, flag: ResponseFlag.DownstreamProtocolError, details: 'path_normalization_failed', body: 'the request path could not be normalized' },
  /** HTTP/2 request headers past the listener's limit (listener.ts explains the two bounds). */
  h2HeadersTooLarge: { status: 431, flag: ResponseFlag.DownstreamProtocolError, details: 'http2.headers_too_large', body: 'request header fields too large' },
  /** More request header fields than maxRequestHeadersCount (Envoy's max_headers_count). */
  tooManyHeaders: { status: 431, flag: ResponseFlag.DownstreamProtocolError, details: 'http1.too_many_headers', body: 'too many request header fields' },
  h2TooManyHeaders: { status: 431, flag: ResponseFlag.DownstreamProtocolError, details: 'http2.too_many_headers', body: 'too many request header fields' },
  /**
   * Envoy's stream idle timeout: no bytes either way for streamIdleTimeoutMs. 408 while the
   * request is still arriving, 504 once it is in (Envoy's maybeRequestTimeoutCode).
   */
  streamIdleTimeout: { status: 408, flag: ResponseFlag.StreamIdleTimeout, details: 'stream_idle_timeout', body: 'stream timeout' },
  streamIdleTimeoutRequestIn: { status: 504, flag: ResponseFlag.StreamIdleTimeout, details: 'stream_idle_timeout', body: 'stream timeout' },
  /** Envoy's request_timeout: the whole request did not arrive within requestTimeoutMs (Envoy sets no flag). */
  requestTimeout: { status: 408, details: 'request_overall_timeout', body: 'request timeout' },
  /** RFC 9112 §3.2: an HTTP/1.1 request with more than one Host field line, or none, gets 400. */
  duplicateHost: { status: 400, flag: ResponseFlag.DownstreamProtocolError, details: 'http1.duplicate_host', body: 'more than one Host header field' },
  missingHost: { status: 400, flag: ResponseFlag.DownstreamProtocolError, details: 'http1.missing_host', body: 'an HTTP/1.1 request needs a Host header field' },
} as const satisfies Record<string, LocalReply>;

/** Where the upstream path failed, as the router sees it. */
export type UpstreamFailure = 'connect-failure' | 'refused' | 'reset' | 'timeout';

export function replyForFailure(failure: UpstreamFailure): LocalReply {
  switch (failure) {
    case 'connect-failure':
    case 'refused':
      return Replies.connectFailure;
    case 'reset':
      return Replies.upstreamReset;
    case 'timeout':
      return Replies.perTryTimeout;
  }
}

/**
 * HTTP status -> gRPC status, the table of the gRPC spec ("HTTP to gRPC Status Code Mapping")
 * that Envoy's `Grpc::Utility::httpToGrpcStatus` uses for local replies.
 */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400: return 13; // INTERNAL
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504: return 14; // UNAVAILABLE
    default: return 2; // UNKNOWN
  }
}

/** Minimal response surface shared by node's http1 ServerResponse and http2 compat response. */
export interface DownstreamResponse {
  readonly headersSent: boolean;
  writeHead(status: number, headers?: Record<string, string | string[] | number>): unknown;
  end(body?: string | Buffer): unknown;
}

/** Writes a local reply; `grpc` = the request was gRPC (content-type application/grpc*). */
export function writeLocalReply(
  res: DownstreamResponse,
  reply: LocalReply,
  grpc: boolean,
  extraHeaders?: Record<string, string | string[]>,
  flagsValue?: string,
): number {
  const headers: Record<string, string | string[] | number> = { ...extraHeaders, [RESPONSE_DETAILS_HEADER]: reply.details };
  const flags = flagsValue ?? reply.flag;
  if (flags) headers[RESPONSE_FLAGS_HEADER] = flags;
  if (grpc && reply.status >= 400) {
    // A trailers-only gRPC response: HTTP 200 with the status in the headers (gRPC over HTTP2).
    headers['content-type'] = 'application/grpc';
    headers['grpc-status'] = String(reply.grpcStatus ?? httpToGrpcStatus(reply.status));
    headers['grpc-message'] = encodeURIComponent(reply.body);
    return writeTrailersOnly(res, headers);
  }
  if (reply.grpcStatus !== undefined) {
    headers['content-type'] = 'application/grpc';
    headers['grpc-status'] = String(reply.grpcStatus);
    headers['grpc-message'] = encodeURIComponent(reply.body);
    return writeTrailersOnly(res, headers);
  }
  const body = reply.body ? reply.body + '\n' : '';
  headers['content-type'] = 'text/plain; charset=utf-8';
  headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(reply.status, headers);
  res.end(body);
  return reply.status;
}

/** A gRPC answer with no message: trailers-only on HTTP/2 (grpc-trailers.ts), a bare head on HTTP/1.1. */
function writeTrailersOnly(res: DownstreamResponse, headers: Record<string, string | string[] | number>): number {
  if (sendTrailersOnly(res, headers)) return 200;
  res.writeHead(200, headers);
  res.end();
  return 200;
}
