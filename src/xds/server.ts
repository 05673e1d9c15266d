/**
 * The push server: the control plane's side of the push protocol (protocol.ts), made of three
 * parts so that another transport (an Envoy ADS stream over gRPC) can reuse the first two:
 *
 *   push-queue.ts       change requests in, debounced and merged batches out
 *   session.ts          per proxy: versions, nonces, what was sent and acknowledged, NACKs
 *   jsonl-transport.ts  today's transport: JSON-lines frames over TCP, with bounded reads
 *
 * and this file, which joins them: it authenticates each HELLO, builds a proxy's config with
 * the injected `ConfigSource` and pushes it at once (as istiod pushes on every new xDS
 * stream), unless the proxy already holds that content. After that, changes arrive through
 * `requestPush(reason, affected?)`; for each proxy a batch affects the server rebuilds the
 * config, and the session decides whether anything is to be sent (content hashes differ) and
 * whether it may go as a delta (only the resources that changed since the version last sent).
 * The whole config goes out on a new connection, on a proxy's resync request, after a NACK,
 * and to protocol 1 proxies. A source that returns a `ComposedConfig` (own part + shared
 * part) lets the server diff and serialise the shared part once per class of proxies
 * (delta.ts) and write the same bytes to each of them.
 *
 * `status()` reports SYNCED (acked == sent), NACKED (the latest push was rejected) or STALE
 * (a push is unanswered) per proxy, which is what `istioctl proxy-status` shows for istiod. A
 * NACKed version is not sent again until the content changes, as pilot does.
 *
 * Two choices differ from istiod on purpose: a reconnecting proxy that names a version whose
 * content hash equals what the server would send gets no push (istiod always pushes on a
 * new stream; with whole-config pushes that is wasted work after a control-plane restart),
 * and status is kept per connection, not per node id, so two proxies misconfigured with one
 * id both stay visible instead of evicting each other.
 *
 * A server given `authenticate` (the control plane always gives one) closes every connection
 * whose HELLO does not carry a valid credential for the node it names, before building
 * anything for it: a proxy gets only its own config.
 */
