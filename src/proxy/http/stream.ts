/**
 * The HTTP connection manager, one `HttpStream` per request (Envoy's ActiveStream): it
 * normalises the request (authority, path, x-request-id, x-forwarded-*, hop-by-hop and
 * internal headers), selects the route table, virtual host and route, then runs the listener's
 * HTTP filter chain (filter-api.ts): decode filters in order, ending with the router, and the
 * response head back through the encode filters in reverse. It implements the filters' view
 * of a request (FilterStream) and the router's (RouterStream), and imports neither the router
 * nor any filter: the chain is compiled from the config with the proxy's registry. Every reply
 * it makes itself goes through `localReply` (local-reply.ts); every finished request is
 * published once.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Http2ServerRequest, Http2ServerResponse, Http2Session } from 'node:http2';
import { RESPONSE_DETAILS_HEADER, ResponseFlag } from '../../api/response-flags.js';
import type { TimerHandle } from '../../core/clock.js';
import { RandomHex } from '../../core/random-hex.js';
import type { PeerMetadata } from '../../telemetry/peer-metadata.js';
import { isAcceptedMethod, normalizePath } from '../../security/path-normalization.js';
import { claimValues } from '../../security/attributes.js';
import { withoutFields } from '../../core/header-lines.js';
import { PEER_EXCHANGE_HEADERS } from '../peer-identity.js';
import type { ProxySpan, SpanRequest } from '../../telemetry/tracing.js';
import { channels, type RequestEvent } from '../events.js';
import type { ListenerContext, ProxyRuntime, Snapshot } from '../runtime.js';
import { connectionInfoOf, forwardedClientCert, type ConnectionInfo } from '../transport/connection-info.js';
import type { DownstreamRequest, DownstreamResponseObject } from './downstream.js';
import { FilterStatus, type HttpFilter } from './filter-api.js';
import { PREMATURE_RESET_MIN_STREAM_LIFETIME_MS, streamEnded } from './h2-sessions.js';
import { H1Request, H1Response } from './h1-server.js';
import { joinValue, upstreamRequestHeaders, type HeaderBag } from './headers.js';
import { Replies, writeLocalReply, type DownstreamResponse, type LocalReply } from './local-reply.js';
import { splitAuthority } from './router/redirect.js';
import type { RouterStream } from './router/types.js';
import type { RequestView } from '../../semantics/route-match.js';
import { selectRoute, selectVirtualHost, type CompiledRoute, type CompiledRouteTable, type CompiledVirtualHost } from './route-table.js';

export type { DownstreamRequest, DownstreamResponseObject } from './downstream.js';
export { splitAuthority } from './router/redirect.js';

/** x-request-id values for requests that come without one (core/random-hex.ts says why not randomUUID). */
const requestIds = new RandomHex();

/** RFC 9113 §7 error codes (node's http2.constants, without loading node:http2 for them). */
const NGHTTP2_NO_ERROR = 0x0;
const NGHTTP2_INTERNAL_ERROR = 0x2;

const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)/i;

/** A local reply a filter made while encoding (it replaces the response once the filter returns Stop). */
interface PendingReply {
  reply: LocalReply;
  headers: Record<string, string> | undefined;
  configured: boolean;
}

export class HttpStream implements RequestView, RouterStream {
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

  virtualHost: CompiledVirtualHost | undefined = undefined;
  routeEntry: CompiledRoute | undefined = undefined;
  matchedLength = 0;
  cluster: string | undefined = undefined;
  upstreamHost: string | undefined = undefined;
  flags: string[] = [];
  details?: string;
  status = 0;
  attempts = 0;
  requestBytes = 0;
  responseBytes = 0;
  upstreamMs: number | undefined = undefined;
  /** A fault filter delayed or aborted this request: retries and timeouts are off (Istio). */
  faultInjected = false;
  finished = false;
  /** This request's filter instances, in decode order (the router last); set once routed. */
  private filters: HttpFilter[] | undefined = undefined;
  /** For each instance, the index of its filter in the listener's chain (clearRouteCache remakes those after). */
  private filterOrigins: number[] = [];
  /** The payload of the token jwt_authn verified, once it cleared the route cache (route claim conditions read it). */
  private verifiedClaims: Readonly<Record<string, unknown>> | undefined = undefined;
  /** The next filter to decode. */
  private decodeIndex = 0;
  /** The filter whose encodeHeaders runs now, or -1. */
  private encodingAt = -1;
  private pendingReply: PendingReply | undefined = undefined;
  private connectionInfo: ConnectionInfo | undefined = undefined;
  /** The protocol an HTTP/1.1 upgrade request asks for (`websocket`): the router asks the upstream for it. */
  readonly upgrade: string | undefined;

