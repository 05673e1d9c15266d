/**
 * The push server: the control plane's side of the push protocol (protocol.ts).
 *
 * Each proxy connects and sends HELLO with its node; the server builds that proxy's config
 * with the injected `ConfigSource` and pushes it at once (as istiod pushes on every new xDS
 * stream), unless the proxy already holds that content. After that, changes arrive through
 * `requestPush(reason, affected?)`. Like Istio's pilot (`PILOT_DEBOUNCE_AFTER` 100 ms,
 * `PILOT_DEBOUNCE_MAX` 10 s), requests are debounced: a push happens once no request has
 * come for `debounceMs`, or `debounceMaxMs` after the first one, and all requests in between
 * merge into one push per proxy. For each affected proxy the server rebuilds the config,
 * hashes its content, and sends it only when the hash differs from what that proxy was last
 * sent, so proxies whose config did not change get nothing.
 *
 * What it sends is a delta (protocol.ts): only the resources that changed since the version
 * last sent to that proxy. The whole config goes out on a new connection, on a proxy's
 * resync request, after a NACK, and to protocol 1 proxies. A source that returns a
 * `ComposedConfig` (own part + shared part) lets the server diff and serialise the shared
 * part once per class of proxies (delta.ts) and write the same bytes to each of them.
 *
 * Per proxy the server tracks the version sent, the version acknowledged and the last NACK;
 * `status()` reports SYNCED (acked == sent), NACKED (the latest push was rejected) or STALE
 * (a push is unanswered), which is what `istioctl proxy-status` shows for istiod. A NACKed
 * version is not sent again until the content changes, as pilot does.
 *
 * Two choices differ from istiod on purpose: a reconnecting proxy that names a version whose
 * content hash equals what the server would send gets no push (istiod always pushes on a
 * new stream; with whole-config pushes that is wasted work after a control-plane restart),
 * and status is kept per connection, not per node id, so two proxies misconfigured with one
 * id both stay visible instead of evicting each other.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { ProxyConfig, ProxyNode } from '../api/proxy-config.js';
import { systemClock } from '../core/clock.js';
import { deepFreeze } from '../core/freeze.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { silentLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import { FrameConnection } from './connection.js';
import type { CloseInfo } from './connection.js';
import { contentHash, contentOf, encodeConfig, segmentsBytes } from './content.js';
import type { ComposedConfig, ConfigContent } from './content.js';
import { encodeDelta } from './delta.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  SUPPORTED_PROTOCOLS,
  XdsError,
  XdsErrorCode,
  formatVersion,
  parseClientMessage,
  parseVersion,
} from './protocol.js';
import type { ClientMessage, HelloMessage, ServerMessage } from './protocol.js';

// === public types ===

export { configHash } from './content.js';
export type { ComposedConfig, SharedConfig } from './content.js';

/**
 * Builds one proxy's config; the control plane passes the compiler. May throw (counted as a
 * push error). A `ComposedConfig` names the part the proxy shares with others, which the
 * server then encodes and diffs once for all of them.
 */
export type ConfigSource = (node: ProxyNode) => ProxyConfig | ComposedConfig;

/** Chooses the proxies a change affects. */
export type AffectedPredicate = (node: ProxyNode) => boolean;

export interface PushServerOptions {
  source: ConfigSource;
  clock?: Clock;
  logger?: Logger;
  /** Quiet period before a push (Istio PILOT_DEBOUNCE_AFTER, 100 ms). */
  debounceMs?: number;
  /** Longest a push may be held back by a stream of requests (Istio PILOT_DEBOUNCE_MAX, 10 s). */
  debounceMaxMs?: number;
  maxFrameBytes?: number;
  /** A connection that has not sent HELLO by then is closed. */
  helloTimeoutMs?: number;
  /** A connection silent this long (no frame, not even a ping) is closed; 0 turns it off. */
  idleTimeoutMs?: number;
  /** Proxies pushed per event-loop turn during a batch (100). */
  pushSlice?: number;
}

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED';