import { EventEmitter } from 'node:events';
import type { ProxyConfig, ProxyNode } from '../api/proxy-config.js';
import { systemClock } from '../core/clock.js';
import type { Clock } from '../core/clock.js';
import { deepFreeze } from '../core/freeze.js';
import { silentLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import type { CloseInfo } from './connection.js';
import { contentOf } from './content.js';
import type { ComposedConfig, ConfigContent } from './content.js';
import { JsonLinesTransport } from './jsonl-transport.js';
import type { HelloRefusal, PushStream, PushStreamHandler } from './jsonl-transport.js';
import { DEFAULT_MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES, MAX_PROXY_FRAME_BYTES, XdsError, XdsErrorCode } from './protocol.js';
import type { AckMessage, CsrMessage, HelloMessage, NackMessage, ResyncMessage } from './protocol.js';
import { PushQueue } from './push-queue.js';
import type { AffectedPredicate, PushBatch } from './push-queue.js';
import { ProxySession, PushVersions } from './session.js';
import type { ProxyStatus } from './session.js';

// === public types ===

export { configHash } from './content.js';
export type { ComposedConfig, SharedConfig } from './content.js';
export type { AffectedPredicate } from './push-queue.js';
export type { ProxyStatus, SyncState } from './session.js';

/**
 * Builds one proxy's config; the control plane passes the compiler. May throw (counted as a
 * push error). A `ComposedConfig` names the part the proxy shares with others, which the
 * server then encodes and diffs once for all of them.
 */
export type ConfigSource = (node: ProxyNode) => ProxyConfig | ComposedConfig;

/**
 * Checks the credential a proxy presented in HELLO for the node it names: undefined when it
 * may have that node's config, else why not (sent to the proxy as it is closed). May answer
 * later (a Kubernetes TokenReview): the connection waits, and nothing is built for it until then.
 */
export type PushAuthenticator = (node: ProxyNode, credential: string | undefined) => string | undefined | Promise<string | undefined>;

/**
 * Signs a workload certificate for `node` (whose credential the server checked in HELLO) on
 * `csrPem`; the identity comes from the node, never from the CSR. Rejects with an error whose
 * `code` and message go back to the proxy.
 */
export type CertificateIssuer = (node: ProxyNode, csrPem: string) => Promise<{ certificateChainPem: string }>;

/** Certificate requests one proxy may have in flight; more are refused at once (a proxy needs one). */
export const MAX_CERTIFICATE_REQUESTS_IN_FLIGHT = 2;

export interface PushServerOptions {
  source: ConfigSource;
  /** The mesh CA; without it every certificate request is refused. */
  issueCertificate?: CertificateIssuer;
  /** Without it every HELLO is believed (tests, tools); the control plane always passes one. */
  authenticate?: PushAuthenticator;
  clock?: Clock;
  logger?: Logger;
  /** Quiet period before a push (Istio PILOT_DEBOUNCE_AFTER, 100 ms). */
  debounceMs?: number;
  /** Longest a push may be held back by a stream of requests (Istio PILOT_DEBOUNCE_MAX, 10 s). */
  debounceMaxMs?: number;
  /** Largest frame sent to a proxy (what proxies accept). */
  maxFrameBytes?: number;
  /** Largest frame read before HELLO (MAX_HELLO_FRAME_BYTES). */
  maxHelloFrameBytes?: number;
  /** Largest frame read from a proxy past HELLO (MAX_PROXY_FRAME_BYTES). */
  maxProxyFrameBytes?: number;
  /** A connection that has not sent HELLO by then is closed. */
  helloTimeoutMs?: number;
  /** A connection silent this long (no frame, not even a ping) is closed; 0 turns it off. */
  idleTimeoutMs?: number;
  /** Proxies pushed per event-loop turn during a batch (100). */
  pushSlice?: number;
}

/** Counters for telemetry to read; plain numbers, only ever increased (except the gauges). */
export interface PushMetrics {
  /** Configs sent, whole or as deltas. */
  pushes: number;
  /** Of `pushes`, those sent as deltas. */
  deltaPushes: number;
  /** Bytes of every push and delta frame sent. */
  pushBytes: number;
  /** Whole configs sent because a proxy could not use a delta. */
  resyncs: number;
  /** Configs that could not be built or sent (source threw, frame too large). */
  pushErrors: number;
  acks: number;
  nacks: number;
  /** Proxies that were affected but whose config had not changed. */
  skippedUnchanged: number;
  /** `requestPush` calls. */
  pushRequests: number;
  /** Debounced batches run. */
  pushRuns: number;
  /** Connections closed for protocol violations or malformed frames. */
  protocolErrors: number;
  /** HELLOs refused for a missing or wrong credential. */
  unauthenticated: number;
  /** Workload certificates signed for proxies. */
  certificatesIssued: number;
  /** Certificate requests refused (no CA, revoked, a bad CSR, too many at once). */
  certificatesRefused: number;
  /** Gauge: proxies connected and past HELLO. */
  connectedProxies: number;
  /** Gauge: wall time of the last batch (build + send), milliseconds by `clock.monotonic()`. */
  lastPushDurationMs: number;
  /** Gauge: time from sending the last acknowledged push to its ACK (Istio pilot_proxy_convergence_time). */
  lastConvergenceMs: number;
}

/** What one debounced batch did. */
export interface PushRunInfo {
  reasons: string[];
  /** Proxies the batch considered. */
  affected: number;
  pushed: number;
  /** Of `pushed`, those sent as deltas. */
  deltas: number;
  /** Frame bytes sent. */
  bytes: number;
  unchanged: number;
  errors: number;
  durationMs: number;
}

export interface PushServerEvents {
  connect: [status: ProxyStatus];
  disconnect: [status: ProxyStatus, info: CloseInfo];
  push: [status: ProxyStatus];
  ack: [status: ProxyStatus];
  nack: [status: ProxyStatus];
  pushError: [node: ProxyNode, error: Error];
  pushRun: [info: PushRunInfo];
}

/** A proxy past HELLO and the stream it is reached on. */
interface Connected {
  session: ProxySession;
  stream: PushStream;
}

/** The control plane's push endpoint. */
export class PushServer extends EventEmitter<PushServerEvents> {
  readonly metrics: PushMetrics = {
    pushes: 0,
    deltaPushes: 0,
    pushBytes: 0,
    resyncs: 0,
    pushErrors: 0,
    acks: 0,
    nacks: 0,
    skippedUnchanged: 0,
    pushRequests: 0,
    pushRuns: 0,
    protocolErrors: 0,
    unauthenticated: 0,
    certificatesIssued: 0,
    certificatesRefused: 0,
    connectedProxies: 0,
    lastPushDurationMs: 0,
    lastConvergenceMs: 0,
  };

  private readonly source: ConfigSource;
  private readonly authenticate: PushAuthenticator | undefined;
  private readonly issueCertificate: CertificateIssuer | undefined;
  /** Certificate requests being signed, per connection id. */
  private readonly certificatesInFlight = new Map<string, number>();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly pushSlice: number;
  private readonly queue: PushQueue;
  private readonly versions = new PushVersions();
  private readonly transport: JsonLinesTransport;
  /** By connection id. */
  private readonly connected = new Map<string, Connected>();
  private closed = false;

  constructor(options: PushServerOptions) {
    super();
    this.source = options.source;
    this.authenticate = options.authenticate;
    this.issueCertificate = options.issueCertificate;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.pushSlice = Math.max(1, options.pushSlice ?? 100);
    this.queue = new PushQueue({
      clock: this.clock,
      logger: this.logger,
      debounceMs: options.debounceMs ?? 100,
      debounceMaxMs: options.debounceMaxMs ?? 10_000,
      run: (batch, done) => this.run(batch, done),
    });
    const handler: PushStreamHandler = {
      hello: (stream, hello) => this.onHello(stream, hello),
      ack: (session, message) => this.onAck(session, message),
      nack: (session, message) => this.onNack(session, message),
      resync: (session, stream, message) => this.onResync(session, stream, message),
      csr: (session, stream, message) => this.onCsr(session, stream, message),
      closed: (stream, session, info) => this.onClosed(stream, session, info),
    };
    this.transport = new JsonLinesTransport({
      handler,
      clock: this.clock,
      logger: this.logger,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxHelloFrameBytes: options.maxHelloFrameBytes ?? MAX_HELLO_FRAME_BYTES,
      maxProxyFrameBytes: options.maxProxyFrameBytes ?? MAX_PROXY_FRAME_BYTES,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    });
  }

  // === lifecycle ===

  /** Starts listening; resolves with the bound address (pass port 0 for an ephemeral port). */
  listen(port: number, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    return this.transport.listen(port, host);
  }

  /** The bound address; throws when not listening. */
  address(): { host: string; port: number } {
    return this.transport.address();
  }

  /**
   * Stops accepting, tells every proxy the server is shutting down and closes its
   * connection, and resolves once the listening socket is closed. Proxies keep their config
   * and reconnect with backoff.
   */
  close(): Promise<void> {
    this.closed = true;
    this.queue.close();
    return this.transport.close(XdsErrorCode.ServerShutdown, 'push server shutting down');
  }

  // === pushing ===

  /**
   * Asks for a push. `affected` limits it to the proxies it returns true for; without it,
   * every proxy is considered. Requests are merged and debounced (push-queue.ts); proxies
   * whose config is unchanged are skipped either way.
   */
  requestPush(reason: string, affected?: AffectedPredicate): void {
    if (this.closed) return;
    this.metrics.pushRequests++;
    this.queue.request(reason, affected);
  }

  /**
   * Starts any pending push now, skipping the rest of the debounce (for tools and benches).
   * The first `pushSlice` proxies are pushed before this returns; the rest follow.
   */
  flush(): void {
    this.queue.flush();
  }

  /** Every connected proxy past HELLO, ordered by node id. */
  status(): ProxyStatus[] {
    const out: ProxyStatus[] = [];
    for (const { session } of this.connected.values()) out.push(session.status());
    out.sort((a, b) => (a.node.id < b.node.id ? -1 : a.node.id > b.node.id ? 1 : a.connectionId < b.connectionId ? -1 : 1));
    return out;
  }

  /**
   * Runs a batch: builds and sends each affected proxy's config, `pushSlice` proxies at a
   * time, yielding to the event loop between slices so ACKs, pings and the control plane's
   * API are served during a large push (in the spirit of Istio's PILOT_PUSH_THROTTLE, which
   * bounds concurrent pushes at 100).
   */
  private run(batch: PushBatch, done: () => void): void {
    const targets = [...this.connected.values()];
    const started = this.clock.monotonic();
    const info: PushRunInfo = { reasons: batch.reasons, affected: 0, pushed: 0, deltas: 0, bytes: 0, unchanged: 0, errors: 0, durationMs: 0 };
    const step = (from: number): void => {
      if (this.closed) return done();
      const end = Math.min(targets.length, from + this.pushSlice);
      for (let i = from; i < end; i++) {
        const target = targets[i]!;
        // Skip proxies that left since the run began.
        if (!target.stream.open || !this.connected.has(target.stream.id)) continue;
        if (!batch.affects(target.session.node)) continue;
        info.affected++;
        const result = this.pushTo(target);
        if (result === 'unchanged') info.unchanged++;
        else if (result === 'error') info.errors++;
        else {
          info.pushed++;
          if (result === 'delta') info.deltas++;
          info.bytes += target.session.sentBytes ?? 0;
        }
      }
      if (end < targets.length) {
        setImmediate(step, end);
        return;
      }
      info.durationMs = this.clock.monotonic() - started;
      this.metrics.pushRuns++;
      this.metrics.lastPushDurationMs = info.durationMs;
      this.logger.debug('push run', { ...info });
      this.emit('pushRun', info);
      done();
    };
    step(0);
  }

  /**
   * Builds one proxy's config and, when its content differs from what the proxy was last
   * sent, sends it: as a delta from that content when the proxy can take one, else whole.
   * `whole` forces a whole push even of unchanged content (a resync).
   */
  private pushTo({ session, stream }: Connected, whole = false): 'full' | 'delta' | 'unchanged' | 'error' {
    const node = session.node;
    let plan: ReturnType<ProxySession['plan']>;
    try {
      const content: ConfigContent = contentOf(this.source(node));
      plan = session.plan(content, this.versions, whole);
    } catch (err) {
      this.pushFailed(node, new XdsError(XdsErrorCode.ConfigSource, `building config for ${node.id} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      return 'error';
    }
    if (plan === 'unchanged') {
      this.metrics.skippedUnchanged++;
      return 'unchanged';
    }
    let sent: { kind: 'full' | 'delta'; bytes: number };
    try {
      sent = stream.send(plan);
    } catch (err) {
      this.pushFailed(node, err as Error);
      return 'error';
    }
    session.sentPush(plan, sent.kind, sent.bytes, this.clock);
    this.metrics.pushes++;
    if (sent.kind === 'delta') this.metrics.deltaPushes++;
    this.metrics.pushBytes += sent.bytes;
    this.emit('push', session.status());
    return sent.kind;
  }

  private pushFailed(node: ProxyNode, err: Error): void {
    this.metrics.pushErrors++;
    this.logger.warn('push failed; the proxy keeps its previous config', { node: node.id, error: err.message });
    this.emit('pushError', node, err);
  }

  // === what proxies say ===

  private onHello(stream: PushStream, hello: HelloMessage): ProxySession | HelloRefusal | Promise<ProxySession | HelloRefusal> {
    if (!this.authenticate) return this.accept(stream, hello);
    let checked: string | undefined | Promise<string | undefined>;
    try {
      checked = this.authenticate(hello.node, hello.credential);
    } catch (err) {
      checked = `the credential could not be checked: ${(err as Error).message}`;
    }
    if (!(checked instanceof Promise)) return checked === undefined ? this.accept(stream, hello) : this.refuse(stream, hello, checked);
    return checked.then(
      (refused) => (refused === undefined ? this.accept(stream, hello) : this.refuse(stream, hello, refused)),
      (err: Error) => this.refuse(stream, hello, `the credential could not be checked: ${err.message}`),
    );
  }

  private refuse(stream: PushStream, hello: HelloMessage, reason: string): HelloRefusal {
    this.metrics.unauthenticated++;
    this.logger.warn('refused a proxy without a valid credential', { node: hello.node.id, peer: stream.peer, reason });
    return { code: XdsErrorCode.Unauthenticated, reason };
  }

  private accept(stream: PushStream, hello: HelloMessage): ProxySession | HelloRefusal {
    // The proxy may have gone, or the server closed, while its credential was checked.
    if (!stream.open || this.closed) return { code: XdsErrorCode.ServerShutdown, reason: 'closed while the credential was checked' };
    // Frozen: status() hands the node out, and callers must not change who a proxy is.
    const node = deepFreeze(hello.node);
    const held = hello.version !== undefined ? { version: hello.version, versions: this.versions, at: this.clock.now() } : undefined;
    const session = new ProxySession(stream.id, stream.peer, this.clock.now(), node, hello.protocol, held);
    const connected = { session, stream };
    this.connected.set(stream.id, connected);
    this.metrics.connectedProxies++;
    this.logger.info('proxy connected', { node: node.id, peer: stream.peer, version: hello.version });
    this.emit('connect', session.status());
    this.pushTo(connected);
    return session;
  }

  private onAck(session: ProxySession, message: AckMessage): void {
    this.metrics.acks++;
    if (!session.acked(message.version, message.nonce, this.clock.now())) return;
    if (session.sentAtMonotonic !== undefined) this.metrics.lastConvergenceMs = this.clock.monotonic() - session.sentAtMonotonic;
    this.emit('ack', session.status());
  }

  private onNack(session: ProxySession, message: NackMessage): void {
    this.metrics.nacks++;
    if (!session.nacked(message.nonce, message.reason, this.clock.now())) return;
    this.logger.warn('proxy rejected config', { node: session.node.id, version: session.sentVersion, serving: message.version, reason: message.reason });
    this.emit('nack', session.status());
  }

  private onResync(session: ProxySession, stream: PushStream, message: ResyncMessage): void {
    // Answered whatever its nonce: the proxy ignores deltas until a whole config comes, so
    // an unanswered resync would leave it behind for good. It sends one per whole push.
    this.metrics.resyncs++;
    this.logger.info('proxy asked for the whole config', { node: session.node.id, nonce: message.nonce, reason: message.reason });
    session.resyncRequested();
    this.pushTo({ session, stream }, true);
  }

  private onCsr(session: ProxySession, stream: PushStream, message: CsrMessage): void {
    const node = session.node;
    const refuse = (code: string, reason: string) => {
      this.metrics.certificatesRefused++;
      this.logger.warn('refused a certificate request', { node: node.id, peer: stream.peer, code, reason });
      stream.sendCertificate({ type: 'certificate', id: message.id, error: { code, message: reason } });
    };
    if (!this.issueCertificate) return refuse(XdsErrorCode.CertificateRefused, 'this control plane has no certificate authority');
    const inFlight = this.certificatesInFlight.get(stream.id) ?? 0;
    if (inFlight >= MAX_CERTIFICATE_REQUESTS_IN_FLIGHT) return refuse(XdsErrorCode.CertificateRefused, `at most ${MAX_CERTIFICATE_REQUESTS_IN_FLIGHT} certificate requests at once per proxy`);
    this.certificatesInFlight.set(stream.id, inFlight + 1);
    this.issueCertificate(node, message.csr).then(
      ({ certificateChainPem }) => {
        this.metrics.certificatesIssued++;
        stream.sendCertificate({ type: 'certificate', id: message.id, certificateChainPem });
      },
      (err: Error & { code?: unknown }) => refuse(typeof err?.code === 'string' ? err.code : XdsErrorCode.CertificateRefused, err?.message ?? String(err)),
    ).finally(() => {
      const left = (this.certificatesInFlight.get(stream.id) ?? 1) - 1;
      if (left > 0 && stream.open) this.certificatesInFlight.set(stream.id, left);
      else this.certificatesInFlight.delete(stream.id);
    });
  }

  private onClosed(stream: PushStream, session: ProxySession | undefined, info: CloseInfo): void {
    this.connected.delete(stream.id);
    this.certificatesInFlight.delete(stream.id);
    if (info.initiator === 'peer' && (info.code === XdsErrorCode.MalformedFrame || info.code === XdsErrorCode.FrameTooLarge)) {
      this.logger.warn('proxy closed the connection over a bad frame from us', { node: session?.node.id, ...info });
    }
    const expected = info.code === XdsErrorCode.ServerShutdown || info.code === XdsErrorCode.PeerTimeout || info.code === XdsErrorCode.Unauthenticated;
    if (info.initiator === 'local' && !expected) {
      // Malformed frames are closed by the connection itself; count them with the rest here.
      this.metrics.protocolErrors++;
      this.logger.warn('closed push connection', { connection: stream.id, node: session?.node.id, peer: stream.peer, code: info.code, reason: info.reason });
    }
    if (!session) return;
    this.metrics.connectedProxies--;
    this.logger.info('proxy disconnected', { node: session.node.id, peer: stream.peer, ...info });
    this.emit('disconnect', session.status(), info);
  }
}