  // --- telemetry (left unset when telemetry is off) ---
  /** Inbound or gateway: the span of this proxy receiving the request (the server_span filter). */
  serverSpan: ProxySpan | undefined = undefined;
  /** Outbound or gateway: the span of the upstream call, started once the cluster is picked. */
  clientSpan: ProxySpan | undefined = undefined;
  /**
   * The fields this proxy adds to the upstream request itself (trace context, peer metadata),
   * as ready-to-send lines; `headers` never carries them (UpstreamDispatchOptions).
   */
  proxyHeaderLines = '';
  /** The other sidecar's metadata: from the request (inbound) or the response (outbound, gateway). */
  peerMetadata: PeerMetadata | undefined = undefined;
  /** Inbound: the caller proved its metadata-exchange headers (peer-identity.ts): the reply carries this proxy's. */
  peerProven = false;
  /** Outbound: the peer_metadata filter asks the router to send this proxy's exchange headers. */
  sendPeerMetadata = false;
  /** FilterStream: the security filters' shared state (filters/security-chain.ts). */
  securityRequest: object | undefined = undefined;
  /** FilterStream: what filters left for the access log. */
  dynamicMetadata: Record<string, string> | undefined = undefined;
  /** The chosen cluster's `service.host`, Istio's `destination_service`. */
  destinationService: string | undefined = undefined;
  grpcStatus: string | undefined = undefined;
  upstreamTransportFailureReason: string | undefined = undefined;
  upstreamPeerUriSan: string | undefined = undefined;
  upstreamLocalUriSan: string | undefined = undefined;
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
    // https when the connection's transport socket is TLS (a permissive or multi-chain
    // listener serves plaintext beside it).
    const l = lctx.listener;
    this.scheme = (l.tls !== undefined || l.filterChains !== undefined) && (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http';
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
      // Istio's metadata exchange fields never reach the app; the peer_metadata filter reads
      // (and verifies) them from the request as it came (downstreamHeaders).
      this.headers = withoutFields(this.headers, PEER_EXCHANGE_HEADERS);
      // What the client sent was dropped above (headers.ts); a mutual TLS peer gets Istio's own.
      const xfcc = forwardedClientCert(this.connection);
      if (xfcc !== undefined) this.headers['x-forwarded-client-cert'] = xfcc;
    }
  }

  get direction(): RouterStream['direction'] {
    return this.lctx.listener.direction;
  }

  /** FilterStream: the headers as the client sent them. */
  get downstreamHeaders(): Readonly<Record<string, string | string[] | undefined>> {
    return this.req.headers as Record<string, string | string[] | undefined>;
  }

  get userAgent(): string | undefined {
    return joinValue(this.headers['user-agent']);
  }

  /** FilterStream: the matched route (its name and per-filter config). */
  get route(): CompiledRoute | undefined {
    return this.routeEntry;
  }

  /** FilterStream: this end of the downstream connection. */
  get localAddress(): string | undefined {
    return localAddress(this.req);
  }

  /** FilterStream: the original client (Envoy's downstream remote address; see filter-api.ts). */
  remoteAddress(): string {
    const xff = joinValue(this.downstreamHeaders['x-forwarded-for']);
    if (xff === undefined || xff.length === 0) return this.peer;
    const entries = xff.split(',');
    // Envoy: with use_remote_address (gateways) the client is xff_num_trusted_hops from the
    // right, or the peer when there are not that many; without it (sidecars), the rightmost.
    const hops = this.direction === 'gateway' ? (this.lctx.http.xffNumTrustedHops ?? 0) : 1;
    if (hops === 0 || hops > entries.length) return this.peer;
    return entries[entries.length - hops].trim() || this.peer;
  }

  /** What the connection's transport socket knows about the peer. */
  get connection(): ConnectionInfo {
    return (this.connectionInfo ??= connectionInfoOf(this.h2 ? (this.req as Http2ServerRequest).stream?.session?.socket : this.req.socket));
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
    this.resetFilters();
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
    this.resetFilters();
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

  /** RequestView: a claim of the verified token, for routes' `@request.auth.claims` conditions; never a header. */
  claim(path: readonly string[]): string | readonly string[] | undefined {
    return claimValues(this.verifiedClaims, path);
  }

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
    let path = q >= 0 ? rawPath.slice(0, q) : rawPath;
    if (path.charCodeAt(0) === 47) {
      // Istio's meshConfig.pathNormalization, once, before routing and the filters: what is
      // routed, authorized and forwarded is the same path (Envoy's maybeNormalizePath).
      const normalized = normalizePath(path, this.lctx.http.pathNormalization ?? 'BASE');
      if (!normalized.ok) return this.localReply(Replies.pathNormalizationFailed);
      path = normalized.path;
    }
    this.path = path;
    this.query = q >= 0 ? rawPath.slice(q + 1) : '';
    // Methods match case-sensitively in AuthorizationPolicy: where traffic enters a workload, a
    // method that is not an upper-case token (`get`) is refused rather than let past `methods: ["GET"]`.
    if (this.direction !== 'outbound' && !isAcceptedMethod(this.method)) return this.localReply(Replies.methodNotAccepted);
    if (this.path.length === 0 || (this.path.charCodeAt(0) !== 47 && this.method !== 'OPTIONS')) {
      return this.localReply(Replies.badRequest);
    }
    this.authority = authority.toLowerCase();

    this.setForwardedHeaders();

    // The route is matched once, before the filters (Envoy caches it for them); the router
    // answers a request without one (404 NR), so the filters see every request.
    const table = this.selectTable();
    const vh = table ? selectVirtualHost(table, this.authority) : undefined;
    this.virtualHost = vh;
    if (vh !== undefined) {
      const selected = selectRoute(vh, this);
      if (selected !== undefined) {
        this.routeEntry = selected.route;
        this.matchedLength = selected.matchedLength;
      }
    }
    this.startFilters();
  }

  // === the filter chain ===

  /** Makes this request's filter instances (in the listener's order) and decodes. */
  private startFilters(): void {
    const chain = this.snapshot.filterChains.get(this.lctx.listener.name);
    if (chain === undefined) return this.localReply(Replies.noRoute); // (every http listener has one)
    const compiled = chain.filters;
    const filters: HttpFilter[] = [];
    const origins: number[] = [];
    for (let i = 0; i < compiled.length; i++) {
      const f = compiled[i].create(this);
      if (f !== undefined) {
        filters.push(f);
        origins.push(i);
      }
    }
    this.filters = filters;
    this.filterOrigins = origins;
    this.continueDecoding();
  }

  /**
   * FilterStream: Envoy's clearRouteCache(), called by jwt_authn at a gateway once a token is
   * verified (its clear_route_cache): the route is chosen again in the same virtual host, now
   * with the token's claims, and may be none (404 NR from the router). When it is another
   * route, the filters after the one decoding now, which have not run, are made again for it.
   */
  clearRouteCache(claims: Readonly<Record<string, unknown>> | undefined): void {
    const filters = this.filters;
    if (this.finished || filters === undefined) return;
    this.verifiedClaims = claims;
    const vh = this.virtualHost;
    const selected = vh === undefined ? undefined : selectRoute(vh, this);
    // The same route (no claim condition decided it): the filters made for it stay.
    if (selected?.route === this.routeEntry) return;
    this.routeEntry = selected?.route;
    this.matchedLength = selected?.matchedLength ?? 0;
    const chain = this.snapshot.filterChains.get(this.lctx.listener.name);
    if (chain === undefined) return;
    // decodeIndex is past the filter decoding now (continueDecoding advances it first).
    const started = this.decodeIndex;
    const from = started > 0 ? this.filterOrigins[started - 1] + 1 : 0;
    filters.length = started;
    this.filterOrigins.length = started;
    for (let i = from; i < chain.filters.length; i++) {
      const f = chain.filters[i].create(this);
      if (f !== undefined) {
        filters.push(f);
        this.filterOrigins.push(i);
      }
    }
  }

  /** FilterStream: decodes from the filter after the one that stopped. */
  continueDecoding(): void {
    const filters = this.filters;
    if (filters === undefined) return;
    while (!this.finished && this.decodeIndex < filters.length) {
      const f = filters[this.decodeIndex++];
      if (f.decodeHeaders !== undefined && f.decodeHeaders(this) === FilterStatus.Stop) return;
    }
  }

  /**
   * RouterStream: the upstream's response head through the encode filters, last listed first.
   * False when a filter answered instead: its local reply went out (through the filters
   * listed before it), and the upstream response is dropped.
   */
  encodeHeaders(status: number, headers: HeaderBag, upstream: Readonly<HeaderBag>): boolean {
    const filters = this.filters;
    if (filters === undefined) return true;
    const stoppedAt = this.runEncoders(status, headers, upstream, filters.length - 1);
    if (stoppedAt < 0) return true;
    const pending = this.pendingReply ?? { reply: Replies.filterStoppedResponse, headers: undefined, configured: false };
    this.pendingReply = undefined;
    this.writeReply(pending.reply, pending.headers, pending.configured, stoppedAt - 1);
    return false;
  }

  /** Runs encodeHeaders from filter `from` down to the first; the index of a filter that stopped an upstream response, or -1. */
  private runEncoders(status: number, headers: HeaderBag, upstream: Readonly<HeaderBag> | undefined, from: number): number {
    const filters = this.filters;
    if (filters === undefined) return -1;
    for (let i = from; i >= 0; i--) {
      const f = filters[i];
      if (f.encodeHeaders === undefined) continue;
      this.encodingAt = i;
      const result = f.encodeHeaders(this, status, headers, upstream);
      this.encodingAt = -1;
      if (result === FilterStatus.Stop && upstream !== undefined) return i;
    }
    return -1;
  }

  /** Tells every filter the request ended early (the client left, a timeout). */
  private resetFilters(): void {
    const filters = this.filters;
    if (filters === undefined) return;
    for (let i = 0; i < filters.length; i++) filters[i].onReset?.();
  }

  /** FilterStream: ready field lines for the response head, when sinew's HTTP/1.1 codec writes it. */
  addResponseLines(lines: string): boolean {
    const res = this.res;
    if (!(res instanceof H1Response)) return false;
    if (lines.length > 0 && !res.proxyLines.includes(lines)) res.proxyLines += lines;
    return true;
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

  /**
   * The one way the connection manager and the filters answer by themselves. The reply goes
   * back through the encode filters; one a filter makes while encoding replaces the response
   * it was given (encodeHeaders).
   */
  localReply(reply: LocalReply, headers?: Record<string, string>, configured = false): void {
    if (this.finished) return;
    if (this.encodingAt >= 0) {
      this.pendingReply = { reply, headers, configured };
      return;
    }
    this.writeReply(reply, headers, configured, (this.filters?.length ?? 0) - 1);
  }

  private writeReply(reply: LocalReply, headers: Record<string, string> | undefined, configured: boolean, encodeFrom: number): void {
    if (this.finished) return;
    if (this.res.headersSent) {
      this.abortDownstream(reply.flag);
      return;
    }
    if (reply.flag) this.addFlag(reply.flag);
    this.details = reply.details;
    const extra: HeaderBag = { ...headers };
    this.runEncoders(reply.status, extra, undefined, encodeFrom);
    // A draining listener tells HTTP/1.1 clients to go elsewhere (Envoy's drain sets Connection: close).
    if (this.lctx.draining && !this.h2) extra['connection'] = 'close';
    const flags = configured ? undefined : this.flags.join(',') || undefined;
    this.status = writeLocalReply(this.res as unknown as DownstreamResponse, reply, this.grpc, extra, flags);
    if (!configured && reply.flag) this.runtime.stats.inc(`downstream_rq_local_reply_${reply.flag}`);
    this.finish();
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
    this.resetFilters();
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
        // Istio's connection_security_policy: mutual_tls when the peer proved a certificate.
        mtls: this.connection.security === 'mutual_tls',
        downstreamPeerUriSan: this.connection.peerUriSan,
        dynamicMetadata: this.dynamicMetadata,
        requestedServerName: this.connection.sni,
        upstreamTransportFailureReason: this.upstreamTransportFailureReason,
        upstreamPeerUriSan: this.upstreamPeerUriSan,
        upstreamLocalUriSan: this.upstreamLocalUriSan,
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
