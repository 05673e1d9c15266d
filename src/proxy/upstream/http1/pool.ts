/**
 * Sinew's HTTP/1.1 connection pool for one endpoint: the undici `dispatch(options, handler)`
 * contract (controller-style handlers) on raw sockets, plaintext or through the cluster's TLS
 * transport socket (the connect hook, ../../transport), without loading undici. It exists for
 * cost: at a fixed 1000 req/s undici's Pool spent 40-60 us more CPU per request than this, and
 * importing it ~25 MB RSS. HTTP/2 endpoints use undici.
 *
 * Envoy's connection-pool semantics: at most `connections` sockets, requests over it wait in
 * FIFO order; the most recently used idle socket is reused first (LIFO keeps few sockets warm
 * and lets the rest idle out); exactly `maxRequestsPerConnection` requests per socket; a socket
 * past `maxConnectionDurationMs` finishes its request and closes. When a connection attempt
 * fails, every request waiting in the pool fails with it (Envoy's purgePendingStreams): they
 * wait for an endpoint that is not answering, and the router may retry them elsewhere.
 */
import type { Dispatcher } from 'undici';
import { SinewError } from '../../../core/errors.js';
import { Connection, type ConnectionOwner, type ConnectionSettings } from './connection.js';
import { Http1Request, QUEUED } from './request.js';
import type { UpstreamDispatchOptions } from '../types.js';
import { PLAINTEXT_UPSTREAM, type UpstreamTransport } from '../../transport/transport-socket.js';

export interface Http1PoolOptions {
  /** Max connections to this endpoint; undefined = unlimited. Requests over it wait in FIFO order in the pool. */
  connections?: number;
  /** Connect failure after this long (0 = no timeout). */
  connectTimeoutMs: number;
  /** tcpKeepalive: socket.setKeepAlive(true, initialDelayMs) when set. */
  tcpKeepalive?: { initialDelayMs?: number };
  /** Close a connection idle this long (default 4000 ms, as undici's keepAliveTimeout). A response's `Keep-Alive: timeout=N` lowers it to N*1000 - 1000 ms, never raises it. */
  idleTimeoutMs?: number;
  /** Envoy max_requests_per_connection: exactly N requests per connection (1 = every request sends `connection: close`). undefined/0 = unlimited. */
  maxRequestsPerConnection?: number;
  /** Envoy max_connection_duration: a connection older than this is not reused (closed once its request finishes). */
  maxConnectionDurationMs?: number;
  /** Monotonic milliseconds for maxConnectionDurationMs (default performance.now); tests inject a clock (STYLE.md 19). */
  now?: () => number;
  /** How connections are made (the connect hook): TLS or Istio mutual TLS; absent: plaintext TCP. */
  transport?: UpstreamTransport;
}

/** undici's keepAliveTimeout default. */
export const DEFAULT_IDLE_TIMEOUT_MS = 4000;

export class Http1Pool implements ConnectionOwner {
  private readonly settings: ConnectionSettings;
  private readonly limit: number;
  /** Every connection not yet closed (connecting, idle or busy). */
  private readonly conns = new Set<Connection>();
  /** Idle connections; the last is the most recently used. */
  private readonly idle: Connection[] = [];
  /** Requests waiting for a connection, FIFO from `head`. */
  private queue: (Http1Request | undefined)[] = [];
  private head = 0;
  private connecting = 0;
  /** Sockets not yet 'close'd, including destroyed ones: close() resolves at 0. */
  private sockets = 0;
  private _closed = false;
  private _destroyed = false;
  private closing: Promise<void> | undefined;
  private resolveClosing: (() => void) | undefined;

  /** Throws SNW_ERR_UPSTREAM_INVALID_POOL_OPTIONS for options no pool can honour. */
  constructor(address: { host: string; port: number }, options: Http1PoolOptions) {
    const problems: string[] = [];
    const positive = (name: string, v: number | undefined, zeroOk: boolean) => {
      if (v !== undefined && !(Number.isFinite(v) && (v > 0 || (zeroOk && v === 0)))) problems.push(`${name} must be a ${zeroOk ? 'non-negative' : 'positive'} number (got ${v})`);
    };
    positive('connectTimeoutMs', options.connectTimeoutMs, true);
    positive('idleTimeoutMs', options.idleTimeoutMs, false);
    positive('maxConnectionDurationMs', options.maxConnectionDurationMs, true);
    positive('maxRequestsPerConnection', options.maxRequestsPerConnection, true);
    positive('tcpKeepalive.initialDelayMs', options.tcpKeepalive?.initialDelayMs, true);
    if (options.connections !== undefined && !(Number.isInteger(options.connections) && options.connections > 0)) problems.push(`connections must be a positive integer (got ${options.connections})`);
    if (problems.length) throw new SinewError('SNW_ERR_UPSTREAM_INVALID_POOL_OPTIONS', `invalid HTTP/1.1 pool for ${address.host}:${address.port}: ${problems.join('; ')}`);
    const host = address.host.startsWith('[') && address.host.endsWith(']') ? address.host.slice(1, -1) : address.host;
    this.settings = Object.freeze({
      host,
      port: address.port,
      key: host.includes(':') ? `[${host}]:${address.port}` : `${host}:${address.port}`,
      connectTimeoutMs: options.connectTimeoutMs ?? 0,
      tcpKeepalive: options.tcpKeepalive !== undefined,
      tcpKeepaliveInitialDelayMs: options.tcpKeepalive?.initialDelayMs ?? 0,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      maxRequests: options.maxRequestsPerConnection ?? 0,
      maxDurationMs: options.maxConnectionDurationMs ?? 0,
      now: options.now ?? (() => performance.now()),
      transport: options.transport ?? PLAINTEXT_UPSTREAM,
    });
    this.limit = options.connections ?? Infinity;
  }

