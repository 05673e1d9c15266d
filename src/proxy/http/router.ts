/**
 * The router filter (Envoy's `envoy.filters.http.router`): picks the weighted destination,
 * rewrites the request, acquires an endpoint from the cluster, and streams the request and the
 * response through an undici `dispatch()` handler with backpressure both ways (tools/README.md:
 * no per-request promise, stream or AbortController). It owns the route timeout, the retry
 * loop (per-try timeout, retry conditions, previous-host avoidance, jittered backoff, retry
 * budget) and request mirroring.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Address, WeightedCluster } from '../../api/proxy-config.js';
import { ResponseFlag } from '../../api/response-flags.js';
import type { TimerHandle } from '../../core/clock.js';
import { hasTraceHeaders } from '../../telemetry/propagation.js';
import { withoutTraceHeaders, type ProxyTelemetry } from '../../telemetry/proxy-telemetry.js';
import { withoutFields } from '../../core/header-lines.js';
import { PEER_EXCHANGE_HEADERS } from '../peer-identity.js';
import type { SpanRequest } from '../../telemetry/tracing.js';
import type { UpstreamCluster, UpstreamLease, UpstreamOutcome } from '../upstream/types.js';
import { generatedCookieValue, hashRequest, setCookieValue, type GeneratedCookies } from './hash-policy.js';
import { applyHeaderOps, joinValue, sanitizeResponseHeaders, type HeaderBag } from './headers.js';
import { Replies, replyForFailure, type DownstreamResponse, type LocalReply, type UpstreamFailure } from './local-reply.js';
import type { CompiledRoute, CompiledRouteAction, CompiledWeighted } from './route-table.js';
import { H1Response } from './h1-server.js';
import { passthroughTarget } from './passthrough.js';
import { grpcRequestTimeout } from './grpc-timeout.js';
import { grpcEndTrailers, grpcHeadStatus, type GrpcHeadStatus } from './grpc-trailers.js';
import type { DownstreamRequest, HttpStream } from './stream.js';

type Body = Buffer | DownstreamRequest | AsyncIterable<Buffer> | null;

/** Default largest body buffered for retries and mirrors (Envoy's per-request buffer limit is similar). */
export const DEFAULT_MAX_BUFFERED_BODY_BYTES = 64 * 1024;

/** gRPC status codes Envoy's retry_on names (envoy/config/route/v3 RetryPolicy, x-envoy-retry-grpc-on). */
const GRPC_RETRY_ON: Readonly<Record<string, string>> = { '1': 'cancelled', '4': 'deadline-exceeded', '8': 'resource-exhausted', '13': 'internal', '14': 'unavailable' };

export class Router implements GeneratedCookies {
  private readonly action: CompiledRouteAction;
  private dest!: WeightedCluster;
  /** The cluster of the chosen destination (set by start once it exists). */
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
  private retriesDone = 0;
  private tried?: Set<string>;
  private attempt?: Attempt;
  private globalTimer?: TimerHandle;
  private backoffTimer?: TimerHandle;
  /** No more upstream work: answered, timed out, or the client left. */
  done = false;

  constructor(
    readonly stream: HttpStream,
    private readonly route: CompiledRoute,
    action: CompiledRouteAction,
  ) {
    this.action = action;
  }

