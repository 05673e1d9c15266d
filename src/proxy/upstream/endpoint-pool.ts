/**
 * One connection pool per (cluster, endpoint): the connection pool of Envoy's cluster manager.
 * HTTP/1.1 endpoints, plaintext or TLS, get sinew's own client (./http1: raw sockets, strict
 * RFC 9112 framing, no per-request promises), the hot path of nearly every mesh hop; HTTP/2
 * endpoints get an undici Pool, loaded only when a cluster first needs one (undici alone is
 * ~25 MB of a proxy's memory and ~40 us of CPU per request over raw sockets, measured with
 * `npm run bench -- proxy`). Both connect through the cluster's transport socket
 * (../transport/transport-socket.ts: plaintext, TLS or Istio mutual TLS), sinew's client by
 * its connect hook and undici by its `connect` function. The cluster's ConnectionPool
 * settings map onto them:
 *
 * | Istio / Envoy                     | http1 pool                  | undici                                   |
 * |-----------------------------------|-----------------------------|------------------------------------------|
 * | connectTimeout                    | connectTimeoutMs            | connect.timeout                          |
 * | maxConnections                    | connections (per endpoint; HTTP/2 default 1; the cluster-wide limit is the cluster's circuit breaker) | connections |
 * | idleTimeout                       | idleTimeoutMs               | keepAliveTimeout and keepAliveMaxTimeout |
 * | maxRequestsPerConnection          | maxRequestsPerConnection    | maxRequestsPerClient (N - 1, see below), pipelining 0 for 1 |
 * | maxConnectionDuration             | maxConnectionDurationMs     | clientTtl (checked when the pool next dispatches) |
 * | tcpKeepalive.time                 | tcpKeepalive.initialDelayMs | connect.keepAliveInitialDelay (Node exposes no probe count or interval) |
 * | HTTP/2 upstream                   | -                           | allowH2, useH2c for plaintext, pipelining = streams per connection |
 * | tls (SIMPLE/MUTUAL/ISTIO_MUTUAL)  | transport (connect hook)    | connect: the transport's connect, then its peer check |
 *
 * Pools are keyed by address, protocol and every setting above, so an update that changes
 * nothing keeps the pool (and its warm connections) and one that changes a setting replaces it.
 */
import { H2ResponseBuffer } from './h2-response-buffer.js';
import { createRequire } from 'node:module';
import type net from 'node:net';
import type { Dispatcher, Pool } from 'undici';
import type { Address, Cluster, Secret } from '../../api/proxy-config.js';
import { addFieldLines } from '../../core/header-lines.js';
import { MESH_CONNECTION_IDLE_TIMEOUT_MS, upstreamTransport, type UpstreamTransport } from '../transport/transport-socket.js';
import { connectionInfoOf, type ConnectionInfo } from '../transport/connection-info.js';
import { Http1Pool, type Http1PoolOptions } from './http1/pool.js';
import type { EndpointPool, UpstreamDispatchOptions } from './types.js';

/**
 * HTTP/2 streams per upstream connection. Envoy keeps one HTTP/2 connection per host (per
 * worker) and multiplexes on it; undici opens a new connection for every request that
 * arrives while the first is still connecting, so an http2 pool is capped at maxConnections
 * (default 1) and carries up to this many streams on each (the server's SETTINGS may lower it).
 */
const H2_STREAMS_PER_CONNECTION = 1000;

export interface PoolSpec {
  /** Identity of the settings (not the address): equal specs may share warm connections. */
  settingsKey: string;
  /** Set for HTTP/1.1 clusters: the settings of sinew's own client. */
  http1?: Http1PoolOptions;
  /** Otherwise: the settings of an undici Pool (HTTP/2). */
  options: Pool.Options;
  secure: boolean;
  /**
   * Why no connection can be made yet: a TLS secret the cluster names was not pushed. Like a
   * cluster Envoy keeps warming until its SDS secret arrives, the cluster stays in the config
   * but answers every request 503 UH, while the rest of the config applies.
   */
  unavailable?: string;
  /**
   * The cluster's `autoMtls`: the spec of the endpoints a sidecar fronts (`tlsMode: istio`),
   * whose connections are Istio mutual TLS while the others' follow this spec.
   */
  mesh?: PoolSpec;
  /** The TLS transport its connections use (absent: plaintext), for health checks. */
  transport?: UpstreamTransport;
}

/** The spec an endpoint connects with: the mesh one for sidecar-backed endpoints of an auto mTLS cluster. */
export function endpointSpec(spec: PoolSpec, endpoint: { tlsMode?: 'istio' }): PoolSpec {
  return spec.mesh !== undefined && endpoint.tlsMode === 'istio' ? spec.mesh : spec;
}

