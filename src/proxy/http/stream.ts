/**
 * The HTTP connection manager, one `HttpStream` per request (Envoy's ActiveStream): it
 * normalises the request (authority, path, x-request-id, x-forwarded-*, hop-by-hop and
 * internal headers), selects the route table, virtual host and route, runs the route's filters
 * (CORS, fault injection) and hands the request to the router. Every reply it makes itself
 * goes through `localReply` (local-reply.ts); every finished request is published once.
 */
import type { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, Http2Session } from 'node:http2';
import { RESPONSE_DETAILS_HEADER, ResponseFlag } from '../../api/response-flags.js';
import type { TimerHandle } from '../../core/clock.js';
import { RandomHex } from '../../core/random-hex.js';
import type { RedirectAction } from '../../api/proxy-config.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, type PeerMetadata } from '../../telemetry/peer-metadata.js';
import { hasTraceHeaders } from '../../telemetry/propagation.js';
import { withoutTraceHeaders, type ProxyTelemetry } from '../../telemetry/proxy-telemetry.js';
import { withoutFields } from '../../core/header-lines.js';
import { PEER_EXCHANGE_HEADERS, PEER_SIGNATURE_HEADER } from '../peer-identity.js';
import type { ProxySpan, SpanRequest } from '../../telemetry/tracing.js';
import { channels, isPeerHealthCheck, type RequestEvent } from '../events.js';
import type { ListenerContext, ProxyRuntime, Snapshot } from '../runtime.js';
import { runFilters } from './filters.js';
import { PREMATURE_RESET_MIN_STREAM_LIFETIME_MS, streamEnded } from './h2-sessions.js';
import { H1Request, H1Response } from './h1-server.js';
import { joinValue, upstreamRequestHeaders, type HeaderBag } from './headers.js';
import { Replies, writeLocalReply, type DownstreamResponse, type LocalReply } from './local-reply.js';
import { normalizeRequestPath } from './path.js';
import { Router } from './router.js';
import type { RequestView } from '../../semantics/route-match.js';
import { selectRoute, selectVirtualHost, type CompiledRoute, type CompiledRouteTable } from './route-table.js';

/** node's HTTP/1.1 and HTTP/2 requests, or sinew's own HTTP/1.1 codec's (h1-server.ts: never with a body). */
export type DownstreamRequest = IncomingMessage | Http2ServerRequest | H1Request;
export type DownstreamResponseObject = ServerResponse | Http2ServerResponse | H1Response;

/** x-request-id values for requests that come without one (core/random-hex.ts says why not randomUUID). */
const requestIds = new RandomHex();

/** RFC 9113 §7 error codes (node's http2.constants, without loading node:http2 for them). */
const NGHTTP2_NO_ERROR = 0x0;
const NGHTTP2_INTERNAL_ERROR = 0x2;

const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)/i;
/** What a server span reads when the request carries no trace context. */
const NO_HEADERS: Readonly<Record<string, undefined>> = Object.freeze({});

export class HttpStream implements RequestView {
  readonly startTime: number;
  readonly startMono: number;
  readonly h2: boolean;
  method: string;
  scheme: string;
  authority = '';
  path = '/';
  query = '';
  port: number;
  /**
   * Headers to send upstream (sanitised; route operations apply to them). Replaced, not
   * deleted from, when fields come out (withoutFields says why).
   */
  headers: HeaderBag;
  readonly requestId: string;
  readonly peer: string;
  readonly grpc: boolean;
  readonly snapshot: Snapshot;

  route?: CompiledRoute;
  matchedLength = 0;
  cluster?: string;
  upstreamHost?: string;
  flags: string[] = [];
  details?: string;
  status = 0;
  attempts = 0;
  requestBytes = 0;
  responseBytes = 0;
  upstreamMs?: number;
  /** A fault filter delayed or aborted this request: retries and timeouts are off (Istio). */
  faultInjected = false;
  /** Response headers the filters add to whatever answer goes back (CORS). */
  extraResponseHeaders?: Record<string, string>;
  finished = false;
  router?: Router;
  /** The protocol an HTTP/1.1 upgrade request asks for (`websocket`): the router asks the upstream for it. */
  readonly upgrade: string | undefined;

