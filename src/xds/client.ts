/**
 * The push client: a proxy's side of the push protocol (protocol.ts).
 *
 * It connects to the control plane, sends HELLO with its node and the version it serves,
 * and applies every pushed config through the injected `apply`. A config that applies is
 * ACKed and becomes the last good one; one that throws is NACKed with the error message and
 * the proxy keeps serving its last good config, as linkerd2-proxy and Envoy do with a
 * rejected update (STYLE.md 10). Pushes that arrive while one is being applied are merged:
 * only the newest is applied next.
 *
 * A delta (protocol.ts) is applied to the config the proxy holds, the newest it has
 * received, to rebuild the whole config, which is then applied, ACKed or NACKed like a
 * push. Deltas that arrive during an apply are folded in order onto that held config, so
 * merging still applies only the newest. A delta whose base is not the held version, or
 * whose result does not hash to its version, is not guessed at: the client asks for the
 * whole config (`resync`) and ignores deltas until it comes.
 *
 * When the control plane is away the proxy keeps serving and reconnects with jittered
 * exponential backoff (initial 100 ms, factor 2, capped at 5 s); on reconnect the HELLO
 * names the version it holds, so a server with the same content sends nothing and one with
 * newer content pushes it (resync). A keepalive ping detects a silently dead connection.
 *
 * The same connection carries the proxy's certificate requests (`requestCertificate`): a CSR
 * goes up once the HELLO is sent, and the answer names it by id. The control plane signs for
 * the node the HELLO's credential proved, so the proxy needs no second credential.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { ProxyConfig, ProxyNode } from '../api/proxy-config.js';
import { systemClock } from '../core/clock.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { deepFreeze } from '../core/freeze.js';
import { silentLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import { systemRandom } from '../core/random.js';
import type { Random } from '../core/random.js';
import { FrameConnection } from './connection.js';
import type { CloseInfo } from './connection.js';
import { contentHash } from './content.js';
import { applyDelta } from './delta.js';
import { DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION, XdsError, XdsErrorCode, parseServerMessage, parseVersion } from './protocol.js';
import type { CertificateMessage, ClientMessage, DeltaMessage, HelloMessage, PushMessage, ServerMessage } from './protocol.js';

// === public types ===

/** Applies a config atomically (all or nothing); throwing rejects it and NACKs. */
export type ApplyConfig = (config: ProxyConfig) => void | Promise<void>;

export interface BackoffPolicy {
  /** First delay (100 ms). */
  initialMs: number;
  /** Growth per failed attempt (2). */
  factor: number;
  /** Cap (5 s). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({ initialMs: 100, factor: 2, maxMs: 5_000 });

export interface PushClientOptions {
  host: string;
  port: number;
  node: ProxyNode;
  /**
   * The push credential the proxy's runner got for this node from the control plane, sent in
   * HELLO; a control plane that checks credentials refuses a proxy without a valid one. A
   * function is asked at every connect: a pod's service-account token is renewed by kubelet
   * in its file while the proxy runs.
   */
  credential?: string | (() => string | undefined);
  apply: ApplyConfig;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  backoff?: Partial<BackoffPolicy>;
  /** Ping after this much time (15 s); 0 turns keepalive off. */
  keepaliveMs?: number;
  /** Give up on a connection silent for keepaliveMs + this (10 s). */
  keepaliveTimeoutMs?: number;
  /** Give up on a TCP connect after this long (10 s). */
  connectTimeoutMs?: number;
  maxFrameBytes?: number;
  /** A config the proxy already serves (e.g. restored from disk), reported in HELLO. */
  initial?: { config: ProxyConfig; version: string };
}

export type PushClientState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

export interface PushClientEvents {
  /** A pushed config was applied; it is now the last good one. */
  config: [config: ProxyConfig, version: string];
  connected: [];
  disconnected: [info: CloseInfo];
  /** A pushed config was rejected; the proxy still serves `serving`. */
  nack: [version: string, reason: string, serving: string | undefined];
  /** A reconnect is scheduled after `delayMs`. */
  backoff: [delayMs: number, attempt: number];
}