/** Builds the pool options for a cluster once per update (Fastify/undici: compose once). */
export function poolSpec(cluster: Cluster, secrets: ReadonlyMap<string, Secret>): PoolSpec {
  const spec = transportPoolSpec(cluster, secrets);
  if (cluster.autoMtls !== undefined) spec.mesh = transportPoolSpec({ ...cluster, tls: cluster.autoMtls }, secrets);
  return spec;
}

function transportPoolSpec(cluster: Cluster, secrets: ReadonlyMap<string, Secret>): PoolSpec {
  const cp = cluster.connectionPool ?? {};
  const h2 = cluster.protocol === 'http2' || cp.h2UpgradePolicy === 'UPGRADE';
  const connectTimeoutMs = cluster.connectTimeoutMs > 0 ? cluster.connectTimeoutMs : 10_000;
  // A TCP cluster's TLS offers Istio's TCP ALPN ids (tcp-proxy.ts connects through it).
  const transport = upstreamTransport(cluster.tls, secrets, cluster.protocol === 'tcp' ? 'tcp' : h2 ? 'http2' : 'http1');
  if ('unavailable' in transport) {
    const unavailable = transport.unavailable;
    return { settingsKey: JSON.stringify({ unavailable }), options: {}, secure: true, unavailable };
  }
  if (!h2) {
    const http1: Http1PoolOptions = { connectTimeoutMs };
    if (cp.maxConnections !== undefined && cp.maxConnections > 0) http1.connections = cp.maxConnections;
    if (cp.tcpKeepalive) http1.tcpKeepalive = cp.tcpKeepalive.timeMs !== undefined ? { initialDelayMs: cp.tcpKeepalive.timeMs } : {};
    if (cp.idleTimeoutMs !== undefined && cp.idleTimeoutMs > 0) http1.idleTimeoutMs = cp.idleTimeoutMs;
    // To another sidecar, Envoy's idle timeout rather than undici's 4 s (the server's
    // `keep-alive: timeout` still lowers it).
    else if (cluster.tls?.mode === 'ISTIO_MUTUAL') http1.idleTimeoutMs = MESH_CONNECTION_IDLE_TIMEOUT_MS;
    if (cp.maxRequestsPerConnection !== undefined && cp.maxRequestsPerConnection > 0) http1.maxRequestsPerConnection = cp.maxRequestsPerConnection;
    if (cp.maxConnectionDurationMs !== undefined && cp.maxConnectionDurationMs > 0) http1.maxConnectionDurationMs = cp.maxConnectionDurationMs;
    const settingsKey = JSON.stringify({ p: cluster.protocol, http1, t: transport.key });
    if (transport.secure) http1.transport = transport;
    return { settingsKey, http1, options: {}, secure: transport.secure, ...(transport.secure ? { transport } : {}) };
  }
  // HTTP/2: an undici Pool.
  const connect: Record<string, unknown> = { timeout: connectTimeoutMs };
  if (cp.tcpKeepalive) {
    connect.keepAlive = true;
    if (cp.tcpKeepalive.timeMs !== undefined) connect.keepAliveInitialDelay = cp.tcpKeepalive.timeMs;
  }
  const options: Pool.Options = { allowH2: true, pipelining: H2_STREAMS_PER_CONNECTION, maxConcurrentStreams: H2_STREAMS_PER_CONNECTION };
  if (!transport.secure) connect.useH2c = true;
  if (cp.maxConnections !== undefined && cp.maxConnections > 0) options.connections = cp.maxConnections;
  else options.connections = 1;
  if (cp.idleTimeoutMs !== undefined && cp.idleTimeoutMs > 0) {
    options.keepAliveTimeout = cp.idleTimeoutMs;
    options.keepAliveMaxTimeout = cp.idleTimeoutMs;
  }
  if (cp.maxRequestsPerConnection !== undefined && cp.maxRequestsPerConnection > 0) {
    // undici closes a connection when the request about to go out is past the limit, so it
    // serves maxRequestsPerClient + 1; Envoy's max_requests_per_connection serves exactly N.
    options.maxRequestsPerClient = Math.max(1, cp.maxRequestsPerConnection - 1);
  }
  if (cp.maxConnectionDurationMs !== undefined && cp.maxConnectionDurationMs > 0) {
    (options as Pool.Options & { clientTtl?: number }).clientTtl = cp.maxConnectionDurationMs;
  }
  const settingsKey = JSON.stringify({ p: cluster.protocol, h2, connect, options, t: transport.key });
  options.connect = transport.secure ? undiciConnector(transport, connect) : (connect as Pool.Options['connect']);
  return { settingsKey, options, secure: transport.secure, ...(transport.secure ? { transport } : {}) };
}

/**
 * undici's connect hook over a TLS transport socket: the connection is handed over once the
 * handshake is done and the peer's certificate passed. undici picks HTTP/2 by the ALPN the
 * transport negotiated.
 */