  // --- telemetry (left unset when telemetry is off) ---
  /** Inbound or gateway: the span of this proxy receiving the request. */
  serverSpan?: ProxySpan;
  /** Outbound or gateway: the span of the upstream call, started once the cluster is picked. */
  clientSpan?: ProxySpan;
  /**
   * The fields this proxy adds to the upstream request itself (trace context, peer metadata),
   * as ready-to-send lines; `headers` never carries them (UpstreamDispatchOptions).
   */
  proxyHeaderLines = '';
  /** The other sidecar's metadata: from the request (inbound) or the response (outbound, gateway). */
  peerMetadata?: PeerMetadata;
  /** Inbound: the caller proved its metadata-exchange headers (peer-identity.ts): the reply carries this proxy's. */
  peerProven = false;
  /** The chosen cluster's `service.host`, Istio's `destination_service`. */
  destinationService?: string;
  grpcStatus?: string;
  /** Envoy's request_timeout, while the request is still arriving. */
  private requestTimer?: TimerHandle;
  /** The HTTP/2 session the request came on (its stream forgets it once destroyed): told how the stream ended. */
  h2Session?: Http2Session = undefined;

  constructor(
    readonly runtime: ProxyRuntime,
    readonly lctx: ListenerContext,
    readonly req: DownstreamRequest,
    readonly res: DownstreamResponseObject,
    snapshot: Snapshot,
  ) {
    this.snapshot = snapshot;
    this.startTime = runtime.clock.now();
    this.startMono = runtime.clock.monotonic();
    this.h2 = req.httpVersionMajor === 2;
    this.upgrade = req instanceof H1Request ? req.upgrade : undefined;
    this.method = req.method ?? 'GET';
    this.scheme = lctx.listener.tls ? 'https' : 'http';
    this.port = lctx.port;
    const raw = distinctHeaders(req);
    // Envoy trusts internal headers only from inside the mesh; a gateway faces the outside.
    const stripInternal = lctx.listener.direction === 'gateway';
    this.headers = upstreamRequestHeaders(raw, stripInternal);
    const rid = this.headers['x-request-id'];
    this.requestId = typeof rid === 'string' && rid.length > 0 && rid.length <= 128 ? rid : requestIds.uuid();
    this.headers['x-request-id'] = this.requestId;
    this.peer = req.socket?.remoteAddress ?? '';
    const ct = raw['content-type'];
    this.grpc = typeof ct === 'string' && ct.startsWith('application/grpc');
    if (lctx.listener.direction === 'inbound') {
      // Istio's metadata exchange: the calling sidecar says who it is, and proves it
      // (peer-identity.ts); what a caller cannot prove is ignored, and the request served as
      // from an unknown peer. The app never sees any of it.
      if (runtime.telemetry !== undefined) {
        const peer = runtime.peers.verify(this.headers);
        if (peer !== undefined) {
          this.peerMetadata = peer;
          this.peerProven = true;
        }
      }
      this.headers = withoutFields(this.headers, PEER_EXCHANGE_HEADERS);
    }
  }

  /**
   * The whole request has arrived (Envoy's remote decode complete): it has no body, or its
   * last byte came. Node's requests say so only once their body was read to the end.
   */
  requestComplete(): boolean {
    const req = this.req;
    if (req instanceof H1Request) return req.complete;
    if (req.complete) return true;
    if (this.h2) return (req as Http2ServerRequest).stream.endAfterHeaders;
    const h = req.headers;
    const cl = h['content-length'];
    return (cl === undefined || cl === '0') && h['transfer-encoding'] === undefined;
  }

