/**
 * TCP listeners (Envoy's tcp_proxy): a connection gets the filter chain its first bytes match
 * (transport/filter-chains.ts, shared with HTTP listeners: plaintext, TLS terminated with the
 * chain's certificate, e.g. Istio mutual TLS on a sidecar's inbound TCP port, or TLS passed
 * on by SNI); the chain's network filters (RBAC) see the peer's verified identity; the first
 * TcpRoute whose port matches picks a weighted cluster; tcp-proxy.ts connects it and splices
 * the bytes.
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { TcpProxy, TcpRoute } from '../../api/proxy-config.js';
import type { ListenerContext, ProxyRuntime } from '../runtime.js';
import { boundAddress, listenOn } from '../local-server.js';
import { limitListenerConnections } from '../overload.js';
import { proxyTcp } from './tcp-proxy.js';
import type { NetworkFilter } from '../http/filters/contract.js';
import type { RequestAttributes } from '../../security/attributes.js';
import { connectionInfoOf } from '../transport/connection-info.js';
import { buildListenerChains, listenerChainsKey, selectByFirstBytes, type CompiledFilterChain, type ListenerChains } from '../transport/filter-chains.js';
import { peekFirstBytes } from '../transport/first-bytes.js';

/**
 * How long a new connection may take to show its first bytes (when a chain needs them) and to
 * finish its TLS handshake. Envoy's listener_filters_timeout is 15 s; server-first protocols
 * (MySQL, SMTP) never send first, so Envoy lets them through as plaintext when it runs out
 * (continue_on_listener_filters_timeout, which Istio sets): so does this listener.
 */
const FIRST_BYTES_TIMEOUT_MS = 15_000;

