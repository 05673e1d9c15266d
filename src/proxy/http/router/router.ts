/**
 * The router filter (Envoy's `envoy.filters.http.router`), the terminal filter of every chain.
 * For a request the connection manager found no route for it answers 404 NR; for a redirect
 * or direct-response route it answers; for a route to clusters it picks the weighted
 * destination, rewrites the request, and runs the upstream tries (upstream-request.ts) under
 * the route timeout and the retry policy (retry-state.ts), with shadows (shadow.ts) and
 * upgrades (upgrade.ts). Request and response stream through the pool's dispatch handler with
 * backpressure both ways (no per-request promise, stream or AbortController). The response
 * head goes back through the encode filters before it is written.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Address, WeightedCluster } from '../../../api/proxy-config.js';
import { ResponseFlag } from '../../../api/response-flags.js';
import type { TimerHandle } from '../../../core/clock.js';
import { withoutFields } from '../../../core/header-lines.js';
import { hasTraceHeaders } from '../../../telemetry/propagation.js';
import { withoutTraceHeaders } from '../../../telemetry/proxy-telemetry.js';
import type { SpanRequest } from '../../../telemetry/tracing.js';
import { PEER_EXCHANGE_HEADERS } from '../../peer-identity.js';
import type { UpstreamCluster, UpstreamOutcome } from '../../upstream/types.js';
import { FilterStatus, type FilterStream, type HttpFilter } from '../filter-api.js';
import { generatedCookieValue, hashRequest, setCookieValue, type GeneratedCookies } from '../hash-policy.js';
import { applyHeaderOps, joinValue, sanitizeResponseHeaders, type HeaderBag } from '../headers.js';
import { Replies, replyForFailure, type DownstreamResponse, type LocalReply } from '../local-reply.js';
import type { CompiledRoute, CompiledRouteAction } from '../route-table.js';
import { chooseDestination, stickyPoint } from './destination.js';
import { redirectLocation } from './redirect.js';
import { RetryState } from './retry-state.js';
import { shadowRequest } from './shadow.js';
import type { RouterStream } from './types.js';
import { canSwitchProtocols, spliceUpgrade } from './upgrade.js';
import { passthroughTarget } from '../passthrough.js';
import { grpcRequestTimeout } from '../grpc-timeout.js';
import { grpcEndTrailers, grpcHeadStatus, type GrpcHeadStatus } from '../grpc-trailers.js';
import { UpstreamRequest, type UpstreamRequestOwner } from './upstream-request.js';

type Body = Buffer | Dispatcher.DispatchOptions['body'] | AsyncIterable<Buffer> | null;

/** Default largest body buffered for retries and mirrors (Envoy's per-request buffer limit is similar). */
export const DEFAULT_MAX_BUFFERED_BODY_BYTES = 64 * 1024;

export class Router implements HttpFilter, UpstreamRequestOwner, GeneratedCookies {
  private action!: CompiledRouteAction;
  private route!: CompiledRoute;
  private dest!: WeightedCluster;
  /** The cluster of the chosen destination (set once it exists). */
  cluster!: UpstreamCluster;
  private path = '/';
  private authority = '';
  private body: Body = null;
  /** The body can be sent again (absent or fully buffered): retries and mirrors are possible. */
  private replayable = true;
  private hash?: number;
  /** A cookie the hash policy generated: `Set-Cookie` for the upstream response. */
  private setCookie?: string;
  /** PassthroughCluster / PASSTHROUGH: the address the request names (passthrough.ts). */
  private originalDestination?: Address;
  /** gRPC: the status the committed response head carried, repeated as trailers at its end (grpc-trailers.ts). */
  private grpcHead?: GrpcHeadStatus;
  /** Only for routes with a retry policy (most mesh hops have Istio's default one). */
  private retries: RetryState | undefined;
  private attempt?: UpstreamRequest;
  private globalTimer?: TimerHandle;
  private backoffTimer?: TimerHandle;
  /** No more upstream work: answered, timed out, or the client left. */
  done = false;

  constructor(readonly stream: RouterStream) {}

  // === the terminal filter ===