/** One connected proxy, as `sinew proxy-status` shows it. Times are `clock.now()` milliseconds. */
export interface ProxyStatus {
  /** Unique per connection: a proxy that reconnects gets a new one. */
  connectionId: string;
  node: ProxyNode;
  /** `host:port` the proxy connects from. */
  peer: string;
  connectedSince: number;
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: number;
  /** Whether the last thing sent was the whole config or a delta, and its frame's size. */
  sentKind?: 'full' | 'delta';
  sentBytes?: number;
  ackedVersion?: string;
  ackedAt?: number;
  lastNack?: { version: string; reason: string; at: number };
  state: SyncState;
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
  /** Gauge: proxies connected and past HELLO. */
  connectedProxies: number;
  /** Gauge: wall time of the last batch (build + send), milliseconds by `clock.monotonic()`. */
  lastPushDurationMs: number;
  /** Gauge: time from send to ACK of the last acknowledged push (Istio pilot_proxy_convergence_time). */
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

// === internals ===

interface ProxyConnection {
  id: string;
  conn: FrameConnection<ClientMessage, ServerMessage>;
  peer: string;
  connectedSince: number;
  node?: ProxyNode;
  /** The protocol version the proxy spoke in HELLO. */
  protocol?: number;
  sentVersion?: string;
  sentHash?: string;
  /** The content of `sentVersion`, when the server has it: the base of the next delta. */
  sent?: ConfigContent;
  /** False when the next push must be whole: after a NACK or a resync, or for a protocol 1 proxy. */
  deltaOk?: boolean;
  sentKind?: 'full' | 'delta';
  sentBytes?: number;
  sentNonce?: string;
  sentAt?: number;
  sentAtMonotonic?: number;
  ackedVersion?: string;
  ackedAt?: number;
  lastNack?: { version: string; reason: string; at: number };
  lastSeen: number;
  helloTimer?: TimerHandle;
  idleTimer?: TimerHandle;
}

interface PendingPush {
  firstAt: number;
  lastAt: number;
  reasons: Map<string, number>;
  /** undefined: every proxy. */
  predicates: AffectedPredicate[] | undefined;
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
    connectedProxies: 0,
    lastPushDurationMs: 0,
    lastConvergenceMs: 0,
  };

  private readonly source: ConfigSource;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly debounceMs: number;
  private readonly debounceMaxMs: number;
  private readonly maxFrameBytes: number;
  private readonly helloTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly server: net.Server;
  private readonly connections = new Map<string, ProxyConnection>();
  private pending: PendingPush | undefined;
  private debounceTimer: TimerHandle | undefined;
  private versionCounter = 0;
  private nonceCounter = 0;
  private connectionCounter = 0;
  private closed = false;
  private running = false;
  private readonly pushSlice: number;