export class TcpListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private ctx: ListenerContext;
  private closing?: Promise<void>;
  /** The filter chains for new connections; replaced when the settings or certificates change. */
  private chains!: ListenerChains;

  constructor(
    private readonly runtime: ProxyRuntime,
    ctx: ListenerContext,
  ) {
    this.ctx = ctx;
    this.buildChains();
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

  connections(): number {
    return this.sockets.size;
  }

  update(ctx: ListenerContext): void {
    this.ctx = ctx;
    limitListenerConnections(this.server, ctx.listener.maxConnections);
    this.buildChains();
  }

  /**
   * (Re)builds the chains when their settings or the certificates they name changed (a
   * rotated workload certificate): connections already accepted keep their TLS session.
   */
  private buildChains(): void {
    const secrets = this.runtime.current?.config.secrets;
    if (this.chains !== undefined && this.chains.key === listenerChainsKey(this.ctx.listener, secrets, FIRST_BYTES_TIMEOUT_MS)) return;
    this.chains = buildListenerChains(this.ctx.listener, secrets, FIRST_BYTES_TIMEOUT_MS, {
      onSecure: (socket, chain) => this.onSecure(socket, chain),
      onError: (err, chain) => {
        this.runtime.stats.inc('ssl_connection_error');
        this.runtime.logger.debug('TLS handshake failed', { listener: this.ctx.listener.name, chain, error: err.message });
      },
    });
  }

  private onConnection = (downstream: net.Socket): void => {
    const rt = this.runtime;
    const ctx = this.ctx;
    const admitted = rt.downstream;
    if (!admitted.admit()) {
      rt.stats.inc('downstream_global_cx_overflow');
      downstream.destroy();
      return;
    }
    this.sockets.add(downstream);
    downstream.on('error', () => downstream.destroy());
    downstream.on('close', () => {
      this.sockets.delete(downstream);
      admitted.release();
    });
    if (ctx.draining || !rt.current) {
      downstream.destroy();
      return;
    }
    const chains = this.chains;
    if (!chains.inspect) return this.serveChain(chains.chains[0], downstream);
    // Envoy's tls_inspector: a ClientHello's server name and ALPN (or its absence) choose the chain.
    peekFirstBytes(
      downstream,
      FIRST_BYTES_TIMEOUT_MS,
      (seen) => {
        const chain = selectByFirstBytes(chains, seen);
        if (chain === 'need-more') return undefined;
        if (chain === undefined) {
          rt.stats.inc('listener_no_filter_chain_match');
          return (s) => s.destroy();
        }
        return (s) => this.serveChain(chain, s);
      },
      (s) => {
        // Nothing (or too little) sent: a server-first protocol. The plaintext chain, if any, serves it.
        const chain = chains.select({ transportProtocol: 'raw_buffer' });
        if (chain === undefined || chain.transport !== undefined) return void s.destroy();
        this.serveChain(chain, s);
      },
    );
  };

  /** The chain's transport socket: TLS terminated first, or the bytes as they come. */
  private serveChain(chain: CompiledFilterChain, socket: net.Socket): void {
    if (chain.transport !== undefined) return chain.transport.accept(socket);
    this.proxy(socket, chain);
  }

  private onSecure(socket: tls.TLSSocket, chain: CompiledFilterChain): void {
    // Envoy's listener ssl.handshake (as the HTTP listener counts it).
    this.runtime.stats.inc('ssl_handshake');
    socket.on('error', () => socket.destroy());
    if (this.ctx.draining) return void socket.destroy();
    this.proxy(socket, chain);
  }

  /** Network filters with what the transport established, then the chain's (or listener's) TCP route. */
  private proxy(downstream: net.Socket, chain: CompiledFilterChain): void {
    const rt = this.runtime;
    const ctx = this.ctx;
    if (!rt.current) return void downstream.destroy();
    const filters = rt.current.networkFilters.get(ctx.listener.name);
    if (filters !== undefined && !admittedByFilters(filters, downstream, ctx.port)) {
      // Envoy's network RBAC: a denied connection is closed before anything goes upstream.
      rt.stats.inc('downstream_cx_rbac_denied');
      downstream.destroy();
      return;
    }
    const tcp: TcpProxy | undefined = chain.tcp ?? ctx.listener.tcp;
    const routes = tcp?.routes ?? [];
    const route = routes.find((r) => r.port === undefined || r.port === ctx.port);
    const dest = route && chooseTcp(route, rt.random.next());
    proxyTcp(rt, ctx.listener, downstream, dest, { idleTimeoutMs: tcp?.idleTimeoutMs });
  }

  close(drainMs: number): Promise<void> {
    if (this.closing) return this.closing;
    this.ctx.draining = true;
    this.closing = new Promise<void>((resolve) => {
      this.server.close();
      const done = () => {
        clearInterval(poll);
        clearTimeout(deadline);
        for (const s of this.sockets) s.destroy();
        resolve();
      };
      const poll = setInterval(() => { if (this.sockets.size === 0) done(); }, 10);
      const deadline = setTimeout(done, Math.max(0, drainMs));
      if (this.sockets.size === 0) done();
    });
    return this.closing;
  }
}

/** Runs a new connection through the listener's network filters; false when one closes it. */
function admittedByFilters(filters: readonly NetworkFilter[], socket: net.Socket, port: number): boolean {
  const connection = connectionInfoOf(socket);
  const sourceIp = bareIp(socket.remoteAddress ?? '');
  const attributes: RequestAttributes = {
    sourceIp,
    remoteIp: sourceIp,
    ...(socket.remotePort !== undefined ? { sourcePort: socket.remotePort } : {}),
    ...(socket.localAddress !== undefined ? { destinationIp: bareIp(socket.localAddress) } : {}),
    destinationPort: port,
    // Istio: principals and namespaces come only from a peer certificate the proxy verified.
    ...(connection.security === 'mutual_tls' && connection.peerUriSan !== undefined ? { peerPrincipal: connection.peerUriSan } : {}),
    ...(connection.sni !== undefined ? { sni: connection.sni } : {}),
  };
  for (const filter of filters) if (filter.onNewConnection(attributes) !== 'continue') return false;
  return true;
}

/** An IPv4 peer as node gives it on a dual-stack socket (`::ffff:10.0.0.1`) in its own form. */
function bareIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function chooseTcp(route: TcpRoute, point: number): string | undefined {
  const total = route.destinations.reduce((n, d) => n + Math.max(0, d.weight), 0);
  if (total <= 0) return undefined;
  let x = point * total;
  for (const d of route.destinations) {
    if (d.weight <= 0) continue;
    if (x < d.weight) return d.cluster;
    x -= d.weight;
  }
  return route.destinations.filter((d) => d.weight > 0).at(-1)?.cluster;
}
