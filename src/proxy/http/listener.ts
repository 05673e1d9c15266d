/**
 * HTTP listeners: one port serving HTTP/1.1 and, when `http.http2` is set, HTTP/2 — with prior
 * knowledge (h2c) in plaintext, by ALPN over TLS. Node's `http2.createServer({allowHTTP1})`
 * only negotiates over TLS ALPN, so the listener sniffs the client connection preface
 * (RFC 9113 3.4, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`) on a net.Server and hands the socket to
 * the HTTP/2 or the HTTP/1.1 server. A listener's filter chains (transport/filter-chains.ts)
 * decide the transport socket: where the chains need it, the TLS inspector reads the
 * ClientHello (SNI, ALPN) first, and the chosen chain terminates TLS with its own certificate
 * (transport/transport-socket.ts). HTTP/1.1 connections start on
 * sinew's own codec (h1-server.ts), which hands anything unusual to node's server; an upgrade
 * request node parsed comes back to it (upgrade.ts). Limits: connections per listener and in
 * all (overload.ts), request header size and count (431, over HTTP/1.1 and HTTP/2), header
 * timeout (slowloris), stream idle and request timeouts (stream.ts), HTTP/2 rapid reset and
 * sessions that stop answering (h2-sessions.ts). Malformed requests and smuggling attempts are
 * refused by node's parser (llhttp); the answer is labelled like every other local reply and
 * the connection is closed, with nothing pipelined behind it served.
 */
import http, { type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type http2 from 'node:http2';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { RESPONSE_DETAILS_HEADER, RESPONSE_FLAGS_HEADER } from '../../api/response-flags.js';
import type { ListenerContext, ProxyRuntime } from '../runtime.js';
import { Replies, writeLocalReply, type DownstreamResponse, type LocalReply } from './local-reply.js';
import { HttpStream, replyNotReady, type DownstreamRequest, type DownstreamResponseObject } from './stream.js';
import { H1Connection, H1Request, type H1Limits, type H1ServerHooks } from './h1-server.js';
import { buildListenerChains, listenerChainsKey, selectByFirstBytes, type ListenerChains } from '../transport/filter-chains.js';
import { peekFirstBytes } from '../transport/first-bytes.js';
import { connectionInfoOf } from '../transport/connection-info.js';
import { MESH_CONNECTION_IDLE_TIMEOUT_MS } from '../transport/transport-socket.js';
import { upgradeDisposition } from './upgrade.js';
import { serveConnect, type TunnelHost } from './connect-tunnel.js';
import { closeSession, DEFAULT_DRAIN_TIMEOUT_MS, guardSession, MAX_PROBE_INTERVAL_MS, sessionAborted, sessionOf, sessionQuiet, streamEnded } from './h2-sessions.js';
import { boundAddress, listenOn } from '../local-server.js';
import { limitListenerConnections } from '../overload.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** Envoy's default max_request_headers_kb. */
const DEFAULT_MAX_HEADERS_KB = 60;
/** Envoy's default max_headers_count (common_http_protocol_options), which Istio keeps. */
const DEFAULT_MAX_HEADERS_COUNT = 100;
/** Node's own default for headersTimeout; Envoy has none, but a bound is kinder than none. */
const DEFAULT_HEADERS_TIMEOUT_MS = 60_000;
/** How long an idle HTTP/1.1 keep-alive connection is kept (node's default, told to clients). */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;


/**
 * Node's per-stream header bound for HTTP/2: the configured limit plus as much again (at least
 * 64 KiB) of slack. Node's http2 server enforces SETTINGS_MAX_HEADER_LIST_SIZE by resetting the
 * stream (ENHANCE_YOUR_CALM) before any 'request' event, so a client could never be told why;
 * with this higher bound in node, the listener answers requests between the configured limit
 * and it with a 431 (Replies.h2HeadersTooLarge), labelled like every local reply — what the
 * HTTP/1.1 codec answers. Past this bound the stream is still reset, as Envoy's HTTP/2 codec
 * resets every oversized request.
 */
function h2HardHeaderLimit(limitBytes: number): number {
  return Math.min(limitBytes + Math.max(limitBytes, 64 * 1024), 16 * 1024 * 1024);
}

/**
 * The same for the number of header fields: node resets a stream with more entries than
 * maxHeaderListPairs (pseudo-headers included; node's default 128), so it is set to twice the
 * configured count, and the listener answers a 431 to requests in between.
 */
function h2HardHeaderPairs(limitCount: number): number {
  return Math.max(128, 2 * limitCount + 4);
}

/** Regular (not pseudo-header) fields in a raw header list. */
function headerFieldCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) !== 58) n++;
  return n;
}