/**
 * The delay before reconnect attempt `attempt` (0-based): exponential, capped, then "equal
 * jitter" — uniformly in [d/2, d) — so a fleet of proxies that lost the control plane at the
 * same moment do not all return at the same moment, yet none retries in a tight loop.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: Random): number {
  const exp = policy.initialMs * Math.pow(policy.factor, attempt);
  const capped = Math.min(policy.maxMs, Number.isFinite(exp) ? exp : policy.maxMs);
  return capped / 2 + random.next() * (capped / 2);
}

/** How long a certificate request waits for a connection and an answer (Istio's CA client: 10 s per attempt, then retries). */
export const DEFAULT_CERTIFICATE_TIMEOUT_MS = 30_000;

/** Longest NACK reason sent; a huge error message must not make a huge frame. */
const MAX_REASON_CHARS = 4096;

// === client ===

interface ReceivedPush {
  message: PushMessage | DeltaMessage;
  conn: FrameConnection<ServerMessage, ClientMessage>;
}

/** A proxy's connection to the control plane. Call `start()`, then `close()` when done. */
export class PushClient extends EventEmitter<PushClientEvents> {
  private readonly options: PushClientOptions;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly backoff: BackoffPolicy;
  private readonly keepaliveMs: number;
  private readonly keepaliveTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private currentState: PushClientState = 'idle';
  private conn: FrameConnection<ServerMessage, ClientMessage> | undefined;
  private lastGood: ProxyConfig | undefined;
  private lastGoodVersion: string | undefined;
  private attempt = 0;
  private retryTimer: TimerHandle | undefined;
  private connectTimer: TimerHandle | undefined;
  private keepaliveTimer: TimerHandle | undefined;
  private lastHeard = 0;
  private pingId = 0;
  /** Pushes and deltas received and not yet folded into `held`, oldest first. */
  private received: ReceivedPush[] = [];
  /**
   * The newest config received, applied or not (a NACKed one too), and its version: what
   * the server builds the next delta on. Frozen before use; not what the proxy serves.
   */
  private held: { config: ProxyConfig; version: string } | undefined;
  /** A resync was asked for on this connection: deltas are ignored until a whole push. */
  private awaitingWhole = false;
  private applying = false;
  private closedPromise: Promise<void> | undefined;
  private certificateRequestId = 0;
  /** Certificate requests sent and not answered yet, by id. */
  private readonly certificateRequests = new Map<number, { conn?: FrameConnection<ServerMessage, ClientMessage>; settle: (message: CertificateMessage | Error) => void }>();

  constructor(options: PushClientOptions) {
    super();
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.logger = options.logger ?? silentLogger;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.keepaliveMs = options.keepaliveMs ?? 15_000;
    this.keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    if (options.initial) {
      this.lastGood = deepFreeze(options.initial.config);
      this.lastGoodVersion = options.initial.version;
      this.held = { config: this.lastGood, version: this.lastGoodVersion };
    }
  }

  /** The last config applied successfully (what the proxy serves), if any. */
  get config(): ProxyConfig | undefined {
    return this.lastGood;
  }

  /** The version of `config`. */
  get version(): string | undefined {
    return this.lastGoodVersion;
  }

  get state(): PushClientState {
    return this.currentState;
  }

  /** Starts connecting; reconnects on its own until `close()`. */
  start(): void {
    if (this.currentState !== 'idle') return;
    this.connect();
  }