  private onRequestIn(): void {
    if (this.requestTimer !== undefined) this.runtime.clock.clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
  }

  /**
   * Envoy's request_timeout: the request did not arrive whole in time (a body trickled in).
   * Once the response has begun it no longer applies, as in Envoy.
   */
  private onRequestTimeout(): void {
    this.requestTimer = undefined;
    if (this.finished || this.res.headersSent) return;
    this.runtime.stats.inc('downstream_rq_timeout');
    this.router?.onDownstreamGone();
    this.answerEarly(Replies.requestTimeout);
  }

  /**
   * Envoy's stream idle timeout: no bytes either way for streamIdleTimeoutMs. A 408 while the
   * request is arriving, a 504 while the upstream is silent, a reset once the response began.
   * (Called by the HTTP/1.1 codec through H1Response.idleTimeoutOwner.)
   */
  onStreamIdleTimeout(): void {
    if (this.finished) return;
    this.runtime.stats.inc('downstream_rq_idle_timeout');
    this.addFlag(ResponseFlag.StreamIdleTimeout);
    const complete = this.requestComplete();
    this.router?.onDownstreamGone();
    if (this.res.headersSent) this.abortDownstream(ResponseFlag.StreamIdleTimeout);
    else this.answerEarly(complete ? Replies.streamIdleTimeoutRequestIn : Replies.streamIdleTimeout);
  }

  /**
   * A local reply that may come before the request is in. Then an HTTP/1.1 connection cannot
   * carry another request (Envoy closes it too: `connection: close`), and an HTTP/2 stream is
   * closed with RST_STREAM(NO_ERROR) once the reply is out (RFC 9113 §8.1), so that a client
   * still sending does not keep it open.
   */
  private answerEarly(reply: LocalReply): void {
    const complete = this.requestComplete();
    this.localReply(reply, complete || this.h2 ? undefined : { connection: 'close' });
    if (!complete && this.h2) (this.res as Http2ServerResponse).stream.close(NGHTTP2_NO_ERROR);
  }

  /** The request body (the router reads it when the request has one: `hasBody`). */
  bodyStream(): Readable {
    if (!(this.req instanceof H1Request)) return this.req;
    if (this.req.body === undefined) throw new Error('the request has no body');
    return this.req.body;
  }

  /** RequestView: header lookup for matching, pseudo-headers included. */
  header = (name: string): string | undefined => {
    if (name.charCodeAt(0) === 58) {
      switch (name) {
        case ':method': return this.method;
        case ':authority': return this.authority;
        case ':path': return this.query ? `${this.path}?${this.query}` : this.path;
        case ':scheme': return this.scheme;
        default: return undefined;
      }
    }
    if (name === 'host') return this.authority;
    return joinValue(this.headers[name]);
  };