  start(): void {
    const s = this.stream;
    const a = this.action;
    if (a.hashPolicy) this.hash = hashRequest(a.hashPolicy, s, this);
    this.dest = chooseDestination(a.weighted, a.sticky && this.hash !== undefined ? stickyPoint(this.hash) : s.runtime.random.next());
    s.cluster = this.dest.cluster;
    const cluster = s.runtime.clusterManager.get(this.dest.cluster);
    if (!cluster) return this.finishWith(Replies.noCluster);
    this.cluster = cluster;
    s.destinationService = cluster.config.service?.host;
    // --- hook: pass-through and REGISTRY_ONLY (passthrough.ts) ---
    const passthrough = passthroughTarget(s, cluster);
    if (passthrough.reply) return this.finishWith(passthrough.reply);
    this.originalDestination = passthrough.destination;
    // --- end hook ---
    this.path = this.rewritePath();
    let authority = a.rewriteAuthority ?? s.authority;
    authority = applyHeaderOps(s.headers, this.dest.requestHeaders, authority) ?? authority;
    authority = applyHeaderOps(s.headers, this.route.requestHeaders, authority) ?? authority;
    this.authority = authority;
    s.headers['host'] = authority;
    const tel = s.runtime.telemetry;
    if (tel !== undefined && s.lctx.listener.direction !== 'inbound') this.startClientSpan(tel);
    // An upgrade request (no body: upgrade.ts) goes upstream like any other, asking for the
    // upgrade; the route timeout runs until the upstream answers.
    // --- hook: a gRPC request's deadline (grpc-timeout.ts) ---
    const timeoutMs = s.grpc ? grpcRequestTimeout(s.headers, a.timeoutMs, a.retry?.policy.perTryTimeoutMs) : a.timeoutMs;
    // --- end hook ---
    if (timeoutMs > 0 && !s.faultInjected) this.globalTimer = s.runtime.clock.setTimeout(this.onGlobalTimeout, timeoutMs);
    if (!hasBody(s)) {
      this.body = null;
      this.go();
    } else if (a.needsBody) {
      this.bufferBody();
    } else {
      this.body = s.bodyStream();
      this.replayable = false;
      const cl = Number(s.req.headers['content-length']);
      if (cl > 0) s.requestBytes = cl;
      this.go();
    }
  }

