/**
 * One connection pool per (cluster, endpoint): the connection pool of Envoy's cluster manager.
 * Plaintext HTTP/1.1 endpoints get sinew's own client (./http1: raw sockets, strict RFC 9112
 * framing, no per-request promises), the hot path of nearly every mesh hop; HTTP/2 and TLS
 * endpoints get an undici Pool, loaded only when a cluster first needs one (undici alone is
 * ~25 MB of a proxy's memory and ~40 us of CPU per request over raw sockets, measured with
 * `npm run bench -- proxy`). The cluster's ConnectionPool settings map onto them:
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
 * | tls (SIMPLE/MUTUAL/ISTIO_MUTUAL)  | -                           | connect: ca, cert, key, servername, checkServerIdentity for subjectAltNames |
 *
 * Pools are keyed by address, protocol and every setting above, so an update that changes
 * nothing keeps the pool (and its warm connections) and one that changes a setting replaces it.
 */
import { H2ResponseBuffer } from './h2-response-buffer.js';
import { createRequire } from 'node:module';
import type tls from 'node:tls';
import type { Dispatcher, Pool } from 'undici';
import type { Address, Cluster, Secret } from '../../api/proxy-config.js';
import { SinewError } from '../../core/errors.js';
import { addFieldLines } from '../../core/header-lines.js';
import { hashString } from './hash.js';
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
  /** Set for plaintext HTTP/1.1 clusters: the settings of sinew's own client. */
  http1?: Http1PoolOptions;
  /** Otherwise: the settings of an undici Pool (HTTP/2, TLS). */
  options: Pool.Options;
  secure: boolean;
  /**
   * Why no connection can be made yet: a TLS secret the cluster names was not pushed. Like a
   * cluster Envoy keeps warming until its SDS secret arrives, the cluster stays in the config
   * but answers every request 503 UH, while the rest of the config applies.
   */
  unavailable?: string;
}