  run(): void {
    const res = this.res;
    res.on('close', this.onDownstreamClose);
    const http = this.lctx.http;
    const idleMs = http.streamIdleTimeoutMs;
    if (idleMs !== undefined && idleMs > 0) {
      // HTTP/1.1 carries one stream at a time, so its codecs time the connection's inactivity
      // (the socket timeout) and tell the response; an HTTP/2 stream is timed on its own.
      if (res instanceof H1Response) res.idleTimeoutOwner = this;
      else {
        (res as Http2ServerResponse).on('timeout', () => this.onStreamIdleTimeout());
        if (this.h2) (res as Http2ServerResponse).setTimeout(idleMs);
      }
    }
    const requestMs = http.requestTimeoutMs;
    if (requestMs !== undefined && requestMs > 0 && !this.requestComplete()) {
      this.requestTimer = this.runtime.clock.setTimeout(() => this.onRequestTimeout(), requestMs);
      this.bodyStream().once('end', () => this.onRequestIn());
    }
    const target = this.h2 ? ((this.req.headers as Record<string, string>)[':path'] ?? this.req.url) : this.req.url;
    let authority = (this.h2 ? (this.req.headers as Record<string, string>)[':authority'] : undefined) ?? (this.req.headers.host as string | undefined) ?? '';
    let rawPath = target ?? '/';
    const abs = ABSOLUTE.exec(rawPath);
    if (abs) {
      // RFC 9112 3.2.2: an absolute-form target overrides Host. HTTP_PROXY clients send these.
      if (!this.lctx.http.acceptAbsoluteUri) return this.localReply(Replies.absoluteUriRejected);
      this.scheme = abs[1].toLowerCase();
      authority = abs[2];
      rawPath = abs[3] || '/';
    }
    const hash = rawPath.indexOf('#');
    if (hash >= 0) rawPath = rawPath.slice(0, hash); // Envoy strips the fragment from :path.
    const q = rawPath.indexOf('?');
    const path = normalizeRequestPath(q >= 0 ? rawPath.slice(0, q) : rawPath); // Istio's default BASE normalisation (path.ts)
    if (path === undefined) return this.localReply(Replies.pathNormalizationFailed);
    this.path = path;
    this.query = q >= 0 ? rawPath.slice(q + 1) : '';
    if (this.path.length === 0 || (this.path.charCodeAt(0) !== 47 && this.method !== 'OPTIONS')) {
      return this.localReply(Replies.badRequest);
    }
    this.authority = authority.toLowerCase();

    const tel = this.runtime.telemetry;
    // Envoy does not trace health checks (its health_check filter marks them); neither do we.
    const direction = this.lctx.listener.direction;
    if (tel !== undefined && direction !== 'outbound' && !isPeerHealthCheck(direction, this.method, joinValue(this.headers['user-agent']), this.peerMetadata)) this.startServerSpan(tel);

    this.setForwardedHeaders();

    const table = this.selectTable();
    const vh = table ? selectVirtualHost(table, this.authority) : undefined;
    if (!vh) return this.localReply(Replies.noRoute);
    if (vh.requireTls && this.scheme !== 'https') {
      // Gateway tls.httpsRedirect: Envoy's require_tls ALL answers 301 to the https URL.
      return this.redirect({ kind: 'redirect', scheme: 'https', responseCode: 301 });
    }
    const selected = selectRoute(vh, this);
    if (!selected) return this.localReply(Replies.noRoute);
    this.route = selected.route;
    this.matchedLength = selected.matchedLength;
    runFilters(this, () => this.dispatchAction());
  }

  /**
   * The SERVER span of an inbound sidecar or a gateway (Envoy's HCM starts it on the request
   * headers). Inbound, the app gets headers naming this span as its parent; a gateway's client
   * span (router.ts) becomes this span's child and sets the upstream's headers itself.
   */
  private startServerSpan(tel: ProxyTelemetry): void {
    const tracer = tel.tracer;
    if (tracer === undefined) return;
    const incoming = hasTraceHeaders(this.headers);
    const span = tracer.startServerSpan(incoming ? this.headers : NO_HEADERS, this);
    this.serverSpan = span;
    if (incoming) this.headers = withoutTraceHeaders(this.headers);
    if (this.lctx.listener.direction === 'inbound') this.proxyHeaderLines = span.headerLines();
  }

  /** SpanRequestSource: what the server span records, asked only when it is sampled. */
  spanRequest(): SpanRequest {
    return {
      method: this.method,
      url: `${this.scheme}://${this.authority}${this.path}${this.query ? '?' + this.query : ''}`,
      requestId: this.requestId,
      peerAddress: this.peer,
      protocol: this.h2 ? 'HTTP/2' : 'HTTP/1.1',
      userAgent: joinValue(this.headers['user-agent']),
    };
  }

