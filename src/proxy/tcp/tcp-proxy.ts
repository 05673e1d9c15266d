/**
 * One proxied TCP connection (Envoy's tcp_proxy filter): the cluster picks an endpoint, bytes
 * flow both ways, half-closes propagate (allowHalfOpen + pipe end), and either side closing or
 * failing tears down both. TCP listeners (listener.ts) and CONNECT tunnels on HTTP listeners
 * (http/connect-tunnel.ts) both end here, so both publish the same `istio_tcp_*` events.
 *
 * The upstream connects through the endpoint's transport socket (the lease's: Istio mutual
 * TLS to a sidecar-backed endpoint under auto mTLS, SNI `outbound_.<port>_._.<host>`, ALPN
 * `istio-peer-exchange, istio`), so bytes between sidecars are encrypted on TCP ports as on
 * HTTP ones. Both sides' identities reach the events as Istio's stats filter reports them: the
 * downstream peer's (destination reporter) and the upstream connection's (source reporter).
 */
import type net from 'node:net';
import type { Address, Listener } from '../../api/proxy-config.js';
import { connectionInfoOf, type ConnectionInfo } from '../transport/connection-info.js';
import { channels, type TcpConnectionEvent } from '../events.js';
import type { ProxyRuntime } from '../runtime.js';

export interface TcpProxyOptions {
  /** PassthroughCluster / PASSTHROUGH: the destination the client named. */
  originalDestination?: Address;
  /** Envoy's tcp_proxy idle_timeout: no bytes either way for this long closes both sides. */
  idleTimeoutMs?: number;
  /** Bytes the client sent before the splice (after a CONNECT head): written upstream first. */
  early?: Buffer;
  /**
   * The upstream connected, before any byte flows (a CONNECT tunnel answers 200 here).
   * Returns false when the downstream is gone and nothing should flow.
   */
  onConnected?: () => boolean;
  /**
   * No upstream could be had (flag: NR, NC, UH, UO or UF): returns true when the caller
   * answered the client itself (a CONNECT tunnel's 503) and will close the downstream.
   */
  onRefused?: (flag: string) => boolean;
}

/**
 * Proxies `downstream` to `clusterName` (undefined: no route). The downstream's admission and
 * bookkeeping stay with the listener that accepted it; this owns the upstream and the events.
 */
export function proxyTcp(rt: ProxyRuntime, listener: Listener, downstream: net.Socket, clusterName: string | undefined, opts: TcpProxyOptions = {}): void {
  const start = rt.clock.monotonic();
  const cluster = clusterName;
  let upstreamHost: string | undefined;
  let destinationService: string | undefined;
  let flags = '-';
  let done = false;
  // What the downstream's transport established (mutual TLS on a sidecar's inbound port).
  const downstreamInfo = connectionInfoOf(downstream);
  let upstreamInfo: ConnectionInfo | undefined;
  const event = (phase: 'open' | 'close'): TcpConnectionEvent => ({
    listener: listener.name, cluster, upstreamHost, flags, downstreamPeer: downstream.remoteAddress ?? '',
    bytesReceived: downstream.bytesRead, bytesSent: downstream.bytesWritten, durationMs: rt.clock.monotonic() - start,
    node: rt.nodeId, direction: listener.direction, phase, mtls: downstreamInfo.security === 'mutual_tls', destinationService,
    ...(downstreamInfo.peerUriSan !== undefined ? { downstreamPeerUriSan: downstreamInfo.peerUriSan } : {}),
    ...(downstreamInfo.localUriSan !== undefined ? { downstreamLocalUriSan: downstreamInfo.localUriSan } : {}),
    ...(upstreamInfo?.peerUriSan !== undefined ? { upstreamPeerUriSan: upstreamInfo.peerUriSan } : {}),
    ...(upstreamInfo?.localUriSan !== undefined ? { upstreamLocalUriSan: upstreamInfo.localUriSan } : {}),
  });
  // Counted open when it closes if nobody heard it open (a subscriber that came later).
  let openPublished = false;
  const finish = () => {
    if (done) return;
    done = true;
    rt.stats.inc('downstream_cx_tcp_total');
    if (flags !== '-') rt.stats.inc(`downstream_cx_tcp_flag_${flags}`);
    if (channels.tcp.hasSubscribers) {
      const e = event('close');
      if (!openPublished) delete e.phase;
      channels.tcp.publish(e);
    }
  };
  downstream.on('error', () => downstream.destroy());
  downstream.once('close', finish);
  if (downstream.destroyed) return finish();
  const refuse = (flag: string) => {
    flags = flag;
    if (!opts.onRefused?.(flag)) downstream.destroy();
  };
  if (cluster === undefined) return refuse('NR');
  const upstreamCluster = rt.clusterManager.get(cluster);
  if (!upstreamCluster) return refuse('NC');
  const picked = upstreamCluster.acquire({ originalDestination: opts.originalDestination });
  if (!picked.ok) return refuse(picked.flag);
  const lease = picked.lease;
  upstreamHost = lease.key;
  destinationService = upstreamCluster.config.service?.host;
  const transport = lease.transport;
  // Istio counts a TCP connection as opened when it is accepted and proxied, not when it ends.
  // Over mutual TLS the open is published once the upstream's identity is known (its principals).
  const publishOpen = () => {
    if (openPublished || !channels.tcp.hasSubscribers) return;
    openPublished = true;
    channels.tcp.publish(event('open'));
  };
  if (!transport.secure) publishOpen();
  const upstream = transport.connect(lease.endpoint.address.host, lease.endpoint.address.port, { allowHalfOpen: true, noDelay: true });
  let connected = false;
  let released = false;
  let refused = false;
  const teardown = () => {
    if (!released) {
      released = true;
      lease.release(connected ? { status: 200 } : { failure: 'connect-failure' });
    }
    upstream.destroy();
    if (!refused) downstream.destroy();
  };
  upstream.on(transport.readyEvent, () => {
    // A TLS upstream's chain and SANs were checked in the handshake; then the mesh CA's revocations.
    const refusedPeer = transport.verifyPeer(upstream);
    if (refusedPeer !== undefined) return void upstream.destroy(refusedPeer);
    connected = true;
    if (transport.secure) {
      upstreamInfo = connectionInfoOf(upstream);
      publishOpen();
    }
    if (opts.onConnected && !opts.onConnected()) return teardown();
    if (opts.early && opts.early.length > 0) upstream.write(opts.early);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    if (downstream.isPaused()) downstream.resume();
  });
  upstream.on('error', () => {
    if (!connected) {
      flags = 'UF';
      // A CONNECT tunnel can still say why (503 UF) when nothing was spliced yet.
      refused = opts.onRefused?.('UF') ?? false;
    }
    teardown();
  });
  upstream.on('close', teardown);
  downstream.on('close', () => {
    refused = false;
    teardown();
  });
  const idle = opts.idleTimeoutMs;
  if (idle && idle > 0) {
    downstream.setTimeout(idle, teardown);
    upstream.setTimeout(idle, teardown);
  }
}