  decodeHeaders(_filterStream: FilterStream): FilterStatus {
    const s = this.stream;
    const vh = s.virtualHost;
    if (!vh) {
      s.localReply(Replies.noRoute);
      return FilterStatus.Stop;
    }
    if (vh.requireTls && s.scheme !== 'https') {
      // Gateway tls.httpsRedirect: Envoy's require_tls ALL answers 301 to the https URL.
      this.redirect({ kind: 'redirect', scheme: 'https', responseCode: 301 });
      return FilterStatus.Stop;
    }
    const route = s.routeEntry;
    if (!route) {
      s.localReply(Replies.noRoute);
      return FilterStatus.Stop;
    }
    const action = route.action;
    switch (action.kind) {
      case 'redirect':
        this.redirect(action);
        break;
      case 'direct':
        s.localReply({ status: action.status, details: 'direct_response', body: action.body ?? '' }, undefined, true);
        break;
      case 'route':
        this.route = route;
        this.action = action;
        this.start();
        break;
    }
    return FilterStatus.Stop;
  }

  /** The client went away, or the connection manager timed the request out. */
  onReset(): void {
    this.onDownstreamGone();
  }

  private redirect(a: Parameters<typeof redirectLocation>[0]): void {
    const location = redirectLocation(a, this.stream);
    this.stream.localReply({ status: a.responseCode || 301, details: 'redirect', body: '' }, { location }, true);
  }

  // === to the upstream ===

  private start(): void {
    const s = this.stream;
    const a = this.action;
    if (a.retry !== undefined) this.retries = new RetryState(a.retry, s.runtime.stats);
    if (a.hashPolicy) this.hash = hashRequest(a.hashPolicy, s, this);
    this.dest = chooseDestination(a.weighted, a.sticky && this.hash !== undefined ? stickyPoint(this.hash) : s.runtime.random.next());
    s.cluster = this.dest.cluster;
    const cluster = s.runtime.clusterManager.get(this.dest.cluster);
    if (!cluster) return this.finishWith(Replies.noCluster);
    this.cluster = cluster;
    s.destinationService = cluster.config.service?.host;
    // Pass-through and REGISTRY_ONLY (passthrough.ts).
    const passthrough = passthroughTarget(s, cluster);
    if (passthrough.reply) return this.finishWith(passthrough.reply);
    this.originalDestination = passthrough.destination;
    this.path = this.rewritePath();
    let authority = a.rewriteAuthority ?? s.authority;
    authority = applyHeaderOps(s.headers, this.dest.requestHeaders, authority) ?? authority;
    authority = applyHeaderOps(s.headers, this.route.requestHeaders, authority) ?? authority;
    this.authority = authority;
    s.headers['host'] = authority;
    if (s.runtime.telemetry !== undefined && s.direction !== 'inbound') this.startClientSpan();
    // Istio's metadata exchange (the peer_metadata filter asked for it): mesh destinations
    // get this proxy's exchange headers; passthrough traffic leaves the mesh and gets none.
    // An app cannot speak for its sidecar: its own exchange headers give way to the proxy's.
    if (s.sendPeerMetadata && cluster.config.kind !== 'originalDst') {
      s.headers = withoutFields(s.headers, PEER_EXCHANGE_HEADERS);
      s.proxyHeaderLines += s.runtime.peerHeaderLines;
    }
    // An upgrade request (no body: upgrade.ts) goes upstream like any other, asking for the
    // upgrade; the route timeout runs until the upstream answers.
    // A gRPC request's deadline caps the route timeout (grpc-timeout.ts).
    const timeoutMs = s.grpc ? grpcRequestTimeout(s.headers, a.timeoutMs, a.retry?.policy.perTryTimeoutMs) : a.timeoutMs;
    if (timeoutMs > 0 && !s.faultInjected) this.globalTimer = s.runtime.clock.setTimeout(this.onGlobalTimeout, timeoutMs);
    if (!hasBody(s)) {
      this.body = null;
      this.go();
    } else if (a.needsBody) {
      this.bufferBody();
    } else {
      this.body = s.bodyStream() as Body;
      this.replayable = false;
      const cl = Number(s.req.headers['content-length']);
      if (cl > 0) s.requestBytes = cl;
      this.go();
    }
  }