  /**
   * The CLIENT span of the upstream call (outbound sidecar: child of the app's trace context;
   * gateway: child of its server span), whose headers replace whatever trace headers came in,
   * and this proxy's peer metadata for the upstream sidecar.
   */
  private startClientSpan(tel: ProxyTelemetry): void {
    const s = this.stream;
    const tracer = tel.tracer;
    if (tracer !== undefined) {
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
      s.proxyHeaderLines = span.headerLines();
    }
    // Passthrough traffic leaves the mesh: its hosts get no workload identity (Istio sends the
    // exchange headers to mesh destinations only). An app cannot speak for its sidecar: its
    // own exchange headers, and any proof of them, give way to the proxy's.
    if (this.cluster.config.kind !== 'originalDst') {
      s.headers = withoutFields(s.headers, PEER_EXCHANGE_HEADERS);
      s.proxyHeaderLines += s.runtime.peerHeaderLines;
    }
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
      userAgent: joinValue(s.headers['user-agent']),
      upstreamCluster: this.cluster.name,
      // Envoy names the router's upstream span after the cluster (UpstreamRequest); the
      // gateway's own span keeps the request's name, so the two are told apart.
      operation: s.serverSpan === undefined ? undefined : `router ${this.cluster.name} egress`,
    };
  }

  private go(): void {
    if (this.done) return;
    if (this.action.mirrors.length && this.replayable && this.stream.upgrade === undefined) this.mirror();
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

  // === attempts ===

  private attemptOnce(): void {
    if (this.done) return;
    const s = this.stream;
    s.attempts++;
    const retry = this.action.retry;
    const picked = this.cluster.acquire({ hash: this.hash, exclude: this.tried, originalDestination: this.originalDestination });
    if (!picked.ok) {
      this.finishWith(replyForRefusal(picked));
      return;
    }
    const lease = picked.lease;
    if (retry?.policy.avoidPreviousHosts) (this.tried ??= new Set()).add(lease.key);
    s.upstreamHost = lease.key;
    // Envoy sets x-envoy-attempt-count on every upstream request (Istio's httpbin /headers shows it).
    s.headers['x-envoy-attempt-count'] = String(s.attempts);
    const attempt = new Attempt(this, lease, this.retriesDone > 0);
    this.attempt = attempt;
    const perTry = retry?.policy.perTryTimeoutMs;
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
        // The route timeout and per-try timeout are ours (injected clock); undici's are off.
        headersTimeout: 0,
        bodyTimeout: 0,
      },
      attempt,
    );
  }

  /** The response head of an attempt arrived: retry it, or commit it downstream. */
  onHeaders(attempt: Attempt, status: number, headers: IncomingHttpHeaders): void {
    if (attempt !== this.attempt || this.done) return;
    const s = this.stream;
    s.upstreamMs ??= s.runtime.clock.monotonic() - s.startMono;
    if (this.retriableStatus(status, headers) && this.reserveRetry()) {
      attempt.discarding = true;
      attempt.status = status;
      return;
    }
    attempt.clearTimer();
    attempt.committed = true;
    if (s.grpc && s.h2) this.grpcHead = grpcHeadStatus(headers); // hook: grpc-trailers.ts
    const out = this.downstreamHeaders(attempt, headers);
    if (s.lctx.draining && !s.h2) out['connection'] = 'close';
    if (this.retriesDone > 0 && status >= 500) s.runtime.stats.inc('upstream_rq_retry_limit_exceeded');
    s.status = status;
    try {
      s.res.writeHead(status, out);
    } catch (err) {
      // An upstream header node refuses to write (invalid for HTTP/2, say): Envoy answers 502 UPE.
      s.runtime.logger.debug('upstream response head rejected', { error: (err as Error).message });
      attempt.cancel('protocol');
      this.finishWith({ status: 502, flag: ResponseFlag.UpstreamProtocolError, details: 'upstream_response_invalid', body: 'upstream sent an invalid response' });
    }
  }

  /** The response head as the client gets it: hygiene, metadata exchange, route header operations. */
  private downstreamHeaders(attempt: Attempt, headers: IncomingHttpHeaders): HeaderBag {
    const s = this.stream;
    // Metadata exchange: the upstream sidecar's identity is read here and kept from the app.
    const readPeer = s.runtime.telemetry !== undefined && s.lctx.listener.direction !== 'inbound';
    if (readPeer) s.peerMetadata = s.runtime.peers.verify(headers as HeaderBag);
    const out = sanitizeResponseHeaders(headers as HeaderBag, readPeer);
    if (s.grpc) {
      const grpc = out['grpc-status'];
      if (grpc !== undefined) s.grpcStatus = joinValue(grpc);
    }
    // An inbound sidecar answers the exchange with its own identity.
    if (s.runtime.telemetry !== undefined && s.lctx.listener.direction === 'inbound') s.answerPeerExchange(out);
    // Envoy's x-envoy-upstream-service-time: milliseconds from sending this try upstream to
    // its response head (the app's time plus the network), overwriting an inner hop's value.
    out['x-envoy-upstream-service-time'] = String(Math.round(s.runtime.clock.monotonic() - attempt.startMono));
    applyHeaderOps(out, this.dest.responseHeaders);
    applyHeaderOps(out, this.route.responseHeaders);
    if (s.extraResponseHeaders) Object.assign(out, s.extraResponseHeaders);
    if (this.setCookie !== undefined) addSetCookieHeader(out, this.setCookie);
    return out;
  }

  onData(attempt: Attempt, chunk: Buffer): void {
    if (attempt !== this.attempt || attempt.discarding || this.done) return;
    const s = this.stream;
    s.responseBytes += chunk.length;
    // Backpressure: stop reading upstream until the client drains (undici pause/resume).
    const res = s.res as unknown as { write(c: Buffer): boolean; once(e: 'drain', f: () => void): unknown };
    if (!res.write(chunk)) {
      attempt.controller?.pause();
      res.once('drain', attempt.resume);
    }
  }

  onEnd(attempt: Attempt, trailers: IncomingHttpHeaders): void {
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
    if (this.grpcHead) trailers = grpcEndTrailers(this.grpcHead, trailers); // hook: grpc-trailers.ts
    // gRPC trailers pass through to HTTP/2 clients; HTTP/1.1 has no place for them by default (Envoy).
    if (s.h2 && trailers && Object.keys(trailers).length) {
      (s.res as { addTrailers(h: IncomingHttpHeaders): void }).addTrailers(trailers);
    }
    (s.res as DownstreamResponse).end();
    s.finish();
  }

  onError(attempt: Attempt, err: Error): void {
    const reason = attempt.cancelReason;
    const failure = classify(attempt, err);
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
    if (this.retriableFailure(failure) && this.reserveRetry()) {
      this.scheduleRetry();
      return;
    }
    this.finishWith(replyForFailure(failure), this.retriesDone > 0);
  }

  // === retries ===

  private canRetry(): boolean {
    const retry = this.action.retry;
    return retry !== undefined && !this.done && this.replayable && !this.stream.faultInjected && this.retriesDone < retry.policy.attempts;
  }

  private reserveRetry(): boolean {
    if (!this.canRetry()) return false;
    if (!this.cluster.tryReserveRetry()) {
      this.stream.runtime.stats.inc('upstream_rq_retry_overflow');
      return false;
    }
    return true;
  }

  private retriableStatus(status: number, headers: IncomingHttpHeaders): boolean {
    const retry = this.action.retry;
    if (!retry || !this.canRetry()) return false;
    const on = retry.on;
    if (on.has('5xx') && status >= 500) return true;
    if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
    if (on.has('retriable-4xx') && status === 409) return true;
    if (on.has('retriable-status-codes') && retry.statusCodes.has(status)) return true;
    const grpc = headers['grpc-status'];
    if (grpc !== undefined) {
      const cond = GRPC_RETRY_ON[String(grpc)];
      if (cond && on.has(cond)) return true;
    }
    return false;
  }

  /** Envoy's RetryStateImpl::wouldRetryFromReset. */
  private retriableFailure(failure: UpstreamFailure): boolean {
    const on = this.action.retry?.on;
    if (!on) return false;
    if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return true;
    if (failure === 'connect-failure') return on.has('connect-failure') || on.has('reset-before-request');
    if (failure === 'refused') return on.has('refused-stream') || on.has('connect-failure');
    return false;
  }

  /** Envoy's jittered exponential backoff: uniform in [0, (2^n - 1) * base], capped at max (10 x base). */
  private scheduleRetry(): void {
    if (this.done) return;
    const s = this.stream;
    const policy = this.action.retry!.policy;
    this.retriesDone++;
    s.runtime.stats.inc('upstream_rq_retry');
    const base = policy.backoffBaseMs;
    const max = policy.backoffMaxMs ?? base * 10;
    const ceiling = Math.min(max, (2 ** this.retriesDone - 1) * base);
    const delay = Math.floor(s.runtime.random.next() * ceiling);
    this.attempt = undefined;
    if (delay <= 0) queueMicrotask(() => this.attemptOnce());
    else this.backoffTimer = s.runtime.clock.setTimeout(() => { this.backoffTimer = undefined; this.attemptOnce(); }, delay);
  }

  // === websocket ===

  /**
   * The upstream switched protocols (101) for an upgrade request (Envoy's upgrade_configs):
   * the 101 goes to the client, and the two sockets are spliced, with the bytes each side sent
   * early passed on first. Only now does the downstream connection stop being HTTP: any other
   * answer was an ordinary response (onHeaders), and the connection went on parsing requests.
   * Either side closing or failing, or the stream idle timeout, tears down both.
   */
  onUpgrade(attempt: Attempt, status: number, headers: IncomingHttpHeaders, upstream: Duplex): void {
    upstream.on('error', () => upstream.destroy());
    const s = this.stream;
    if (attempt !== this.attempt || this.done || !(s.res instanceof H1Response) || s.res.headersSent) {
      upstream.destroy();
      attempt.release({ status, failure: 'cancelled' });
      return;
    }
    s.upstreamMs ??= s.runtime.clock.monotonic() - s.startMono;
    attempt.clearTimer();
    attempt.committed = true;
    this.done = true;
    this.clearTimers();
    const out = this.downstreamHeaders(attempt, headers);
    // The two hop-by-hop fields a 101 needs (RFC 9110 §7.8, §15.2.2).
    out['connection'] = 'upgrade';
    out['upgrade'] = joinValue(headers['upgrade'] as HeaderBag[string] | undefined) ?? s.upgrade ?? '';
    s.status = status;
    let switched: { socket: Socket; head: Buffer };
    try {
      s.res.writeHead(status, out);
      switched = s.res.switchProtocols();
    } catch (err) {
      s.runtime.logger.debug('upstream upgrade head rejected', { error: (err as Error).message });
      upstream.destroy();
      attempt.release({ status, failure: 'reset' });
      this.done = false;
      this.finishWith({ status: 502, flag: ResponseFlag.UpstreamProtocolError, details: 'upstream_response_invalid', body: 'upstream sent an invalid response' });
      return;
    }
    const { socket: downstream, head: early } = switched;
    let closed = false;
    const teardown = () => {
      if (closed) return;
      closed = true;
      attempt.release({ status });
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

  private finishWith(r: Parameters<HttpStream['localReply']>[0], retriesExhausted = false): void {
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

  // === mirrors ===

  /**
   * Fire-and-forget copies (Envoy's shadow policy): Host gets `-shadow` appended to the host
   * name, the response is dropped, failures are ignored. Only replayable bodies are mirrored.
   */
  private mirror(): void {
    const s = this.stream;
    const rt = s.runtime;
    for (const m of this.action.mirrors) {
      if (m.percentage <= 0 || (m.percentage < 100 && rt.random.next() * 100 >= m.percentage)) continue;
      const cluster = rt.clusterManager.get(m.cluster);
      if (!cluster) { rt.stats.inc('mirror_no_cluster'); continue; }
      const picked = cluster.acquire({ hash: this.hash });
      if (!picked.ok) { rt.stats.inc('mirror_no_endpoint'); continue; }
      rt.stats.inc('mirror_requests');
      const headers: HeaderBag = { ...s.headers, host: shadowHost(this.authority) };
      delete headers['x-envoy-attempt-count'];
      const limit = this.action.timeoutMs || 60_000;
      picked.lease.dispatcher.dispatch(
        { path: this.path, method: s.method as Dispatcher.HttpMethod, headers: headers as IncomingHttpHeaders, proxyHeaderLines: s.proxyHeaderLines, body: this.body as Buffer | null, headersTimeout: limit, bodyTimeout: limit },
        new MirrorHandler(picked.lease),
      );
    }
  }
}

// === the dispatch handlers ===

type CancelReason = 'per-try-timeout' | 'global-timeout' | 'downstream' | 'protocol';

/** One upstream try; the undici dispatch handler of the request (new handler API). */
export class Attempt implements Dispatcher.DispatchHandler {
  controller?: Dispatcher.DispatchController;
  started = false;
  committed = false;
  discarding = false;
  status?: number;
  cancelReason?: CancelReason;
  timer?: TimerHandle;
  /** When this try was handed to the pool (monotonic ms). */
  readonly startMono: number;
  private released = false;
  private ended = false;

  constructor(
    private readonly router: Router,
    private readonly lease: UpstreamLease,
    private readonly isRetry: boolean,
  ) {
    this.startMono = router.stream.runtime.clock.monotonic();
  }

  /** Aborts the try now, or as soon as undici starts it (a queued request has no controller yet). */
  cancel(reason: CancelReason): void {
    if (this.ended || this.cancelReason) return;
    this.cancelReason = reason;
    this.clearTimer();
    this.controller?.abort(new Error(`request cancelled: ${reason}`));
  }

  clearTimer(): void {
    if (this.timer) {
      this.router.stream.runtime.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  resume = (): void => {
    this.controller?.resume();
  };

  release(outcome: UpstreamOutcome): void {
    this.ended = true;
    this.clearTimer();
    if (this.released) return;
    this.released = true;
    this.lease.release(outcome);
    if (this.isRetry) this.router.cluster.releaseRetry();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.started = true;
    if (this.cancelReason) controller.abort(new Error(`request cancelled: ${this.cancelReason}`));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.controller = controller;
    this.status = statusCode;
    this.router.onHeaders(this, statusCode, headers);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.controller = controller;
    this.status = statusCode;
    this.ended = true;
    this.router.onUpgrade(this, statusCode, headers, socket);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.router.onData(this, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.ended = true;
    // undici 7's HTTP/2 client hands its trailers over as an object, which the handler
    // adapter's parseHeaders (made for raw arrays) turns into {}; the raw value still holds them.
    const raw = controller?.rawTrailers;
    if (raw && !Array.isArray(raw) && typeof raw === 'object' && Object.keys(trailers).length === 0) {
      trailers = raw as IncomingHttpHeaders;
    }
    this.router.onEnd(this, trailers);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.ended = true;
    this.router.onError(this, err);
  }
}

class MirrorHandler implements Dispatcher.DispatchHandler {
  private status?: number;
  private done = false;

  constructor(private readonly lease: UpstreamLease) {}

  onRequestStart(): void {}

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    this.finish({ status: this.status });
  }

  onResponseError(): void {
    this.finish(this.status !== undefined ? { status: this.status, failure: 'reset' } : { failure: 'connect-failure' });
  }

  private finish(outcome: UpstreamOutcome): void {
    if (this.done) return;
    this.done = true;
    this.lease.release(outcome);
  }
}

// === helpers ===

/** The local reply for a cluster that gave no endpoint: overflow (UO), waiting for TLS credentials, or none healthy. */
function replyForRefusal(refusal: { flag: 'UH' | 'UO'; detail: string }): LocalReply {
  if (refusal.flag === 'UO') return Replies.overflow;
  return refusal.detail === 'cluster_warming' ? Replies.clusterWarming : Replies.noHealthyUpstream;
}

function classify(attempt: Attempt, err: Error): UpstreamFailure {
  if (attempt.cancelReason === 'per-try-timeout' || attempt.cancelReason === 'global-timeout') return 'timeout';
  const text = `${(err as { code?: string }).code ?? ''} ${err.message}`;
  if (/REFUSED_STREAM/i.test(text)) return 'refused';
  // undici calls onRequestStart once the request is on a connected socket; before it, the
  // connection itself failed.
  if (!attempt.started) return 'connect-failure';
  return 'reset';
}

function hasBody(s: HttpStream): boolean {
  const req = s.req;
  if (s.h2) return !(req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders;
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Chooses by a point in [0, 1): the destination whose cumulative interval holds point x total. */
export function chooseDestination(w: CompiledWeighted, point: number): WeightedCluster {
  const d = w.destinations;
  if (d.length === 1) return d[0];
  const x = point * w.total;
  for (let i = 0; i < d.length; i++) if (x < w.cumulative[i]) return d[i];
  // point rounding at the top end: the last destination with a weight.
  for (let i = d.length - 1; i >= 0; i--) if (d[i].weight > 0) return d[i];
  return d[d.length - 1];
}

/** A request hash mapped to [0, 1): the sticky canary position of this user. */
function stickyPoint(hash: number): number {
  return (hash % 1_000_003) / 1_000_003;
}

/** Adds a Set-Cookie field beside any the upstream sent (Envoy adds, never replaces). */
function addSetCookieHeader(out: HeaderBag, cookie: string): void {
  const present = out['set-cookie'];
  out['set-cookie'] = present === undefined ? [cookie] : Array.isArray(present) ? [...present, cookie] : [present, cookie];
}

/** `reviews:9080` -> `reviews-shadow:9080` (Envoy appends the suffix to the host, before the port). */
export function shadowHost(authority: string): string {
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && !authority.endsWith(']') && /^\d+$/.test(authority.slice(colon + 1))) {
    return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  }
  return `${authority}-shadow`;
}