  constructor(options: PushServerOptions) {
    super();
    this.source = options.source;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.debounceMs = options.debounceMs ?? 100;
    this.debounceMaxMs = options.debounceMaxMs ?? 10_000;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.pushSlice = Math.max(1, options.pushSlice ?? 100);
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => this.logger.error('push server error', { error: err.message }));
  }

  // === lifecycle ===

  /** Starts listening; resolves with the bound address (pass port 0 for an ephemeral port). */
  listen(port: number, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.address());
      });
    });
  }

  /** The bound address; throws when not listening. */
  address(): { host: string; port: number } {
    const addr = this.server.address();
    if (!addr || typeof addr === 'string') throw new XdsError(XdsErrorCode.NotConnected, 'push server is not listening');
    return { host: addr.address, port: addr.port };
  }

  /**
   * Stops accepting, tells every proxy the server is shutting down and closes its
   * connection, and resolves once the listening socket is closed. Proxies keep their config
   * and reconnect with backoff.
   */
  close(): Promise<void> {
    this.closed = true;
    if (this.debounceTimer) this.clock.clearTimeout(this.debounceTimer);
    this.debounceTimer = undefined;
    this.pending = undefined;
    const done = new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
    for (const pc of this.connections.values()) pc.conn.close(XdsErrorCode.ServerShutdown, 'push server shutting down');
    return done;
  }

  // === pushing ===

  /**
   * Asks for a push. `affected` limits it to the proxies it returns true for; without it,
   * every proxy is considered. Requests are merged and debounced (see the file comment);
   * proxies whose config is unchanged are skipped either way.
   */
  requestPush(reason: string, affected?: AffectedPredicate): void {
    if (this.closed) return;
    this.metrics.pushRequests++;
    const now = this.clock.monotonic();
    if (!this.pending) {
      this.pending = { firstAt: now, lastAt: now, reasons: new Map(), predicates: [] };
    }
    const pending = this.pending;
    pending.lastAt = now;
    pending.reasons.set(reason, (pending.reasons.get(reason) ?? 0) + 1);
    if (!affected) pending.predicates = undefined;
    else if (pending.predicates) pending.predicates.push(affected);
    if (!this.debounceTimer) this.armDebounce(this.debounceMs);
  }

  /**
   * Starts any pending push now, skipping the rest of the debounce (for tools and benches).
   * The first `pushSlice` proxies are pushed before this returns; the rest follow.
   */
  flush(): void {
    if (this.debounceTimer) this.clock.clearTimeout(this.debounceTimer);
    this.debounceTimer = undefined;
    this.runPending();
  }

  /** Every connected proxy past HELLO, ordered by node id. */
  status(): ProxyStatus[] {
    const out: ProxyStatus[] = [];
    for (const pc of this.connections.values()) if (pc.node) out.push(this.statusOf(pc));
    out.sort((a, b) => (a.node.id < b.node.id ? -1 : a.node.id > b.node.id ? 1 : a.connectionId < b.connectionId ? -1 : 1));
    return out;
  }

  private armDebounce(ms: number): void {
    this.debounceTimer = this.clock.setTimeout(() => this.onDebounceTimer(), ms).unref();
  }

  // A single timer re-armed for the remaining quiet time, as pilot's debounce loop does,
  // instead of resetting a timer on every request.
  private onDebounceTimer(): void {
    this.debounceTimer = undefined;
    const pending = this.pending;
    if (!pending) return;
    const now = this.clock.monotonic();
    const quiet = now - pending.lastAt;
    const held = now - pending.firstAt;
    if (quiet >= this.debounceMs || held >= this.debounceMaxMs) {
      this.runPending();
      return;
    }
    this.armDebounce(Math.min(this.debounceMs - quiet, this.debounceMaxMs - held));
  }

  /**
   * Runs the merged request: builds and sends each affected proxy's config, `pushSlice`
   * proxies at a time, yielding to the event loop between slices so ACKs, pings and the
   * control plane's API are served during a large push (in the spirit of Istio's
   * PILOT_PUSH_THROTTLE, which bounds concurrent pushes at 100). Requests arriving during a
   * run are debounced as usual and start their own run when this one ends.
   */
  private runPending(): void {
    if (this.running) return; // picked up when the current run ends
    const pending = this.pending;
    this.pending = undefined;
    if (!pending || this.closed) return;
    this.running = true;
    const targets = [...this.connections.values()];
    const started = this.clock.monotonic();
    const info: PushRunInfo = { reasons: [...pending.reasons.keys()], affected: 0, pushed: 0, deltas: 0, bytes: 0, unchanged: 0, errors: 0, durationMs: 0 };
    const step = (from: number): void => {
      if (this.closed) {
        this.running = false;
        return;
      }
      const end = Math.min(targets.length, from + this.pushSlice);
      for (let i = from; i < end; i++) {
        const pc = targets[i]!;
        // Skip proxies that left since the run began (or that a newer connection replaced).
        if (!pc.node || !pc.conn.open || !this.connections.has(pc.id)) continue;
        if (pending.predicates && !this.isAffected(pc.node, pending.predicates)) continue;
        info.affected++;
        const result = this.pushTo(pc);
        if (result === 'unchanged') info.unchanged++;
        else if (result === 'error') info.errors++;
        else {
          info.pushed++;
          if (result === 'delta') info.deltas++;
          info.bytes += pc.sentBytes ?? 0;
        }
      }
      if (end < targets.length) {
        setImmediate(step, end);
        return;
      }
      info.durationMs = this.clock.monotonic() - started;
      this.metrics.pushRuns++;
      this.metrics.lastPushDurationMs = info.durationMs;
      this.running = false;
      this.logger.debug('push run', { ...info });
      this.emit('pushRun', info);
      // A debounce that fell due during the run found it busy; give it its turn now.
      if (this.pending && !this.debounceTimer) this.onDebounceTimer();
    };
    step(0);
  }

  private isAffected(node: ProxyNode, predicates: AffectedPredicate[]): boolean {
    for (const predicate of predicates) {
      try {
        if (predicate(node)) return true;
      } catch (err) {
        // Pushing too much is safe, missing a proxy is not.
        this.logger.warn('affected-proxy predicate threw; pushing to be safe', { node: node.id, error: (err as Error).message });
        return true;
      }
    }
    return false;
  }

  /**
   * Builds one proxy's config and, when its content differs from what the proxy was last
   * sent, sends it: as a delta from that content when the proxy can take one, else whole.
   * `whole` forces a whole push even of unchanged content (a resync).
   */
  private pushTo(pc: ProxyConnection, whole = false): 'full' | 'delta' | 'unchanged' | 'error' {
    const node = pc.node!;
    let content: ConfigContent;
    let hash: string;
    try {
      content = contentOf(this.source(node));
      const sent = pc.sent;
      // The same objects as last time: nothing to hash (a class the change did not touch).
      if (!whole && sent && sent.own === content.own && sent.shared === content.shared) {
        this.metrics.skippedUnchanged++;
        return 'unchanged';
      }
      hash = contentHash(content);
    } catch (err) {
      this.pushFailed(node, new XdsError(XdsErrorCode.ConfigSource, `building config for ${node.id} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      return 'error';
    }
    if (!whole && hash === pc.sentHash) {
      // Equal content in new objects: keep these, so the next build is recognised by identity
      // (and the proxy, which holds this content, can take the next change as a delta).
      pc.sent = content;
      this.metrics.skippedUnchanged++;
      return 'unchanged';
    }
    const version = formatVersion(++this.versionCounter, hash);
    const nonce = `n${++this.nonceCounter}`;
    const versionJson = JSON.stringify(version);
    const nonceJson = JSON.stringify(nonce);
    let segments: (string | Buffer)[] | undefined;
    if (!whole && pc.deltaOk && pc.sent && pc.sentVersion !== undefined) {
      try {
        const changes = encodeDelta(pc.sent, content);
        if (changes) segments = [`{"type":"delta","version":${versionJson},"nonce":${nonceJson},"base":${JSON.stringify(pc.sentVersion)},"changes":`, ...changes, '}\n'];
      } catch (err) {
        // A delta is an optimisation: when it cannot be made, the whole config still can.
        this.logger.warn('could not compute a delta; pushing the whole config', { node: node.id, error: (err as Error).message });
      }
    }
    const kind = segments ? 'delta' : 'full';
    // The pushed config carries the push version, so a config dump names what was acked.
    segments ??= [`{"type":"push","version":${versionJson},"nonce":${nonceJson},"config":`, ...encodeConfig(content, version), '}\n'];
    let bytes: number;
    try {
      bytes = this.sendFrame(pc, segments);
    } catch (err) {
      this.pushFailed(node, err as Error);
      return 'error';
    }
    pc.sentVersion = version;
    pc.sentHash = hash;
    pc.sent = content;
    pc.deltaOk = (pc.protocol ?? 1) >= 2;
    pc.sentNonce = nonce;
    pc.sentKind = kind;
    pc.sentBytes = bytes;
    pc.sentAt = this.clock.now();
    pc.sentAtMonotonic = this.clock.monotonic();
    this.metrics.pushes++;
    if (kind === 'delta') this.metrics.deltaPushes++;
    this.metrics.pushBytes += bytes;
    this.emit('push', this.statusOf(pc));
    return kind;
  }

  /**
   * Writes one frame made of segments (the last ends with the newline), with the checks
   * FrameConnection.sendEncoded makes for a frame given whole: dropped once the connection
   * is closing, refused when larger than the peer accepts. Returns the frame's size.
   */
  private sendFrame(pc: ProxyConnection, segments: (string | Buffer)[]): number {
    const bytes = segmentsBytes(segments) - 1; // the newline is not part of the frame
    if (!pc.conn.open) return bytes;
    if (bytes > this.maxFrameBytes) {
      throw new XdsError(XdsErrorCode.FrameTooLarge, `push frame of ${bytes} bytes exceeds the ${this.maxFrameBytes}-byte limit`);
    }
    const socket = pc.conn.socket;
    socket.cork();
    for (const seg of segments) socket.write(seg);
    socket.uncork();
    return bytes;
  }

  private pushFailed(node: ProxyNode, err: Error): void {
    this.metrics.pushErrors++;
    this.logger.warn('push failed; the proxy keeps its previous config', { node: node.id, error: err.message });
    this.emit('pushError', node, err);
  }

  // === connections ===

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    socket.setKeepAlive(true, 30_000);
    const id = `c${++this.connectionCounter}`;
    const pc: ProxyConnection = {
      id,
      peer: `${socket.remoteAddress}:${socket.remotePort}`,
      connectedSince: this.clock.now(),
      lastSeen: this.clock.monotonic(),
      conn: new FrameConnection<ClientMessage, ServerMessage>({
        socket,
        parse: parseClientMessage,
        maxFrameBytes: this.maxFrameBytes,
        clock: this.clock,
        onMessage: (message) => this.onMessage(pc, message),
        onClose: (info) => this.onClose(pc, info),
      }),
    };
    this.connections.set(id, pc);
    pc.helloTimer = this.clock
      .setTimeout(() => {
        if (!pc.node) this.reject(pc, XdsErrorCode.HelloTimeout, `no hello within ${this.helloTimeoutMs} ms`);
      }, this.helloTimeoutMs)
      .unref();
    if (this.idleTimeoutMs > 0) this.armIdle(pc, this.idleTimeoutMs);
  }

  private armIdle(pc: ProxyConnection, ms: number): void {
    pc.idleTimer = this.clock
      .setTimeout(() => {
        const silent = this.clock.monotonic() - pc.lastSeen;
        if (silent >= this.idleTimeoutMs) pc.conn.close(XdsErrorCode.PeerTimeout, `nothing heard for ${silent} ms`);
        else this.armIdle(pc, this.idleTimeoutMs - silent);
      }, ms)
      .unref();
  }

  /** Closes a connection that broke the protocol; onClose counts and logs it. */
  private reject(pc: ProxyConnection, code: XdsErrorCode, reason: string): void {
    pc.conn.close(code, reason);
  }

  private onMessage(pc: ProxyConnection, message: ClientMessage): void {
    pc.lastSeen = this.clock.monotonic();
    switch (message.type) {
      case 'hello':
        this.onHello(pc, message);
        return;
      case 'ping':
        pc.conn.send({ type: 'pong', id: message.id });
        return;
      case 'pong':
        return;
    }
    if (!pc.node) {
      this.reject(pc, XdsErrorCode.UnexpectedMessage, `${message.type} before hello`);
      return;
    }
    if (message.type === 'ack') {
      this.metrics.acks++;
      // Answers to an older push are stale: a newer one is on its way (pilot ignores stale nonces).
      if (message.nonce !== pc.sentNonce) return;
      pc.ackedVersion = message.version;
      pc.ackedAt = this.clock.now();
      if (pc.sentAtMonotonic !== undefined) this.metrics.lastConvergenceMs = this.clock.monotonic() - pc.sentAtMonotonic;
      this.emit('ack', this.statusOf(pc));
    } else if (message.type === 'nack') {
      this.metrics.nacks++;
      if (message.nonce !== pc.sentNonce) return;
      pc.lastNack = { version: pc.sentVersion ?? '', reason: message.reason, at: this.clock.now() };
      // The proxy still holds what it rejected, but a whole push after a NACK leaves no doubt
      // about what the next version is built on.
      pc.deltaOk = false;
      this.logger.warn('proxy rejected config', { node: pc.node.id, version: pc.sentVersion, serving: message.version, reason: message.reason });
      this.emit('nack', this.statusOf(pc));
    } else if (message.type === 'resync') {
      // Answered whatever its nonce: the proxy ignores deltas until a whole config comes, so
      // an unanswered resync would leave it behind for good. It sends one per whole push.
      this.metrics.resyncs++;
      this.logger.info('proxy asked for the whole config', { node: pc.node.id, nonce: message.nonce, reason: message.reason });
      pc.deltaOk = false;
      this.pushTo(pc, true);
    }
  }

  private onHello(pc: ProxyConnection, hello: HelloMessage): void {
    if (pc.node) {
      this.reject(pc, XdsErrorCode.UnexpectedMessage, 'second hello on one connection');
      return;
    }
    if (!SUPPORTED_PROTOCOLS.includes(hello.protocol)) {
      this.reject(pc, XdsErrorCode.ProtocolVersion, `protocol ${hello.protocol} is not supported; this server speaks ${SUPPORTED_PROTOCOLS.join(' and ')}`);
      return;
    }
    pc.protocol = hello.protocol;
    if (pc.helloTimer) this.clock.clearTimeout(pc.helloTimer);
    // Frozen: status() hands the node out, and callers must not change who a proxy is.
    pc.node = deepFreeze(hello.node);
    this.metrics.connectedProxies++;
    // A proxy that held config across a control-plane restart reports its version: keep
    // versions monotonic past it, and treat its content as already sent and acknowledged so
    // an identical config is not pushed again. Its content is not known here until a build
    // hashes the same (pushTo), so until then no delta can be based on it.
    const held = hello.version !== undefined ? parseVersion(hello.version) : undefined;
    if (held) {
      this.versionCounter = Math.max(this.versionCounter, held.counter);
      pc.sentVersion = hello.version;
      pc.sentHash = held.hash;
      pc.ackedVersion = hello.version;
      pc.ackedAt = this.clock.now();
    }
    pc.deltaOk = hello.protocol >= 2;
    this.logger.info('proxy connected', { node: pc.node.id, peer: pc.peer, version: hello.version });
    this.emit('connect', this.statusOf(pc));
    this.pushTo(pc);
  }

  private onClose(pc: ProxyConnection, info: CloseInfo): void {
    this.connections.delete(pc.id);
    if (pc.helloTimer) this.clock.clearTimeout(pc.helloTimer);
    if (pc.idleTimer) this.clock.clearTimeout(pc.idleTimer);
    if (info.initiator === 'peer' && (info.code === XdsErrorCode.MalformedFrame || info.code === XdsErrorCode.FrameTooLarge)) {
      this.logger.warn('proxy closed the connection over a bad frame from us', { node: pc.node?.id, ...info });
    }
    if (info.initiator === 'local' && info.code !== XdsErrorCode.ServerShutdown && info.code !== XdsErrorCode.PeerTimeout) {
      // Malformed frames are closed by the connection itself; count them with the rest here.
      this.metrics.protocolErrors++;
      this.logger.warn('closed push connection', { connection: pc.id, node: pc.node?.id, peer: pc.peer, code: info.code, reason: info.reason });
    }
    if (!pc.node) return;
    this.metrics.connectedProxies--;
    this.logger.info('proxy disconnected', { node: pc.node.id, peer: pc.peer, ...info });
    this.emit('disconnect', this.statusOf(pc), info);
  }

  private statusOf(pc: ProxyConnection): ProxyStatus {
    const status: ProxyStatus = {
      connectionId: pc.id,
      node: pc.node!,
      peer: pc.peer,
      connectedSince: pc.connectedSince,
      state: syncState(pc),
    };
    if (pc.sentVersion !== undefined) status.sentVersion = pc.sentVersion;
    if (pc.sentNonce !== undefined) status.sentNonce = pc.sentNonce;
    if (pc.sentAt !== undefined) status.sentAt = pc.sentAt;
    if (pc.sentKind !== undefined) status.sentKind = pc.sentKind;
    if (pc.sentBytes !== undefined) status.sentBytes = pc.sentBytes;
    if (pc.ackedVersion !== undefined) status.ackedVersion = pc.ackedVersion;
    if (pc.ackedAt !== undefined) status.ackedAt = pc.ackedAt;
    if (pc.lastNack) status.lastNack = { ...pc.lastNack };
    return status;
  }
}

function syncState(pc: ProxyConnection): SyncState {
  if (pc.sentVersion !== undefined && pc.ackedVersion === pc.sentVersion) return 'SYNCED';
  if (pc.lastNack && pc.lastNack.version === pc.sentVersion) return 'NACKED';
  return 'STALE';
}