  /**
   * The CLIENT span of the upstream call (outbound sidecar: child of the app's trace context;
   * gateway: child of its server span), whose headers replace whatever trace headers came in.
   */
  private startClientSpan(): void {
    const s = this.stream;
    const tracer = s.runtime.telemetry!.tracer;
    if (tracer === undefined) return;
    // A gateway's server span already took (and removed) the incoming context; an outbound
    // sidecar continues whatever the app sent, if anything.
    const fromApp = s.serverSpan === undefined && hasTraceHeaders(s.headers);
    // A sidecar's outbound span is Envoy's connection-manager span: it starts with the
    // request, so what the filters did first (a fault-injected delay) is inside it. A
    // gateway's is the router's upstream span (Istio sets spawn_upstream_span for routers),
    // which starts when the upstream request does.
    const span = tracer.startClientSpan(s.serverSpan ?? (fromApp ? { headers: s.headers } : undefined), this, s.serverSpan === undefined ? s.startTime : undefined);
    s.clientSpan = span;
    if (fromApp) s.headers = withoutTraceHeaders(s.headers);
    s.proxyHeaderLines += span.headerLines();
  }

  /**
   * GeneratedCookies (Envoy's addDownstreamSetCookie): the value is the same for every request
   * of this downstream connection; the response from upstream carries the cookie.
   */
  addSetCookie(name: string, path: string | undefined, maxAgeSeconds: number): string {
    const socket = this.stream.req.socket;
    const value = generatedCookieValue(`${socket?.remoteAddress}:${socket?.remotePort}`, `${socket?.localAddress}:${socket?.localPort}`);
    this.setCookie = setCookieValue(name, value, path, maxAgeSeconds);
    return value;
  }

  /** SpanRequestSource: what the client span records, asked only when it is sampled. */
  spanRequest(): SpanRequest {
    const s = this.stream;
    return {
      method: s.method,
      url: `${s.scheme}://${this.authority}${this.path}`,
      requestId: s.requestId,
      protocol: s.h2 ? 'HTTP/2' : 'HTTP/1.1',
      userAgent: s.userAgent,
      upstreamCluster: this.cluster.name,
      // Envoy names the router's upstream span after the cluster (UpstreamRequest); the
      // gateway's own span keeps the request's name, so the two are told apart.
      operation: s.serverSpan === undefined ? undefined : `router ${this.cluster.name} egress`,
    };
  }

  private go(): void {
    if (this.done) return;
    const mirrors = this.action.mirrors;
    if (mirrors.length && this.replayable && this.stream.upgrade === undefined) {
      shadowRequest(this.stream, mirrors, { path: this.path, authority: this.authority, body: this.body as Buffer | null, hash: this.hash, timeoutMs: this.action.timeoutMs });
    }
    this.attemptOnce();
  }

  /** Envoy's prefix_rewrite replaces what the path match consumed; regex_rewrite rewrites the whole path. */
  private rewritePath(): string {
    const s = this.stream;
    const a = this.action;
    let path = s.path;
    if (a.rewriteRegex) path = a.rewriteRegex.re.matcher(path).replaceAll(a.rewriteRegex.substitution);
    else if (a.rewritePrefix !== undefined) path = a.rewritePrefix + path.slice(s.matchedLength);
    return s.query ? `${path}?${s.query}` : path;
  }