  private selectTable(): CompiledRouteTable | undefined {
    const http = this.lctx.http;
    const tables = this.snapshot.routeTables;
    if (http.routeConfigByPort) {
      // Outbound capture: the destination port names the route table, as Envoy's outbound
      // listeners choose `9080` for http://reviews:9080.
      const port = authorityPort(this.authority) ?? (this.scheme === 'https' ? 443 : 80);
      this.port = port;
      const t = tables.get(String(port));
      if (t) return t;
      return http.fallbackRouteConfigName !== undefined ? tables.get(http.fallbackRouteConfigName) : undefined;
    }
    return http.routeConfigName !== undefined ? tables.get(http.routeConfigName) : undefined;
  }

  private setForwardedHeaders(): void {
    const gateway = this.lctx.listener.direction === 'gateway';
    const trusted = (this.lctx.http.xffNumTrustedHops ?? 0) > 0;
    const xff = joinValue(this.headers['x-forwarded-for']);
    // Envoy appends the peer to XFF; at the edge a client's own XFF is only kept when hops are trusted.
    this.headers['x-forwarded-for'] = xff && (!gateway || trusted) ? `${xff}, ${this.peer}` : this.peer;
    if (gateway || this.headers['x-forwarded-proto'] === undefined) this.headers['x-forwarded-proto'] = this.scheme;
  }

  private dispatchAction(): void {
    if (this.finished) return;
    const route = this.route!;
    const action = route.action;
    switch (action.kind) {
      case 'redirect':
        return this.redirect(action);
      case 'direct':
        return this.localReply({ status: action.status, details: 'direct_response', body: action.body ?? '' }, undefined, true);
      case 'route':
        this.router = new Router(this, route, action);
        this.router.start();
        return;
    }
  }

  /** Envoy's redirect (RouteEntryImplBase::newUri): scheme, host, port and path pieces replaced. */
  private redirect(a: RedirectAction): void {
    const scheme = a.scheme ?? this.scheme;
    const { host: reqHost, port: reqPort } = splitAuthority(this.authority);
    let host = a.host ?? reqHost;
    let port: string | undefined;
    if (a.port !== undefined) port = String(a.port);
    else if (a.derivePort === 'FROM_REQUEST_PORT') port = String(reqPort ?? this.port);
    else if (a.derivePort === 'FROM_PROTOCOL_DEFAULT') port = undefined;
    else if (a.host === undefined && reqPort !== undefined) {
      // Envoy strips the original scheme's default port when the scheme changes.
      const dropped = scheme !== this.scheme && ((this.scheme === 'http' && reqPort === 80) || (this.scheme === 'https' && reqPort === 443));
      port = dropped ? undefined : String(reqPort);
    }
    if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
    let path = this.path;
    if (a.path !== undefined) path = a.path;
    else if (a.prefixRewrite !== undefined) path = a.prefixRewrite + this.path.slice(this.matchedLength);
    const query = this.query && !path.includes('?') ? `?${this.query}` : '';
    const location = `${scheme}://${host}${port ? `:${port}` : ''}${path}${query}`;
    this.localReply({ status: a.responseCode || 301, details: 'redirect', body: '' }, { location }, true);
  }

  /** The one way the connection manager answers by itself. */
  localReply(reply: LocalReply, headers?: Record<string, string>, configured = false): void {
    if (this.finished) return;
    if (this.res.headersSent) {
      this.abortDownstream(reply.flag);
      return;
    }
    if (reply.flag) this.addFlag(reply.flag);
    this.details = reply.details;
    const extra: Record<string, string> = { ...this.extraResponseHeaders, ...headers };
    // An inbound sidecar tells the caller who answered, on its own replies too (metadata exchange).
    this.answerPeerExchange(extra);
    // A draining listener tells HTTP/1.1 clients to go elsewhere (Envoy's drain sets Connection: close).
    if (this.lctx.draining && !this.h2) extra['connection'] = 'close';
    const flags = configured ? undefined : this.flags.join(',') || undefined;
    this.status = writeLocalReply(this.res as unknown as DownstreamResponse, reply, this.grpc, extra, flags);
    if (!configured && reply.flag) this.runtime.stats.inc(`downstream_rq_local_reply_${reply.flag}`);
    this.finish();
  }

