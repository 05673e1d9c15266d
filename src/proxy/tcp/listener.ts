/**
 * TCP listeners (Envoy's tcp_proxy): the first TcpRoute whose port matches picks a weighted
 * cluster, the cluster picks an endpoint, and bytes flow both ways. Half-closes propagate
 * (allowHalfOpen + pipe end), and either side closing or failing tears down both.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TcpRoute } from '../../api/proxy-config.js';
import { channels, type TcpConnectionEvent } from '../events.js';
import type { ListenerContext, ProxyRuntime } from '../runtime.js';
import { boundAddress, listenOn } from '../local-server.js';
import { limitListenerConnections } from '../overload.js';

export class TcpListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private ctx: ListenerContext;
  private closing?: Promise<void>;

  constructor(
    private readonly runtime: ProxyRuntime,
    ctx: ListenerContext,
  ) {
    this.ctx = ctx;
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
    const start = rt.clock.monotonic();
    let cluster: string | undefined;
    let upstreamHost: string | undefined;
    let destinationService: string | undefined;
    let flags = '-';
    let done = false;
    const event = (phase: 'open' | 'close'): TcpConnectionEvent => ({
      listener: ctx.listener.name, cluster, upstreamHost, flags, downstreamPeer: downstream.remoteAddress ?? '',
      bytesReceived: downstream.bytesRead, bytesSent: downstream.bytesWritten, durationMs: rt.clock.monotonic() - start,
      node: rt.nodeId, direction: ctx.listener.direction, phase, mtls: false, destinationService,
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
    downstream.on('close', () => {
      this.sockets.delete(downstream);
      admitted.release();
      finish();
    });
    if (ctx.draining || !rt.current) {
      downstream.destroy();
      return;
    }
    const routes = ctx.listener.tcp?.routes ?? [];
    const route = routes.find((r) => r.port === undefined || r.port === ctx.port);
    const dest = route && chooseTcp(route, rt.random.next());
    if (!dest) {
      flags = 'NR';
      downstream.destroy();
      return;
    }
    cluster = dest;
    const upstreamCluster = rt.clusterManager.get(dest);
    if (!upstreamCluster) {
      flags = 'NC';
      downstream.destroy();
      return;
    }
    const picked = upstreamCluster.acquire({});
    if (!picked.ok) {
      flags = picked.flag;
      downstream.destroy();
      return;
    }
    const lease = picked.lease;
    upstreamHost = lease.key;
    destinationService = upstreamCluster.config.service?.host;
    // Istio counts a TCP connection as opened when it is accepted and proxied, not when it ends.
    if (channels.tcp.hasSubscribers) {
      openPublished = true;
      channels.tcp.publish(event('open'));
    }
    const upstream = net.connect({ host: lease.endpoint.address.host, port: lease.endpoint.address.port, allowHalfOpen: true });
    let connected = false;
    let released = false;
    const teardown = () => {
      if (!released) {
        released = true;
        lease.release(connected ? { status: 200 } : { failure: 'connect-failure' });
      }
      upstream.destroy();
      downstream.destroy();
    };
    upstream.on('connect', () => {
      connected = true;
    });
    upstream.on('error', () => {
      if (!connected) flags = 'UF';
      teardown();
    });
    upstream.on('close', teardown);
    downstream.on('close', teardown);
    const idle = ctx.listener.tcp?.idleTimeoutMs;
    if (idle && idle > 0) {
      // Envoy's tcp_proxy idle_timeout: no bytes either way for this long closes both sides.
      downstream.setTimeout(idle, teardown);
      upstream.setTimeout(idle, teardown);
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  };

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