/** Builds the pool options for a cluster once per update (Fastify/undici: compose once). */
export function poolSpec(cluster: Cluster, secrets: ReadonlyMap<string, Secret>): PoolSpec {
  const cp = cluster.connectionPool ?? {};
  const h2 = cluster.protocol === 'http2' || cp.h2UpgradePolicy === 'UPGRADE';
  const connectTimeoutMs = cluster.connectTimeoutMs > 0 ? cluster.connectTimeoutMs : 10_000;
  if (!h2 && !cluster.tls) {
    const http1: Http1PoolOptions = { connectTimeoutMs };
    if (cp.maxConnections !== undefined && cp.maxConnections > 0) http1.connections = cp.maxConnections;
    if (cp.tcpKeepalive) http1.tcpKeepalive = cp.tcpKeepalive.timeMs !== undefined ? { initialDelayMs: cp.tcpKeepalive.timeMs } : {};
    if (cp.idleTimeoutMs !== undefined && cp.idleTimeoutMs > 0) http1.idleTimeoutMs = cp.idleTimeoutMs;
    if (cp.maxRequestsPerConnection !== undefined && cp.maxRequestsPerConnection > 0) http1.maxRequestsPerConnection = cp.maxRequestsPerConnection;
    if (cp.maxConnectionDurationMs !== undefined && cp.maxConnectionDurationMs > 0) http1.maxConnectionDurationMs = cp.maxConnectionDurationMs;
    return { settingsKey: JSON.stringify({ p: cluster.protocol, http1 }), http1, options: {}, secure: false };
  }
  // HTTP/2 or TLS: an undici Pool.
  const connect: Record<string, unknown> = { timeout: connectTimeoutMs };
  if (cp.tcpKeepalive) {
    connect.keepAlive = true;
    if (cp.tcpKeepalive.timeMs !== undefined) connect.keepAliveInitialDelay = cp.tcpKeepalive.timeMs;
  }
  const options: Pool.Options = {};
  if (h2) {
    options.allowH2 = true;
    options.pipelining = H2_STREAMS_PER_CONNECTION;
    options.maxConcurrentStreams = H2_STREAMS_PER_CONNECTION;
    if (!cluster.tls) connect.useH2c = true;
  }
  if (cp.maxConnections !== undefined && cp.maxConnections > 0) options.connections = cp.maxConnections;
  else if (h2) options.connections = 1;
  if (cp.idleTimeoutMs !== undefined && cp.idleTimeoutMs > 0) {
    options.keepAliveTimeout = cp.idleTimeoutMs;
    options.keepAliveMaxTimeout = cp.idleTimeoutMs;
  }
  if (cp.maxRequestsPerConnection !== undefined && cp.maxRequestsPerConnection > 0) {
    // undici closes a connection when the request about to go out is past the limit, so it
    // serves maxRequestsPerClient + 1; Envoy's max_requests_per_connection serves exactly N.
    // N = 1 means no reuse at all, which undici spells pipelining 0 (keep-alive off).
    if (cp.maxRequestsPerConnection === 1 && !h2) options.pipelining = 0;
    else options.maxRequestsPerClient = Math.max(1, cp.maxRequestsPerConnection - 1);
  }
  if (cp.maxConnectionDurationMs !== undefined && cp.maxConnectionDurationMs > 0) {
    (options as Pool.Options & { clientTtl?: number }).clientTtl = cp.maxConnectionDurationMs;
  }
  let tlsKey = '';
  if (cluster.tls) {
    const t = cluster.tls;
    const missing: string[] = [];
    const secret = (name: string | undefined): Secret | undefined => {
      if (!name) return undefined;
      const s = secrets.get(name);
      if (!s) missing.push(name);
      return s;
    };
    const ca = secret(t.validationContext)?.trustedCaPem;
    const cert = secret(t.certificate);
    if (ca) connect.ca = ca;
    if (t.mode !== 'SIMPLE' && cert) {
      connect.cert = cert.certificateChainPem;
      connect.key = cert.privateKeyPem;
    }
    if (t.sni) connect.servername = t.sni;
    connect.rejectUnauthorized = !t.insecureSkipVerify;
    const sans = t.subjectAltNames;
    if (sans && sans.length && !t.insecureSkipVerify) {
      // Istio subjectAltNames: the peer certificate must carry one of them (URI SANs for
      // SPIFFE identities, DNS names otherwise) instead of matching the hostname.
      connect.checkServerIdentity = (_host: string, peer: tls.PeerCertificate) => checkSans(peer, sans);
    }
    if (missing.length) {
      const unavailable = `TLS secret${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} not pushed`;
      return { settingsKey: JSON.stringify({ unavailable }), options: {}, secure: true, unavailable };
    }
    tlsKey = `${t.mode}|${t.sni ?? ''}|${t.insecureSkipVerify ? 1 : 0}|${(sans ?? []).join(',')}|${hashString((ca ?? '') + (cert?.certificateChainPem ?? '') + (cert?.privateKeyPem ?? ''))}`;
  }
  options.connect = connect as Pool.Options['connect'];
  const { checkServerIdentity: _ignored, ca: _ca, cert: _cert, key: _key, ...plainConnect } = connect;
  const settingsKey = JSON.stringify({ p: cluster.protocol, h2, connect: plainConnect, options: { ...options, connect: undefined }, tlsKey });
  return { settingsKey, options, secure: cluster.tls !== undefined };
}

export function createPool(address: Address, spec: PoolSpec): EndpointPool {
  if (spec.http1) return new Http1Pool(address, spec.http1);
  const host = address.host.includes(':') && !address.host.startsWith('[') ? `[${address.host}]` : address.host;
  return new UndiciEndpointPool(new (undici().Pool)(`${spec.secure ? 'https' : 'http'}://${host}:${address.port}`, spec.options), spec.options.allowH2 === true);
}

/** An undici Pool as an EndpointPool: the proxy's own header lines become entries of `headers`. */
class UndiciEndpointPool implements EndpointPool {
  constructor(
    private readonly pool: Pool,
    /** HTTP/2: responses pass through H2ResponseBuffer (h2-response-buffer.ts says why). */
    private readonly h2: boolean,
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
    return this.pool.dispatch(rest, this.h2 ? new H2ResponseBuffer(handler) : handler);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  destroy(err?: Error | null): Promise<void> {
    return this.pool.destroy(err ?? null);
  }
}

let undiciModule: typeof import('undici') | undefined;

/** undici, loaded the first time an HTTP/2 or TLS cluster needs a pool (synchronously: pools are made on the request path). */
function undici(): typeof import('undici') {
  return (undiciModule ??= createRequire(import.meta.url)('undici') as typeof import('undici'));
}

function checkSans(peer: tls.PeerCertificate, sans: readonly string[]): Error | undefined {
  const names = (peer.subjectaltname ?? '').split(',').map((s) => s.trim().replace(/^(URI|DNS|IP Address):/, ''));
  if (sans.some((san) => names.includes(san))) return undefined;
  return new SinewError('SNW_ERR_UPSTREAM_SAN_MISMATCH', `upstream certificate SANs [${names.join(', ')}] match none of [${sans.join(', ')}]`);
}