  /**
   * Inbound: tells the caller who answered, with the proof, on proxied and local replies
   * alike. As Istio's peer_metadata filter answers only callers that took part in the
   * exchange, this answers only callers that proved theirs: one outside the mesh learns nothing.
   */
  answerPeerExchange(headers: Record<string, string | string[] | number | undefined>): void {
    if (!this.peerProven) return;
    const tel = this.runtime.telemetry;
    if (tel === undefined) return;
    // Sinew's HTTP/1.1 codec takes them as the ready lines they already are (no checks per field).
    if (this.res instanceof H1Response) {
      this.res.proxyLines = this.runtime.peerHeaderLines;
      return;
    }
    headers[PEER_METADATA_ID_HEADER] = tel.localPeerHeaders[PEER_METADATA_ID_HEADER];
    headers[PEER_METADATA_HEADER] = tel.localPeerHeaders[PEER_METADATA_HEADER];
    const proof = this.runtime.peers.proofHeaders[PEER_SIGNATURE_HEADER];
    if (proof !== undefined) headers[PEER_SIGNATURE_HEADER] = proof;
  }

  addFlag(flag: string): void {
    if (!this.flags.includes(flag)) this.flags.push(flag);
  }

  /** Upstream failed after the response started: the client must see an aborted response. */
  abortDownstream(flag?: string): void {
    if (flag) this.addFlag(flag);
    if (this.h2) {
      // RST_STREAM with an error code: a clean close would read as a complete (short) response.
      (this.res as Http2ServerResponse).stream.close(NGHTTP2_INTERNAL_ERROR);
    } else {
      this.res.destroy();
    }
    this.finish();
  }

  private onDownstreamClose = (): void => {
    if (this.finished) return;
    if (this.status === 101) return this.finish(); // a spliced upgrade ends when either side closes
    // The client went away first (Envoy's DC): stop the upstream work it asked for.
    this.addFlag('DC');
    this.router?.onDownstreamGone();
    this.finish();
  };

