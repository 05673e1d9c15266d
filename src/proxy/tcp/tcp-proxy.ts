/**
 * One proxied TCP connection (Envoy's tcp_proxy filter): the cluster picks an endpoint, bytes
 * flow both ways, half-closes propagate (allowHalfOpen + pipe end), and either side closing or
 * failing tears down both. TCP listeners (listener.ts) and CONNECT tunnels on HTTP listeners
 * (http/connect-tunnel.ts) both end here, so both publish the same `istio_tcp_*` events.
 */
import net from 'node:net';
import type { Address, Listener } from '../../api/proxy-config.js';
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
  const event = (phase: 'open' | 'close'): TcpConnectionEvent => ({
    listener: listener.name, cluster, upstreamHost, flags, downstreamPeer: downstream.remoteAddress ?? '',
    bytesReceived: downstream.bytesRead, bytesSent: downstream.bytesWritten, durationMs: rt.clock.monotonic() - start,
    node: rt.nodeId, direction: listener.direction, phase, mtls: false, destinationService,
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
  // Istio counts a TCP connection as opened when it is accepted and proxied, not when it ends.
  if (channels.tcp.hasSubscribers) {
    openPublished = true;
    channels.tcp.publish(event('open'));
  }
  const upstream = net.connect({ host: lease.endpoint.address.host, port: lease.endpoint.address.port, allowHalfOpen: true, noDelay: true });
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
  upstream.on('connect', () => {
    connected = true;
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