  /** Buffers up to maxBufferedBodyBytes; a larger body streams on and is neither retried nor mirrored. */
  private bufferBody(): void {
    const s = this.stream;
    const req = s.bodyStream();
    const limit = s.lctx.http.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES;
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        this.replayable = false;
        s.requestBytes = size;
        this.body = (async function* () {
          yield* chunks;
          for await (const c of req as AsyncIterable<Buffer>) yield c;
        })();
        this.go();
      }
    };
    const onEnd = () => {
      cleanup();
      this.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      s.requestBytes = size;
      this.go();
    };
    req.on('data', onData);
    req.on('end', onEnd);
  }

  // === tries ===

  private attemptOnce(): void {
    if (this.done) return;
    const s = this.stream;
    s.attempts++;
    const retries = this.retries;
    const picked = this.cluster.acquire({ hash: this.hash, exclude: retries?.tried, originalDestination: this.originalDestination });
    if (!picked.ok) {
      this.finishWith(replyForRefusal(picked));
      return;
    }
    const lease = picked.lease;
    retries?.onAttempt(lease.key);
    s.upstreamHost = lease.key;
    // Envoy sets x-envoy-attempt-count on every upstream request (Istio's httpbin /headers shows it).
    s.headers['x-envoy-attempt-count'] = String(s.attempts);
    const attempt = new UpstreamRequest(this, lease, retries !== undefined && retries.done > 0, s.runtime.clock);
    this.attempt = attempt;
    const perTry = this.action.retry?.policy.perTryTimeoutMs;
    if (perTry && perTry > 0 && !s.faultInjected) {
      attempt.timer = s.runtime.clock.setTimeout(() => attempt.cancel('per-try-timeout'), perTry);
    }
    lease.dispatcher.dispatch(
      {
        path: this.path,
        method: s.method as Dispatcher.HttpMethod,
        headers: s.headers as IncomingHttpHeaders,
        proxyHeaderLines: s.proxyHeaderLines,
        body: this.body as Dispatcher.DispatchOptions['body'],
        // Only a 101 to this switches protocols (onUpgrade); any other answer is a response.
        upgrade: s.upgrade,
        // The route timeout and per-try timeout are ours (injected clock); the pool's are off.
        headersTimeout: 0,
        bodyTimeout: 0,
      },
      attempt,
    );
  }

  /** The identities of the committed try's connection, when it was mutual TLS (Istio's source-reporter principals). */
  private recordUpstreamPeer(attempt: UpstreamRequest): void {
    const connection = attempt.connection;
    if (connection?.security !== 'mutual_tls') return;
    this.stream.upstreamPeerUriSan = connection.peerUriSan;
    this.stream.upstreamLocalUriSan = connection.localUriSan;
  }

  private reserveRetry(): boolean {
    return !this.done && this.retries !== undefined && this.retries.reserve(this.cluster, this.replayable, this.stream.faultInjected);
  }

  releaseRetry(): void {
    this.cluster.releaseRetry();
  }

  /** The response head of a try arrived: retry it, or commit it downstream. */
  onHeaders(attempt: UpstreamRequest, status: number, headers: IncomingHttpHeaders): void {
    if (attempt !== this.attempt || this.done) return;
    const s = this.stream;
    s.upstreamMs ??= s.runtime.clock.monotonic() - s.startMono;
    if (this.retries?.retriableStatus(status, headers) && this.reserveRetry()) {
      attempt.discarding = true;
      attempt.status = status;
      return;
    }
    attempt.clearTimer();
    attempt.committed = true;
    this.recordUpstreamPeer(attempt);
    if (s.grpc && s.h2) this.grpcHead = grpcHeadStatus(headers); // grpc-trailers.ts
    const out = this.responseHead(attempt, headers);
    if (this.retries !== undefined && this.retries.done > 0 && status >= 500) s.runtime.stats.inc('upstream_rq_retry_limit_exceeded');
    if (!s.encodeHeaders(status, out, headers as HeaderBag)) {
      // A filter answered in place of the upstream's response.
      this.done = true;
      this.clearTimers();
      attempt.cancel('protocol');
      return;
    }
    if (s.lctx.draining && !s.h2) out['connection'] = 'close';
    s.status = status;
    try {
      s.res.writeHead(status, out);
    } catch (err) {
      // An upstream header node refuses to write (invalid for HTTP/2, say): Envoy answers 502 UPE.
      s.runtime.logger.debug('upstream response head rejected', { error: (err as Error).message });
      attempt.cancel('protocol');
      this.finishWith(Replies.upstreamInvalidResponse);
    }
  }

  /** The upstream's response head as the client gets it, before the encode filters: hygiene and route header operations. */
  private responseHead(attempt: UpstreamRequest, headers: IncomingHttpHeaders): HeaderBag {
    const s = this.stream;
    // The upstream sidecar's exchange fields are kept from the app (the peer_metadata filter reads them).
    const out = sanitizeResponseHeaders(headers as HeaderBag, s.runtime.telemetry !== undefined && s.direction !== 'inbound');
    if (s.grpc) {
      const grpc = out['grpc-status'];
      if (grpc !== undefined) s.grpcStatus = joinValue(grpc);
    }
    // Envoy's x-envoy-upstream-service-time: milliseconds from sending this try upstream to
    // its response head (the app's time plus the network), overwriting an inner hop's value.
    out['x-envoy-upstream-service-time'] = String(Math.round(s.runtime.clock.monotonic() - attempt.startMono));
    applyHeaderOps(out, this.dest.responseHeaders);
    applyHeaderOps(out, this.route.responseHeaders);
    if (this.setCookie !== undefined) addSetCookieHeader(out, this.setCookie);
    return out;
  }

  onData(attempt: UpstreamRequest, chunk: Buffer): void {
    if (attempt !== this.attempt || attempt.discarding || this.done) return;
    const s = this.stream;
    s.responseBytes += chunk.length;
    // Backpressure: stop reading upstream until the client drains (pause/resume).
    const res = s.res as unknown as { write(c: Buffer): boolean; once(e: 'drain', f: () => void): unknown };
    if (!res.write(chunk)) {
      attempt.controller?.pause();
      res.once('drain', attempt.resume);
    }
  }

  onEnd(attempt: UpstreamRequest, trailers: IncomingHttpHeaders): void {
    if (attempt.discarding) {
      attempt.release({ status: attempt.status });
      if (attempt === this.attempt && !this.done) this.scheduleRetry();
      return;
    }
    attempt.release({ status: attempt.status });
    if (attempt !== this.attempt || this.done) return;
    this.done = true;
    this.clearTimers();
    const s = this.stream;
    if (s.grpc && trailers) {
      const grpc = trailers['grpc-status'];
      if (grpc !== undefined) s.grpcStatus = String(grpc);
    }
    if (this.grpcHead) trailers = grpcEndTrailers(this.grpcHead, trailers); // grpc-trailers.ts
    // gRPC trailers pass through to HTTP/2 clients; HTTP/1.1 has no place for them by default (Envoy).
    if (s.h2 && trailers && Object.keys(trailers).length) {
      (s.res as { addTrailers(h: IncomingHttpHeaders): void }).addTrailers(trailers);
    }
    (s.res as DownstreamResponse).end();
    s.finish();
  }

  onError(attempt: UpstreamRequest, err: Error): void {
    const reason = attempt.cancelReason;
    const failure = attempt.failure(err);
    // A try we cancelled because the client left says so: it is no fault of the endpoint.
    const reported: UpstreamOutcome['failure'] = reason === 'downstream' ? 'cancelled' : failure;
    attempt.release(attempt.committed || attempt.discarding ? { status: attempt.status, failure: reported } : { failure: reported });
    if (attempt !== this.attempt) return;
    if (reason === 'downstream' || reason === 'global-timeout' || this.done) return;
    const s = this.stream;
    if (attempt.committed) {
      // Reset mid-response: the client must see an aborted response, not a short one (Envoy UC/UR).
      this.done = true;
      this.clearTimers();
      s.abortDownstream(ResponseFlag.UpstreamConnectionTermination);
      return;
    }
    if (attempt.discarding) {
      this.scheduleRetry();
      return;
    }
    if (failure === 'connect-failure') s.upstreamTransportFailureReason = err.message;
    if (this.retries?.retriableFailure(failure) && this.reserveRetry()) {
      this.scheduleRetry();
      return;
    }
    this.finishWith(replyForFailure(failure), this.retries !== undefined && this.retries.done > 0);
  }

  private scheduleRetry(): void {
    if (this.done) return;
    const s = this.stream;
    const delay = this.retries!.nextBackoffMs(s.runtime.random);
    this.attempt = undefined;
    if (delay <= 0) queueMicrotask(() => this.attemptOnce());
    else this.backoffTimer = s.runtime.clock.setTimeout(() => { this.backoffTimer = undefined; this.attemptOnce(); }, delay);
  }

  // === upgrades ===

  /** The upstream switched protocols (101) for an upgrade request: tunnel (upgrade.ts). */
  onUpgrade(attempt: UpstreamRequest, status: number, headers: IncomingHttpHeaders, upstream: Duplex): void {
    upstream.on('error', () => upstream.destroy());
    const s = this.stream;
    if (attempt !== this.attempt || this.done || !canSwitchProtocols(s)) {
      upstream.destroy();
      attempt.release({ status, failure: 'cancelled' });
      return;
    }
    s.upstreamMs ??= s.runtime.clock.monotonic() - s.startMono;
    attempt.clearTimer();
    attempt.committed = true;
    this.recordUpstreamPeer(attempt);
    this.done = true;
    this.clearTimers();
    const out = this.responseHead(attempt, headers);
    if (!s.encodeHeaders(status, out, headers as HeaderBag)) {
      upstream.destroy();
      attempt.release({ status, failure: 'cancelled' });
      return;
    }
    // The two hop-by-hop fields a 101 needs (RFC 9110 §7.8, §15.2.2).
    out['connection'] = 'upgrade';
    out['upgrade'] = joinValue(headers['upgrade'] as HeaderBag[string] | undefined) ?? s.upgrade ?? '';
    s.status = status;
    try {
      spliceUpgrade(s, status, out, upstream, () => attempt.release({ status }));
    } catch (err) {
      s.runtime.logger.debug('upstream upgrade head rejected', { error: (err as Error).message });
      upstream.destroy();
      attempt.release({ status, failure: 'reset' });
      this.done = false;
      this.finishWith(Replies.upstreamInvalidResponse);
    }
  }

  // === endings ===

  private onGlobalTimeout = (): void => {
    this.globalTimer = undefined;
    if (this.done) return;
    const s = this.stream;
    const attempt = this.attempt;
    this.done = true;
    this.clearTimers();
    attempt?.cancel('global-timeout');
    if (attempt?.committed) s.abortDownstream(ResponseFlag.UpstreamRequestTimeout);
    else s.localReply(Replies.upstreamTimeout);
  };

  /** The client went away: abort whatever is in flight upstream. */
  onDownstreamGone(): void {
    if (this.done) return;
    this.done = true;
    this.clearTimers();
    this.attempt?.cancel('downstream');
  }

  private finishWith(r: LocalReply, retriesExhausted = false): void {
    this.done = true;
    this.clearTimers();
    // URX only when the proxy answers itself after using up its retries (Envoy's retry limit flag).
    if (retriesExhausted) this.stream.addFlag(ResponseFlag.UpstreamRetryLimitExceeded);
    if (r.flag) this.stream.addFlag(r.flag);
    this.stream.localReply(r);
  }

  private clearTimers(): void {
    const clock = this.stream.runtime.clock;
    if (this.globalTimer) clock.clearTimeout(this.globalTimer);
    if (this.backoffTimer) clock.clearTimeout(this.backoffTimer);
    this.globalTimer = this.backoffTimer = undefined;
    this.attempt?.clearTimer();
  }
}

// === helpers ===

/** The local reply for a cluster that gave no endpoint: overflow (UO), waiting for TLS credentials, or none healthy. */
function replyForRefusal(refusal: { flag: 'UH' | 'UO'; detail: string }): LocalReply {
  if (refusal.flag === 'UO') return Replies.overflow;
  return refusal.detail === 'cluster_warming' ? Replies.clusterWarming : Replies.noHealthyUpstream;
}

function hasBody(s: RouterStream): boolean {
  const req = s.req;
  if (s.h2) return !(req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders;
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Adds a Set-Cookie field beside any the upstream sent (Envoy adds, never replaces). */
function addSetCookieHeader(out: HeaderBag, cookie: string): void {
  const present = out['set-cookie'];
  out['set-cookie'] = present === undefined ? [cookie] : Array.isArray(present) ? [...present, cookie] : [present, cookie];
}
