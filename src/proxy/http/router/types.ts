/**
 * What the router, the terminal filter, sees of a request: the filters' view plus what it
 * needs to talk upstream and to write the response (HttpStream implements it). The router's
 * parts import this, never stream.ts, so the connection manager and the router do not import
 * each other.
 */
import type { Readable } from 'node:stream';
import type { ProxySpan } from '../../../telemetry/tracing.js';
import type { ListenerContext, ProxyRuntime } from '../../runtime.js';
import type { DownstreamRequest, DownstreamResponseObject } from '../downstream.js';
import type { FilterStream } from '../filter-api.js';
import type { HeaderBag } from '../headers.js';
import type { LocalReply } from '../local-reply.js';
import type { CompiledRoute, CompiledVirtualHost } from '../route-table.js';

export interface RouterStream extends FilterStream {
  readonly runtime: ProxyRuntime;
  readonly lctx: ListenerContext;
  readonly req: DownstreamRequest;
  readonly res: DownstreamResponseObject;
  /** The virtual host and route the connection manager selected (absent: none matched). */
  readonly virtualHost: CompiledVirtualHost | undefined;
  readonly routeEntry: CompiledRoute | undefined;
  /** The length of the path prefix the route's match consumed (prefix rewrites). */
  readonly matchedLength: number;
  /** The port the request arrived on (or its destination port, outbound). */
  readonly port: number;
  readonly startTime: number;
  readonly startMono: number;
  /** The protocol an HTTP/1.1 upgrade request asks for (`websocket`). */
  readonly upgrade: string | undefined;

  // --- what the router records for telemetry ---
  cluster: string | undefined;
  destinationService: string | undefined;
  upstreamHost: string | undefined;
  attempts: number;
  requestBytes: number;
  responseBytes: number;
  upstreamMs: number | undefined;
  status: number;
  grpcStatus: string | undefined;
  clientSpan: ProxySpan | undefined;
  /** Why the connection to the upstream failed (Envoy's %UPSTREAM_TRANSPORT_FAILURE_REASON%). */
  upstreamTransportFailureReason: string | undefined;
  /** The peer and local URI SANs of the upstream connection the response came on (mutual TLS only). */
  upstreamPeerUriSan: string | undefined;
  upstreamLocalUriSan: string | undefined;

  /** The request body (only when it has one). */
  bodyStream(): Readable;
  /**
   * Runs the response head through the encode filters (reverse order). False when a filter
   * answered instead: the upstream response must be dropped.
   */
  encodeHeaders(status: number, headers: HeaderBag, upstream: Readonly<HeaderBag>): boolean;
  /** The response began and cannot be completed: reset the client's stream. */
  abortDownstream(flag?: string): void;
  /** The request is over (published once). */
  finish(): void;
  localReply(reply: LocalReply, headers?: Record<string, string>, configured?: boolean): void;
}