  get closed(): boolean {
    return this._closed;
  }

  get destroyed(): boolean {
    return this._destroyed;
  }

  /** undici PoolStats' fields: sockets connected, idle, requests waiting and running. */
  get stats(): { connected: number; free: number; pending: number; running: number; size: number } {
    let running = 0;
    for (const c of this.conns) if (c.busy) running++;
    const pending = this.queue.length - this.head;
    return { connected: this.conns.size - this.connecting, free: this.idle.length, pending, running, size: pending + running };
  }

  /**
   * Sends a request. The handler's onRequestStart runs once it is on a connected socket (maybe
   * before this returns); a connection that cannot be made fails it before that. Returns false
   * when the request was refused at once (pool closed, invalid request) and the handler already
   * got onResponseError; true otherwise (a request over the connection limit waits in the pool,
   * so there is no 'drain' to wait for).
   */
  dispatch(options: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    let req: Http1Request;
    try {
      if (this._closed) {
        throw this._destroyed
          ? new SinewError('SNW_ERR_UPSTREAM_POOL_DESTROYED', `the connection pool for upstream ${this.settings.key} was destroyed; dispatch to the endpoint's current pool`)
          : new SinewError('SNW_ERR_UPSTREAM_POOL_CLOSED', `the connection pool for upstream ${this.settings.key} is closed; dispatch to the endpoint's current pool`);
      }
      req = new Http1Request(options, handler, this.settings.key);
    } catch (err) {
      refuse(handler, err as Error);
      return false;
    }
    const idle = this.idle;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      if (conn.expired()) {
        conn.destroy(null);
        continue;
      }
      if (!conn.start(req)) this.release(conn);
      return true;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      // A queue that never quite drains: drop the consumed front now and then.
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.queue.push(req);
    this.connect();
    return true;
  }

  /** Graceful: refuses new requests now; running and waiting ones finish; resolves once every socket is closed. */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this._closed = true;
      this.closing = new Promise((resolve) => (this.resolveClosing = resolve));
      for (const conn of this.idle.splice(0)) conn.destroy(null);
      this.settle();
    }
    return this.closing;
  }

  /** Fails every running and waiting request with `err` now and closes every socket. */
  destroy(err?: Error | null): Promise<void> {
    const closing = this.close();
    if (!this._destroyed) {
      this._destroyed = true;
      const reason = err ?? new SinewError('SNW_ERR_UPSTREAM_POOL_DESTROYED', `the connection pool for upstream ${this.settings.key} was destroyed while the request was running`);
      for (const req of this.takeQueue()) req.fail(reason);
      for (const conn of [...this.conns]) conn.destroy(reason);
      this.settle();
    }
    return closing;
  }

  // === connections (ConnectionOwner) ===

  connected(conn: Connection): void {
    this.connecting--;
    this.release(conn);
  }

  /** A free connection takes the oldest waiting request, or waits (LIFO) for the next dispatch. */
  release(conn: Connection): void {
    if (conn.closed) return;
    if (this._destroyed) return conn.destroy(null);
    const queue = this.queue;
    while (this.head < queue.length) {
      const req = queue[this.head]!;
      queue[this.head++] = undefined;
      if (this.head === queue.length) {
        queue.length = 0;
        this.head = 0;
      }
      if (req.state !== QUEUED) continue;
      if (conn.start(req)) return;
      if (conn.closed) return;
    }
    if (this._closed || conn.expired()) {
      conn.destroy(null);
      return;
    }
    conn.goIdle();
    this.idle.push(conn);
  }

  gone(conn: Connection, wasConnecting: boolean, connectError: Error | null): void {
    this.conns.delete(conn);
    if (wasConnecting) this.connecting--;
    const i = this.idle.lastIndexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    if (connectError !== null) for (const req of this.takeQueue()) req.fail(connectError);
    if (!this._destroyed) this.connect();
    this.settle();
  }

  socketClosed(): void {
    this.sockets--;
    this.settle();
  }

  /** Opens connections while requests wait that no connection attempt will serve, up to the limit. */
  private connect(): void {
    while (this.connecting < this.queue.length - this.head && this.conns.size < this.limit) {
      this.connecting++;
      this.sockets++;
      this.conns.add(new Connection(this, this.settings));
    }
  }

  /** Empties the queue first, so that a handler dispatching again from onResponseError is not failed too. */
  private takeQueue(): Http1Request[] {
    const waiting: Http1Request[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const req = this.queue[i]!;
      if (req.state === QUEUED) waiting.push(req);
    }
    this.queue = [];
    this.head = 0;
    return waiting;
  }

  private settle(): void {
    if (this._closed && this.sockets === 0 && this.head === this.queue.length && this.resolveClosing !== undefined) {
      const resolve = this.resolveClosing;
      this.resolveClosing = undefined;
      resolve();
    }
  }
}

/** A request refused before it had a connection: onResponseError with a controller that does nothing. */
function refuse(handler: Dispatcher.DispatchHandler, err: Error): void {
  const controller: Dispatcher.DispatchController = {
    abort() {},
    pause() {},
    resume() {},
    aborted: false,
    paused: false,
    reason: err,
  };
  try {
    handler.onResponseError?.(controller, err);
  } catch {
    // The handler's own failure has nowhere else to go.
  }
}