function undiciConnector(transport: UpstreamTransport, settings: Record<string, unknown>): Pool.Options['connect'] {
  const timeoutMs = settings.timeout as number;
  return ((opts: { hostname: string; port: string }, callback: (err: Error | null, socket: net.Socket | null) => void) => {
    const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const socket = transport.connect(host, Number(opts.port), { noDelay: true, keepAlive: settings.keepAlive === true, keepAliveInitialDelay: settings.keepAliveInitialDelay as number | undefined });
    let settled = false;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('error', settle);
      if (err) {
        socket.destroy();
        callback(err, null);
      } else callback(null, socket);
    };
    const timer = setTimeout(() => settle(Object.assign(new Error(`connect timeout after ${timeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), timeoutMs);
    socket.once(transport.readyEvent, () => settle(transport.verifyPeer(socket) ?? null));
    socket.on('error', settle);
    return socket;
  }) as unknown as Pool.Options['connect'];
}

export function createPool(address: Address, spec: PoolSpec): EndpointPool {
  if (spec.http1) return new Http1Pool(address, spec.http1);
  const host = address.host.includes(':') && !address.host.startsWith('[') ? `[${address.host}]` : address.host;
  const url = `${spec.secure ? 'https' : 'http'}://${host}:${address.port}`;
  if (!spec.secure) return new UndiciEndpointPool(new (undici().Pool)(url, spec.options), spec.options.allowH2 === true);
  // undici hands requests no connection, so the pool keeps what its TLS connections established
  // (each is to this endpoint, which has one identity) for the requests it carries.
  const connect = spec.options.connect as unknown as (opts: unknown, callback: (err: Error | null, socket: net.Socket | null) => void) => net.Socket;
  let pool: UndiciEndpointPool | undefined = undefined;
  const remembering = ((opts: unknown, callback: (err: Error | null, socket: net.Socket | null) => void) =>
    connect(opts, (err, socket) => {
      if (socket && pool) pool.connection = connectionInfoOf(socket);
      callback(err, socket);
    })) as unknown as Pool.Options['connect'];
  pool = new UndiciEndpointPool(new (undici().Pool)(url, { ...spec.options, connect: remembering }), spec.options.allowH2 === true, true);
  return pool;
}

/** An undici Pool as an EndpointPool: the proxy's own header lines become entries of `headers`. */
class UndiciEndpointPool implements EndpointPool {
  /**
   * What this pool's latest TLS connection established (the upstream's SPIFFE ID, this proxy's
   * own): given to each request's onRequestStart as sinew's HTTP/1.1 client gives its own.
   */
  connection: ConnectionInfo | undefined;

  constructor(
    private readonly pool: Pool,
    /** HTTP/2: responses pass through H2ResponseBuffer (h2-response-buffer.ts says why). */
    private readonly h2: boolean,
    /** Its connections are TLS, whose info it keeps (`connection`). */
    private readonly remembers = false,
  ) {}

  get closed(): boolean {
    return this.pool.closed;
  }

  get destroyed(): boolean {
    return this.pool.destroyed;
  }

  dispatch(options: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const { proxyHeaderLines, ...rest } = options;
    if (proxyHeaderLines) rest.headers = addFieldLines({ ...(rest.headers as Record<string, unknown>) }, proxyHeaderLines) as Dispatcher.DispatchOptions['headers'];
    // TLS pools only: the connection a request starts on is known once it starts (undici may connect for it).
    const inner = this.remembers ? new WithConnection(handler, this) : handler;
    return this.pool.dispatch(rest, this.h2 ? new H2ResponseBuffer(inner) : inner);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  destroy(err?: Error | null): Promise<void> {
    return this.pool.destroy(err ?? null);
  }
}

/** Passes a request's events on, adding the connection's info to onRequestStart's context. */
class WithConnection implements Dispatcher.DispatchHandler {
  constructor(
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly pool: { readonly connection: ConnectionInfo | undefined },
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    const connection = this.pool.connection;
    this.handler.onRequestStart?.(controller, connection ? { ...(context as object), connection } : context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>, socket: import('node:stream').Duplex): void {
    this.handler.onRequestUpgrade?.(controller, statusCode, headers as never, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void {
    this.handler.onResponseStart?.(controller, statusCode, headers as never, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[]>): void {
    this.handler.onResponseEnd?.(controller, trailers as never);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.handler.onResponseError?.(controller, error);
  }
}

let undiciModule: typeof import('undici') | undefined;

/** undici, loaded the first time an HTTP/2 cluster needs a pool (synchronously: pools are made on the request path). */
function undici(): typeof import('undici') {
  return (undiciModule ??= createRequire(import.meta.url)('undici') as typeof import('undici'));
}