/**
 * Size of a request's header list as Envoy counts it against max_request_headers_kb
 * (HeaderMap::byteSize: names and values, pseudo-headers included, no per-field overhead).
 * Node hands header bytes over as latin1, so string length is byte length.
 */
function headerListBytes(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i].length;
  return n;
}

export class HttpListener {
  private readonly server: net.Server;
  private h1!: http.Server;
  private h2?: http2.Http2Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.Http2Session>();
  /** HTTP/1.1 connections served by sinew's own codec (h1-server.ts), not yet handed to node's. */
  private readonly h1Connections = new Set<H1Connection>();
  private h1Limits!: H1Limits;
  /** The same for a caller that proved a mesh identity (a sidecar): kept idle as long as Envoy keeps them. */
  private h1MeshLimits!: H1Limits;
  private readonly h1Hooks: H1ServerHooks = {
    limits: () => this.h1Limits,
    draining: () => this.ctx.draining === true,
    onRequest: (req, res) => this.onRequest(req, res),
    handOver: (socket) => {
      this.runtime.stats.inc('downstream_cx_http1_node_parser');
      this.h1.emit('connection', socket);
    },
    headersTimedOut: (socket) => this.onClientError(Object.assign(new Error('request headers timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket),
    now: () => this.runtime.clock.monotonic(),
  };
  private ctx: ListenerContext;
  private closing?: Promise<void>;
  /** The filter chains for new connections; replaced when the settings or certificates change. */
  private chains!: ListenerChains;
  /** Permissive listeners: the context plaintext requests see (no `tls`, so scheme http). */
  private cleartext?: { of: ListenerContext; ctx: ListenerContext };
  /**
   * Connections whose filter chain names its own route table: the table, by the connection's
   * socket (HTTP/1.1) or HTTP/2 session (the socket a request shows for HTTP/2 is node's proxy of it).
   */
  private readonly chainTables = new WeakMap<object, string>();
  /** The chain table of the HTTP/2 connection being handed to the server (its session starts synchronously). */
  private pendingH2Table: string | undefined;
  /** The contexts of chains with their own route table, by table name (rebuilt with the listener's context). */
  private chainContexts?: { of: ListenerContext; byTable: Map<string, ListenerContext> };
  private maxHeaderBytes = DEFAULT_MAX_HEADERS_KB * 1024;
  private maxHeaderCount = DEFAULT_MAX_HEADERS_COUNT;

  constructor(
    private readonly runtime: ProxyRuntime,
    ctx: ListenerContext,
  ) {
    this.ctx = ctx;
    this.buildServers();
    this.buildTls();
    // allowHalfOpen as node's own http.Server, whose socketOnEnd then decides: like Envoy's
    // HTTP/1 codec it treats a client FIN as the end of the connection (in-flight requests are
    // reset, DC) and closes the socket.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, this.onConnection);
    this.server.on('error', (err) => runtime.logger.error('listener error', { listener: ctx.listener.name, error: err.message }));
    limitListenerConnections(this.server, ctx.listener.maxConnections, runtime.stats);
  }

  /**
   * Serves a connection accepted elsewhere: a transparent-capture port hands over the
   * connections whose original destination this listener serves (proxy/capture.ts).
   */
  accept(socket: net.Socket): void {
    this.server.emit('connection', socket);
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.ctx.listener.address;
    return listenOn(this.server, host, port);
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.server);
  }

  /** Open client connections (for tests and /stats: nothing should leak). */
  connections(): number {
    return this.sockets.size;
  }

  /** Same socket, new settings: limits that live in node's servers get new servers for new connections. */
  update(ctx: ListenerContext): void {
    const before = this.ctx.http;
    const after = ctx.http;
    this.ctx = ctx;
    limitListenerConnections(this.server, ctx.listener.maxConnections);
    if (
      before.maxRequestHeadersKb !== after.maxRequestHeadersKb ||
      before.maxRequestHeadersCount !== after.maxRequestHeadersCount ||
      before.requestHeadersTimeoutMs !== after.requestHeadersTimeoutMs ||
      before.streamIdleTimeoutMs !== after.streamIdleTimeoutMs ||
      Boolean(before.http2) !== Boolean(after.http2)
    ) {
      const oldH1 = this.h1;
      this.buildServers();
      // Connections already on the old servers finish there; close() stops the old server's
      // connection-checking interval and closes its idle keep-alive sockets.
      oldH1.close(() => {});
    }
    this.buildTls();
  }

  /**
   * (Re)builds the filter chains when the listener's chains or the certificates they name
   * changed. Connections already accepted keep the TLS session they negotiated; only new
   * ones use the new certificate (Envoy's SDS rotation). The secrets are those of the config
   * being applied: the proxy sets `runtime.current` before it opens or updates listeners.
   */
  private buildTls(): void {
    // A slow handshake is bounded like slow request headers (transport-socket.ts has the default).
    const secrets = this.runtime.current?.config.secrets;
    const handshakeTimeoutMs = this.ctx.http.requestHeadersTimeoutMs;
    if (this.chains !== undefined && this.chains.key === listenerChainsKey(this.ctx.listener, secrets, handshakeTimeoutMs)) return;
    this.chains = buildListenerChains(this.ctx.listener, secrets, handshakeTimeoutMs, {
      onSecure: this.onSecure,
      onError: (err, chain) => {
        this.runtime.stats.inc('ssl_connection_error');
        this.runtime.logger.debug('TLS handshake failed', { listener: this.ctx.listener.name, chain, error: err.message });
      },
    });
  }

  private buildServers(): void {
    const hcm = this.ctx.http;
    const headersTimeout = hcm.requestHeadersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    const maxHeaderSize = (hcm.maxRequestHeadersKb ?? DEFAULT_MAX_HEADERS_KB) * 1024;
    const maxHeaderCount = hcm.maxRequestHeadersCount ?? DEFAULT_MAX_HEADERS_COUNT;
    this.maxHeaderBytes = maxHeaderSize;
    this.maxHeaderCount = maxHeaderCount;
    const h1 = http.createServer({
      maxHeaderSize,
      headersTimeout,
      // Answered by nodeRequestProblem instead: labelled, and nothing pipelined behind it served.
      requireHostHeader: false,
      requestTimeout: 0,
      // Node only checks header timeouts on this interval; keep it well under the timeout.
      connectionsCheckingInterval: Math.max(20, Math.min(30_000, Math.floor(headersTimeout / 4))),
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    });
    h1.timeout = hcm.streamIdleTimeoutMs ?? 0;
    // Node keeps the first maxHeadersCount fields and drops the rest without a word: one more
    // than the limit lets onNodeRequest see that a request went past it.
    h1.maxHeadersCount = maxHeaderCount + 1;
    h1.on('request', this.onNodeRequest);
    h1.on('upgrade', this.onUpgrade);
    h1.on('connect', this.onConnect);
    h1.on('clientError', this.onClientError);
    // The HTTP/1 server never listens itself (the net.Server in front does), so start node's
    // connection tracking by hand: it is what enforces headersTimeout and closes idle sockets.
    h1.emit('listening');
    this.h1 = h1;
    this.h1Limits = { maxHeaderBytes: maxHeaderSize, maxHeaderCount, headersTimeoutMs: headersTimeout, idleTimeoutMs: h1.timeout, keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS };
    // What the connection is told is what it gets: a stream idle timeout under Envoy's
    // connection idle timeout closes the connection first.
    const meshKeepAliveMs = h1.timeout > 0 ? Math.min(h1.timeout, MESH_CONNECTION_IDLE_TIMEOUT_MS) : MESH_CONNECTION_IDLE_TIMEOUT_MS;
    this.h1MeshLimits = { ...this.h1Limits, keepAliveTimeoutMs: meshKeepAliveMs };
    if (hcm.http2) {
      const h2 = loadHttp2().createServer({
        settings: { maxHeaderListSize: h2HardHeaderLimit(maxHeaderSize) },
        maxHeaderListPairs: h2HardHeaderPairs(maxHeaderCount),
        maxSessionInvalidFrames: 100,
      });
      h2.on('request', this.onRequest);
      h2.on('session', (session: http2.Http2Session) => {
        if (this.pendingH2Table !== undefined) this.chainTables.set(session, this.pendingH2Table);
        this.sessions.add(session);
        session.on('close', () => this.sessions.delete(session));
        session.on('error', () => {});
        guardSession(session, this.runtime.stats, this.drainTimeoutMs);
        if (this.ctx.draining) closeSession(session);
      });
      h2.on('sessionError', () => {});
      // A quiet session must answer a PING; idle long enough, it is closed (h2-sessions.ts).
      h2.setTimeout(Math.min(hcm.streamIdleTimeoutMs || MAX_PROBE_INTERVAL_MS, MAX_PROBE_INTERVAL_MS));
      h2.on('timeout', sessionQuiet);
      this.h2 = h2;
    } else {
      this.h2 = undefined;
    }
  }

  private onConnection = (socket: net.Socket): void => {
    const downstream = this.runtime.downstream;
    if (!downstream.admit()) {
      this.runtime.stats.inc('downstream_global_cx_overflow');
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      downstream.release();
    });
    // A socket with no error listener crashes the process (STYLE.md: what to avoid); node's
    // servers add theirs, this one covers the sniffing window and teardown races.
    socket.on('error', () => {});
    if (this.ctx.draining) {
      socket.destroy();
      return;
    }
    const chains = this.chains;
    if (!chains.inspect) return this.serveChain(chains.chains[0], socket);
    // Envoy's tls_inspector: the ClientHello's server name and ALPN (or its absence: plaintext)
    // choose the filter chain; the bytes read are put back for the chosen transport.
    this.sniff(socket, (seen) => {
      const chain = selectByFirstBytes(chains, seen);
      if (chain === 'need-more') return undefined;
      if (chain === undefined) {
        // Envoy closes a connection no filter chain matches.
        this.runtime.stats.inc('listener_no_filter_chain_match');
        return (s) => s.destroy();
      }
      return (s) => this.serveChain(chain, s);
    });
  };

  /** The chosen chain's transport socket: TLS (then ALPN picks the codec) or plaintext. */
  private serveChain(chain: ListenerChains['chains'][number], socket: net.Socket): void {
    const transport = chain.transport;
    if (transport === undefined) return this.serveCleartext(socket);
    transport.accept(socket);
  }

  /** A TLS handshake completed: ALPN picks the codec (Envoy's codec_type AUTO). */
  private onSecure = (socket: tls.TLSSocket, chain: ListenerChains['chains'][number]): void => {
    // Envoy's listener ssl.handshake: full handshakes are the cost connection reuse saves.
    this.runtime.stats.inc('ssl_handshake');
    socket.on('error', () => {});
    if (this.ctx.draining) {
      socket.destroy();
      return;
    }
    const table = chain.routeConfigName;
    if (socket.alpnProtocol === 'h2') {
      // Validation keeps h2 out of ALPN without http.http2; an update that turned HTTP/2 off
      // can still race a handshake in flight.
      if (!this.h2) return void socket.destroy();
      this.pendingH2Table = table;
      try {
        this.h2.emit('connection', socket);
      } finally {
        this.pendingH2Table = undefined;
      }
      return;
    }
    if (table !== undefined) this.chainTables.set(socket, table);
    this.serveHttp1(socket, connectionInfoOf(socket).peerUriSan !== undefined ? this.h1MeshHooks : this.h1Hooks);
  };

  /** A sidecar's connection: everything as for any client but the keep-alive (h1MeshLimits). */
  private readonly h1MeshHooks: H1ServerHooks = { ...this.h1Hooks, limits: () => this.h1MeshLimits };

  /** HTTP/1.1: sinew's codec first; it hands the connection to node's server when it must. */
  private serveHttp1(socket: net.Socket, hooks: H1ServerHooks = this.h1Hooks): H1Connection {
    const connection = new H1Connection(socket, hooks);
    this.h1Connections.add(connection);
    socket.once('close', () => this.h1Connections.delete(connection));
    return connection;
  }

  /**
   * An upgrade request node's parser handed over with its socket (upgrade.ts): served by
   * sinew's codec from here on, which switches protocols only on the upstream's 101.
   */
  private onUpgrade = (req: IncomingMessage, socket: net.Socket, unread: Buffer): void => {
    if (refusedConnections.has(socket)) {
      socket.destroy();
      return;
    }
    const refusal = this.nodeRequestProblem(req);
    if (refusal) return this.refuseConnection(socket, refusal.status, refusal.details, refusal.flag);
    if (!this.runtime.current) return this.refuseConnection(socket, 503, 'no_config');
    const disposition = upgradeDisposition(req);
    if (!disposition.serve) return this.refuseConnection(socket, disposition.status, disposition.details, disposition.status === 400 ? 'DPE' : undefined);
    const headers: Record<string, string> = {};
    const raw = req.headers;
    for (const name in raw) {
      const value = raw[name];
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const request = new H1Request(req.method ?? 'GET', req.url ?? '/', headers, socket);
    request.upgrade = disposition.upgrade;
    this.serveHttp1(socket).adopt(request, disposition.keepAlive, disposition.bodyLength, unread);
  };

  /**
   * A CONNECT request node's parser handed over (sinew's codec passes every CONNECT to it):
   * a tunnel routed as the mesh routes its destination (connect-tunnel.ts).
   */
  private onConnect = (req: IncomingMessage, socket: net.Socket, head: Buffer): void => {
    if (refusedConnections.has(socket)) {
      socket.destroy();
      return;
    }
    const refusal = this.nodeRequestProblem(req);
    if (refusal) return this.refuseConnection(socket, refusal.status, refusal.details, refusal.flag);
    if (!this.runtime.current || this.ctx.draining) return this.refuseConnection(socket, 503, 'no_config');
    serveConnect(this.runtime, this.ctx, req, socket, head, this.tunnelHost);
  };

  private readonly tunnelHost: TunnelHost = {
    refuse: (socket, reply) => this.refuseConnection(socket, reply.status, reply.details, reply.flag),
    // A tunnel to an HTTP destination carries HTTP/1.1 or, with prior knowledge, HTTP/2 (gRPC
    // clients behind grpc_proxy): served like a connection accepted by this listener.
    serveHttp: (socket) => this.serveCleartext(socket),
  };

  /** A request node's HTTP/1.1 server parsed: what its parser leaves unchecked first. */
  private onNodeRequest = (req: IncomingMessage, res: http.ServerResponse): void => {
    // Node's parser has read requests pipelined behind a refused one and hands them over in
    // the same turn: none of them is served (the connection closes once the refusal is out).
    if (refusedConnections.has(req.socket)) {
      res.destroy();
      return;
    }
    const refusal = this.nodeRequestProblem(req);
    if (refusal === undefined) return this.onRequest(req, res);
    refusedConnections.add(req.socket);
    this.runtime.stats.inc(refusal.status === 431 ? 'downstream_rq_header_overflow' : 'downstream_cx_protocol_error');
    this.runtime.stats.inc('downstream_rq_local_reply_DPE');
    // As Envoy's codec errors: the answer, then the connection closes.
    const ct = req.headers['content-type'];
    writeLocalReply(res as unknown as DownstreamResponse, refusal, typeof ct === 'string' && ct.startsWith('application/grpc'), { connection: 'close' });
  };

  /**
   * What node's parser accepts and Envoy's codec does not: more header fields than
   * max_request_headers_count (431; node would forward the first 2000 and drop the rest), and
   * other than one Host field in an HTTP/1.1 request (RFC 9112 §3.2: a server MUST answer 400;
   * node keeps the first of several, and its own answer to none let pipelined requests on).
   */
  private nodeRequestProblem(req: IncomingMessage): LocalReply | undefined {
    const raw = req.rawHeaders;
    if (raw.length > this.maxHeaderCount * 2) return Replies.tooManyHeaders;
    let hosts = 0;
    for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') hosts++;
    if (hosts > 1) return Replies.duplicateHost;
    return hosts === 0 && req.httpVersionMinor === 1 ? Replies.missingHost : undefined;
  }

  /** Plaintext: HTTP/1.1, or HTTP/2 with prior knowledge when the connection preface says so. */
  private serveCleartext(socket: net.Socket): void {
    const h2 = this.h2;
    if (!h2) {
      this.serveHttp1(socket); // (which resumes a socket a permissive listener paused)
      return;
    }
    this.sniff(socket, (seen) => {
      const n = Math.min(seen.length, PREFACE.length);
      const isPrefix = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isPrefix && seen.length < PREFACE.length) return undefined; // wait for the rest of the preface
      if (!isPrefix) return (s) => this.serveHttp1(s);
      return (s) => {
        // Node's Http2Session reads what is buffered on the socket itself (nodejs/node#35475);
        // resuming here would flow the preface out as 'data' events nobody hears.
        // HTTP/2 has no half-close at the connection level: a FIN ends the session, as in
        // node's own http2 server (whose net.Server does not allow half-open sockets).
        s.allowHalfOpen = false;
        h2.emit('connection', s);
      };
    });
  }

  /**
   * Holds a new connection until its first bytes say which codec serves it (Envoy's listener
   * filters: tls_inspector, http_inspector). `decide` gets everything read so far and returns
   * what to hand the socket to, or undefined to wait for more; the bytes read are put back
   * first. A connection that says too little within the request-headers timeout, or ends
   * while still undecided, is closed.
   */
  private sniff(socket: net.Socket, decide: (seen: Buffer) => ((socket: net.Socket) => void) | undefined): void {
    peekFirstBytes(socket, this.ctx.http.requestHeadersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, decide);
  }

  /**
   * Permissive listeners serve plaintext beside TLS; stream.ts derives the scheme (and
   * x-forwarded-proto) from the connection, and a plaintext request gets a context without `tls`.
   * The context inherits from the listener's own, whose `port` and `draining` keep changing.
   */
  private contextFor(req: DownstreamRequest, session: http2.Http2Session | undefined): ListenerContext {
    const ctx = this.ctx;
    const table = this.chainTables.get(session ?? (req.socket as object));
    if (table !== undefined) return this.chainContext(table);
    if (!ctx.listener.tls?.permissive || (req.socket as Partial<tls.TLSSocket> | null)?.encrypted) return ctx;
    if (this.cleartext?.of !== ctx) {
      const listener = { ...ctx.listener, tls: undefined };
      this.cleartext = { of: ctx, ctx: Object.create(ctx, { listener: { value: listener, enumerable: true } }) as ListenerContext };
    }
    return this.cleartext.ctx;
  }

  /** The context of a chain with its own route table: the listener's, with that table. */
  private chainContext(table: string): ListenerContext {
    const ctx = this.ctx;
    if (this.chainContexts?.of !== ctx) this.chainContexts = { of: ctx, byTable: new Map() };
    let found = this.chainContexts.byTable.get(table);
    if (found === undefined) {
      const http = { ...ctx.http, routeConfigName: table };
      found = Object.create(ctx, { http: { value: http, enumerable: true } }) as ListenerContext;
      this.chainContexts.byTable.set(table, found);
    }
    return found;
  }

  private drainTimeoutMs = (): number => this.ctx.http.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;

  private onRequest = (req: DownstreamRequest, res: DownstreamResponseObject): void => {
    if (req.httpVersionMajor === 2) this.deferH2(req as Http2ServerRequest, res as Http2ServerResponse);
    else this.serve(req, res, undefined);
  };

  /**
   * New HTTP/2 streams start one turn of the event loop after they arrive, all of a turn's
   * together (Envoy's max_requests_per_io_cycle defers the same way): by then nghttp2 has read
   * the rest of what came with them, so a stream the client reset at once (rapid reset) is
   * never started, and counts against its session (h2-sessions.ts).
   */
  private deferH2(req: Http2ServerRequest, res: Http2ServerResponse): void {
    this.h2Waiting.push({ req, res, session: sessionOf(req.stream) });
    if (this.h2Waiting.length === 1) setImmediate(this.startH2);
  }

  private h2Waiting: { req: Http2ServerRequest; res: Http2ServerResponse; session: http2.Http2Session | undefined }[] = [];

  private startH2 = (): void => {
    const waiting = this.h2Waiting;
    this.h2Waiting = [];
    for (const { req, res, session } of waiting) {
      if (!req.stream.destroyed && (session === undefined || !sessionAborted(session))) {
        this.serve(req, res, session);
        continue;
      }
      this.runtime.stats.inc('downstream_rq_reset_before_start');
      if (session !== undefined) streamEnded(session, true);
    }
  };

  private serve(req: DownstreamRequest, res: DownstreamResponseObject, session: http2.Http2Session | undefined): void {
    const snapshot = this.runtime.current;
    if (!snapshot) {
      if (session !== undefined) streamEnded(session, false);
      return replyNotReady(res);
    }
    // HTTP/1.1 header size is enforced by node's parser (onClientError); HTTP/2's here.
    if (req.httpVersionMajor === 2) {
      const raw = (req as Http2ServerRequest).rawHeaders;
      const problem = headerListBytes(raw) > this.maxHeaderBytes ? Replies.h2HeadersTooLarge : headerFieldCount(raw) > this.maxHeaderCount ? Replies.h2TooManyHeaders : undefined;
      if (problem) {
        if (session !== undefined) streamEnded(session, false);
        return this.replyHeadersTooLarge(req, res, problem);
      }
    }
    try {
      const stream = new HttpStream(this.runtime, this.contextFor(req, session), req, res, snapshot);
      stream.h2Session = session;
      stream.run();
    } catch (err) {
      // A bug must cost one request, not the process (and never a catch-all that keeps
      // serving a corrupted state: this only ends the request it happened in).
      this.runtime.stats.inc('downstream_rq_internal_error');
      this.runtime.logger.error('request handling failed', { error: (err as Error).stack ?? String(err) });
      if (session !== undefined) streamEnded(session, false);
      if (!res.headersSent) {
        try {
          const reply = res as DownstreamResponse;
          reply.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', [RESPONSE_DETAILS_HEADER]: 'internal_error' });
          reply.end('internal proxy error\n');
          return;
        } catch {
          // fall through to destroy
        }
      }
      res.destroy();
    }
  };

  private replyHeadersTooLarge(req: DownstreamRequest, res: DownstreamResponseObject, reply: LocalReply): void {
    const stats = this.runtime.stats;
    stats.inc('downstream_rq_header_overflow');
    stats.inc('downstream_rq_local_reply_DPE');
    const ct = req.headers['content-type'];
    writeLocalReply(res as unknown as DownstreamResponse, reply, typeof ct === 'string' && ct.startsWith('application/grpc'));
  }

  /**
   * Node's parser refused the request (malformed, smuggling, too large, too slow). Answer like
   * Envoy's codec errors, labelled DPE, then close: the connection's framing can't be trusted.
   */
  private onClientError = (err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: net.Socket): void => {
    const stats = this.runtime.stats;
    stats.inc('downstream_cx_protocol_error');
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      socket.destroy();
      return;
    }
    let status = 400;
    let details = 'http1.codec_error';
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      details = 'http1.headers_too_large';
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      details = 'request_headers_timeout';
    }
    this.refuseConnection(socket, status, details, 'DPE');
  };

  /** A labelled answer written on a connection no codec serves any more, which then closes. */
  private refuseConnection(socket: net.Socket, status: number, details: string, flag?: string): void {
    if (flag) this.runtime.stats.inc(`downstream_rq_local_reply_${flag}`);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = `${http.STATUS_CODES[status]}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n` +
        `${flag ? `${RESPONSE_FLAGS_HEADER}: ${flag}\r\n` : ''}${RESPONSE_DETAILS_HEADER}: ${details}\r\n\r\n${body}`,
    );
    // Do not wait for a client that stops reading.
    setTimeout(() => socket.destroy(), 1_000).unref();
  }

  /**
   * Drain (Envoy's listener drain): stop accepting, let in-flight requests finish for up to
   * `drainMs` (HTTP/1.1 responses say `connection: close`, HTTP/2 sessions get GOAWAY), then
   * close what is left.
   */
  close(drainMs: number): Promise<void> {
    if (this.closing) return this.closing;
    this.ctx.draining = true;
    this.closing = new Promise<void>((resolve) => {
      this.server.close();
      this.h1.close(() => {});
      this.closeIdleHttp1();
      for (const s of this.sessions) closeSession(s);
      const done = () => {
        clearInterval(poll);
        clearTimeout(deadline);
        for (const s of this.sockets) s.destroy();
        resolve();
      };
      const poll = setInterval(() => {
        this.closeIdleHttp1();
        if (this.sockets.size === 0) done();
      }, 10);
      const deadline = setTimeout(done, Math.max(0, drainMs));
      if (this.sockets.size === 0) done();
    });
    return this.closing;
  }

  /** Keep-alive connections between requests close at once on drain; the others after their response. */
  private closeIdleHttp1(): void {
    this.h1.closeIdleConnections();
    for (const c of this.h1Connections) if (c.idle) c.close();
  }
}

/** Connections node's server parsed a request on that was refused: they close, serving nothing more. */
const refusedConnections = new WeakSet<object>();

let http2Module: typeof http2 | undefined;

/**
 * node:http2, loaded the first time a listener serves HTTP/2: it costs a proxy ~1.6 MB of
 * memory, which listeners without `http2` (most sidecars' inbound ones) should not pay.
 */
function loadHttp2(): typeof http2 {
  return (http2Module ??= createRequire(import.meta.url)('node:http2') as typeof http2);
}