  /** Stops reconnecting and closes the connection; resolves once the socket is closed. */
  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.currentState = 'closed';
    this.clearTimers();
    this.received = [];
    for (const request of [...this.certificateRequests.values()]) request.settle(new XdsError(XdsErrorCode.NotConnected, 'the push client was closed before the certificate request was answered'));
    const conn = this.conn;
    this.conn = undefined;
    this.closedPromise = new Promise<void>((resolve) => {
      if (!conn || conn.socket.destroyed) return resolve();
      conn.socket.once('close', () => resolve());
      // Still connecting: nobody to tell, just drop the attempt.
      if (conn.socket.connecting) conn.destroy(XdsErrorCode.ProxyShutdown, 'proxy shutting down');
      else conn.close(XdsErrorCode.ProxyShutdown, 'proxy shutting down');
    });
    return this.closedPromise;
  }

  /**
   * Asks the control plane to sign a workload certificate on `csrPem` (PKCS#10, PEM). Waits for
   * the connection when there is none yet, and rejects with an XdsError when the control plane
   * refuses (CertificateRefused, with its reason) or does not answer within `timeoutMs`
   * (CertificateUnanswered, also when the connection is lost first). The caller retries.
   */
  requestCertificate(csrPem: string, timeoutMs = DEFAULT_CERTIFICATE_TIMEOUT_MS): Promise<{ certificateChainPem: string }> {
    if (this.currentState === 'closed') return Promise.reject(new XdsError(XdsErrorCode.NotConnected, 'the push client is closed'));
    return new Promise((resolve, reject) => {
      const id = ++this.certificateRequestId;
      let done = false;
      const finish = (outcome: CertificateMessage | Error) => {
        if (done) return;
        done = true;
        this.clock.clearTimeout(timer);
        this.off('connected', send);
        this.certificateRequests.delete(id);
        if (outcome instanceof Error) return reject(outcome);
        if (outcome.error) return reject(new XdsError(XdsErrorCode.CertificateRefused, `the control plane refused the certificate request: ${outcome.error.code}: ${outcome.error.message}`));
        resolve({ certificateChainPem: outcome.certificateChainPem ?? '' });
      };
      const timer = this.clock
        .setTimeout(() => finish(new XdsError(XdsErrorCode.CertificateUnanswered, `no answer to the certificate request within ${timeoutMs} ms${this.currentState === 'connected' ? '' : ' (not connected to the control plane)'}`)), timeoutMs)
        .unref();
      const request: { conn?: FrameConnection<ServerMessage, ClientMessage>; settle: typeof finish } = { settle: finish };
      this.certificateRequests.set(id, request);
      const send = () => {
        const conn = this.conn;
        if (done || !conn || !conn.open || this.currentState !== 'connected') return;
        this.off('connected', send);
        request.conn = conn;
        conn.send({ type: 'csr', id, csr: csrPem });
      };
      // Sent once HELLO is (the 'connected' event follows it); until then it waits.
      if (this.currentState === 'connected' && this.conn?.open) send();
      else this.on('connected', send);
    });
  }

  // === connecting ===

  private connect(): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'connecting';
    const socket = net.connect({ host: this.options.host, port: this.options.port });
    let established = false;
    const conn: FrameConnection<ServerMessage, ClientMessage> = new FrameConnection<ServerMessage, ClientMessage>({
      socket,
      parse: parseServerMessage,
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      clock: this.clock,
      onMessage: (message) => this.onMessage(conn, message),
      onClose: (info) => this.onClose(conn, info, established),
    });
    this.conn = conn;
    this.connectTimer = this.clock
      .setTimeout(() => {
        if (!established) conn.destroy('ETIMEDOUT', `connect timed out after ${this.connectTimeoutMs} ms`);
      }, this.connectTimeoutMs)
      .unref();
    socket.once('connect', () => {
      established = true;
      this.clearTimer('connectTimer');
      socket.setKeepAlive(true, 30_000);
      // The backoff starts over only once the control plane answers (onMessage): one that
      // accepts connections and closes them at once must not be retried in a tight loop.
      this.currentState = 'connected';
      this.lastHeard = this.clock.monotonic();
      // HELLO names the last good version, so that is what the server will build on.
      this.held = this.lastGood && this.lastGoodVersion !== undefined ? { config: this.lastGood, version: this.lastGoodVersion } : undefined;
      this.awaitingWhole = false;
      const hello: HelloMessage = { type: 'hello', protocol: PROTOCOL_VERSION, node: this.options.node };
      if (this.lastGoodVersion !== undefined) hello.version = this.lastGoodVersion;
      const credential = typeof this.options.credential === 'function' ? this.options.credential() : this.options.credential;
      if (credential !== undefined) hello.credential = credential;
      try {
        conn.send(hello);
      } catch (err) {
        // Only a node too large for a frame gets here; retrying will not help, but crashing is worse.
        conn.destroy(XdsErrorCode.FrameTooLarge, (err as Error).message);
        return;
      }
      this.armKeepalive();
      this.logger.info('connected to control plane', { host: this.options.host, port: this.options.port, version: this.lastGoodVersion });
      this.emit('connected');
    });
  }

  private onClose(conn: FrameConnection<ServerMessage, ClientMessage>, info: CloseInfo, established: boolean): void {
    this.received = this.received.filter((r) => r.conn !== conn);
    for (const request of [...this.certificateRequests.values()]) {
      if (request.conn === conn) request.settle(new XdsError(XdsErrorCode.CertificateUnanswered, `the connection to the control plane closed before the certificate request was answered (${info.code}: ${info.reason})`));
    }
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.clearTimers();
    if (this.currentState === 'closed') return;
    if (info.initiator === 'peer' && info.code === XdsErrorCode.Unauthenticated) {
      // Retrying will not help until someone gives the proxy a valid credential; say so loudly,
      // and keep trying (slowly, at the backoff's cap) in case the control plane was replaced.
      this.logger.error('the control plane refused this proxy: its push credential is missing or not valid for this node; serving the last good config', { node: this.options.node.id, reason: info.reason });
      this.emit('disconnected', info);
    } else if (established) {
      this.logger.warn('lost the control plane; serving the last good config', { version: this.lastGoodVersion, ...info });
      this.emit('disconnected', info);
    } else {
      this.logger.debug('connect to control plane failed', { ...info });
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempt, this.backoff, this.random);
    this.attempt++;
    this.currentState = 'backoff';
    this.emit('backoff', delay, this.attempt);
    // Not unref'd: a started client is live work until close(), like a listening server;
    // while the control plane is away this timer is all that keeps the proxy trying.
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  // Ping every keepaliveMs; a connection silent for keepaliveMs + keepaliveTimeoutMs is
  // dead (e.g. the control plane's host vanished without a FIN), so drop it and reconnect.
  private armKeepalive(): void {
    if (this.keepaliveMs <= 0) return;
    this.keepaliveTimer = this.clock
      .setTimeout(() => {
        this.keepaliveTimer = undefined;
        const conn = this.conn;
        if (!conn || !conn.open) return;
        const silent = this.clock.monotonic() - this.lastHeard;
        if (silent >= this.keepaliveMs + this.keepaliveTimeoutMs) {
          conn.destroy(XdsErrorCode.PeerTimeout, `no reply from the control plane for ${silent} ms`);
          return;
        }
        conn.send({ type: 'ping', id: ++this.pingId });
        this.armKeepalive();
      }, this.keepaliveMs)
      .unref();
  }

  private clearTimer(name: 'retryTimer' | 'connectTimer' | 'keepaliveTimer'): void {
    const timer = this[name];
    if (timer) this.clock.clearTimeout(timer);
    this[name] = undefined;
  }

  private clearTimers(): void {
    this.clearTimer('retryTimer');
    this.clearTimer('connectTimer');
    this.clearTimer('keepaliveTimer');
  }

  // === messages ===

  private onMessage(conn: FrameConnection<ServerMessage, ClientMessage>, message: ServerMessage): void {
    this.lastHeard = this.clock.monotonic();
    this.attempt = 0;
    switch (message.type) {
      case 'push':
      case 'delta':
        this.received.push({ message, conn });
        if (!this.applying) void this.drain();
        return;
      case 'certificate':
        this.certificateRequests.get(message.id)?.settle(message);
        return;
      case 'ping':
        conn.send({ type: 'pong', id: message.id });
        return;
      case 'pong':
      case 'close':
        return;
    }
  }

  /**
   * Folds what was received into the held config, in order, then applies the result: one
   * apply at a time, newest only, answered on the connection it came from.
   */
  private async drain(): Promise<void> {
    this.applying = true;
    try {
      while (this.received.length) {
        const target = this.fold();
        if (!target) continue;
        const { message, conn, config } = target;
        let error: unknown;
        let ok = false;
        try {
          await this.options.apply(config);
          ok = true;
          this.lastGood = config;
          this.lastGoodVersion = message.version;
        } catch (err) {
          error = err;
        }
        if (this.currentState === 'closed') return;
        if (ok) {
          conn.send({ type: 'ack', version: message.version, nonce: message.nonce });
          this.emit('config', this.lastGood!, message.version);
          continue;
        }
        const reason = describe(error).slice(0, MAX_REASON_CHARS);
        conn.send({ type: 'nack', version: this.lastGoodVersion ?? '', nonce: message.nonce, reason });
        this.logger.warn('rejected pushed config; serving the last good one', { version: message.version, serving: this.lastGoodVersion, reason });
        this.emit('nack', message.version, reason, this.lastGoodVersion);
      }
    } finally {
      this.applying = false;
    }
  }

  /**
   * Takes everything received so far into `held` and returns the newest config to apply, if
   * any. A delta that does not fit asks for a resync (once, until the whole config comes).
   */
  private fold(): (ReceivedPush & { config: ProxyConfig }) | undefined {
    const batch = this.received;
    this.received = [];
    let target: (ReceivedPush & { config: ProxyConfig }) | undefined;
    for (const { message, conn } of batch) {
      if (message.type === 'push') {
        this.awaitingWhole = false;
        this.held = { config: message.config, version: message.version };
        target = { message, conn, config: message.config };
        continue;
      }
      if (this.awaitingWhole) continue;
      try {
        const config = this.rebuild(message);
        this.held = { config, version: message.version };
        target = { message, conn, config };
      } catch (err) {
        this.awaitingWhole = true;
        const reason = describe(err).slice(0, MAX_REASON_CHARS);
        this.logger.warn('cannot use a delta; asking for the whole config', { version: message.version, base: message.base, reason });
        conn.send({ type: 'resync', nonce: message.nonce, reason });
      }
    }
    if (target) target.config = deepFreeze(target.config);
    return target;
  }

  /** The whole config a delta makes of the held one; throws XdsError (DeltaMismatch) when it does not fit. */
  private rebuild(message: DeltaMessage): ProxyConfig {
    const held = this.held;
    if (held?.version !== message.base) {
      throw new XdsError(XdsErrorCode.DeltaMismatch, `delta ${message.version} is based on ${message.base}, but the proxy holds ${held?.version ?? 'nothing'}`);
    }
    const base = deepFreeze(held.config);
    const config = deepFreeze({ ...applyDelta(base, message.changes), version: message.version });
    // Only digests are kept beside the items (keepJson false): a proxy holds its config once.
    const expected = parseVersion(message.version)?.hash;
    const actual = contentHash({ own: config }, { keepJson: false });
    if (actual !== expected) {
      throw new XdsError(XdsErrorCode.DeltaMismatch, `delta ${message.version} applied to ${message.base} gives content ${actual}, not ${expected ?? 'a hashed version'}`);
    }
    return config;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && code !== '' ? `${code}: ${err.message}` : err.message || err.name;
  }
  return String(err);
}