  /** Publishes the request once (STYLE.md 12) and counts it. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.requestTimer !== undefined) this.runtime.clock.clearTimeout(this.requestTimer);
    if (this.h2Session !== undefined) {
      // Envoy's premature reset: the client reset the stream early, before its response ended.
      const premature = this.flags.includes('DC') && this.runtime.clock.monotonic() - this.startMono < PREMATURE_RESET_MIN_STREAM_LIFETIME_MS;
      streamEnded(this.h2Session, premature);
    }
    const stats = this.runtime.stats;
    stats.inc('downstream_rq_total');
    const flags = this.flags.length ? this.flags.join(',') : '-';
    if (this.status) stats.inc(STATUS_CLASS_STATS[Math.floor(this.status / 100)] ?? `downstream_rq_${Math.floor(this.status / 100)}xx`);
    if (this.flags.length) for (const f of this.flags) stats.inc(`downstream_rq_flag_${f}`);
    const client = this.clientSpan;
    const server = this.serverSpan;
    if (client?.sampled || server?.sampled) {
      const result = { status: this.status, flags, upstreamCluster: this.cluster, requestBytes: this.requestBytes, responseBytes: this.responseBytes };
      client?.finish(result);
      server?.finish(result);
    } else {
      client?.end();
      server?.end();
    }
    if (channels.request.hasSubscribers) {
      const event: RequestEvent = {
        listener: this.lctx.listener.name,
        direction: this.lctx.listener.direction,
        requestId: this.requestId,
        method: this.method,
        authority: this.authority,
        path: this.path,
        protocol: this.h2 ? 'HTTP/2' : 'HTTP/1.1',
        route: this.route?.name,
        cluster: this.cluster,
        upstreamHost: this.upstreamHost,
        status: this.status,
        flags,
        details: this.details,
        downstreamPeer: this.peer,
        attempts: this.attempts,
        requestBytes: this.requestBytes,
        responseBytes: this.responseBytes,
        startTime: this.startTime,
        upstreamMs: this.upstreamMs,
        durationMs: this.runtime.clock.monotonic() - this.startMono,
        node: this.runtime.nodeId,
        peer: this.peerMetadata,
        // No mTLS between sidecars yet: Istio reports such traffic as connection_security_policy "none".
        mtls: false,
        destinationService: this.destinationService,
        grpcStatus: this.grpcStatus,
        userAgent: joinValue(this.headers['user-agent']),
        xForwardedFor: joinValue(this.headers['x-forwarded-for']),
        requestHeaders: this.headers,
        query: this.query || undefined,
        downstreamLocal: localAddress(this.req),
      };
      channels.request.publish(event);
    }
  }
}

const STATUS_CLASS_STATS = ['downstream_rq_0xx', 'downstream_rq_1xx', 'downstream_rq_2xx', 'downstream_rq_3xx', 'downstream_rq_4xx', 'downstream_rq_5xx'];

/**
 * Each connection's local `ip:port`, asked of the kernel once per connection (every read of
 * `socket.localAddress` is a getsockname call). A WeakMap rather than a property on the
 * socket: a property added to node's sockets would give them a second shape in node's own code.
 */
const localAddresses = new WeakMap<object, string>();

function localAddress(req: DownstreamRequest): string | undefined {
  const socket = req.socket;
  if (!socket) return undefined;
  let cached = localAddresses.get(socket);
  if (cached === undefined && socket.localAddress) {
    // Not yet connected (no address) is not remembered.
    cached = `${socket.localAddress}:${socket.localPort}`;
    localAddresses.set(socket, cached);
  }
  return cached;
}

/** The port of an authority (`host:port`, `[v6]:port`), or undefined. */
export function authorityPort(authority: string): number | undefined {
  const { port } = splitAuthority(authority);
  return port;
}

export function splitAuthority(authority: string): { host: string; port?: number } {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    const host = authority.slice(1, end);
    const rest = authority.slice(end + 1);
    return rest.startsWith(':') ? { host, port: Number(rest.slice(1)) || undefined } : { host };
  }
  const colon = authority.lastIndexOf(':');
  if (colon < 0) return { host: authority };
  const port = Number(authority.slice(colon + 1));
  return Number.isInteger(port) && port > 0 && port < 65536 ? { host: authority.slice(0, colon), port } : { host: authority };
}

/** Answers a request that arrived before any config was applied (Envoy would not listen yet). */
export function replyNotReady(res: DownstreamResponseObject): void {
  (res as DownstreamResponse).writeHead(503, { 'content-type': 'text/plain; charset=utf-8', [RESPONSE_DETAILS_HEADER]: 'no_config' });
  (res as DownstreamResponse).end('no configuration applied yet\n');
}

/**
 * A request's headers with a repeated header kept as its separate values, as Envoy forwards
 * them: Node's `req.headers` joins repeats with ", ", which would reach the app as one value
 * (the Gateway API conformance suite checks `X-Header-Add-Append: a` plus an added `b` arrives
 * as two values, read back as "a,b"). Repeats are rare: `headersDistinct` only when there are any.
 */
function distinctHeaders(req: DownstreamRequest): Record<string, string | string[] | undefined> {
  const joined = req.headers as Record<string, string | string[] | undefined>;
  // Sinew's own HTTP/1 codec (H1Request) hands a request with a repeated field to node's parser.
  if (req.httpVersionMajor === 2 || !('rawHeaders' in req) || req.rawHeaders.length / 2 === Object.keys(joined).length) return joined;
  const out: Record<string, string | string[] | undefined> = {};
  for (const [name, values] of Object.entries((req as IncomingMessage).headersDistinct)) if (values) out[name] = values.length === 1 ? values[0] : values;
  return out;
}
