/**
 * Transparent capture (Istio's iptables mode): the pod's nat rules (`sinew iptables`) send
 * every outbound TCP connection to 15001 and every inbound one to 15006. This module accepts
 * there, asks the kernel where each connection was going (SO_ORIGINAL_DST, through
 * ./original-destination.ts) and hands it to the listener of the config that serves that
 * destination, as Envoy's virtual listeners with `use_original_dst` hand connections to the
 * listeners with `bind_to_port: false`:
 *
 *  - inbound: the inbound listener of the original destination port (`inbound|<port>`); a
 *    port no listener serves passes through to the app on 127.0.0.1 (InboundPassthrough);
 *  - outbound: HTTP (an HTTP/1.x request line or the HTTP/2 preface) goes to the outbound
 *    listener, which routes it by Host as for HTTP_PROXY clients; anything else, and a client
 *    that does not speak first within `sniffMs`, passes through to the original destination
 *    (PassthroughCluster). Mesh routing of captured non-HTTP traffic is not done yet.
 *
 * With capture on, the listeners it hands connections to bind nothing themselves (the app
 * owns its ports in the pod).
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Address } from '../api/proxy-config.js';
import type { Logger } from '../core/logger.js';

export interface CaptureOptions {
  /** 15001 */
  outboundPort: number;
  /** 15006 */
  inboundPort: number;
  /** Address of both capture ports (0.0.0.0). */
  host?: string;
  /** Where a connection was going before the REDIRECT; undefined when it was not redirected. */
  originalDestination(socket: net.Socket): Address | undefined;
  /** How long an outbound client may stay silent before it is taken for a non-HTTP one (Istio's protocol detection timeout). */
  sniffMs?: number;
}

/** What the capture needs of the proxy: its listeners by direction and port. */
export interface CaptureTargets {
  inbound(port: number): { accept(socket: net.Socket): void } | undefined;
  outboundHttp(): { accept(socket: net.Socket): void } | undefined;
  logger: Logger;
  count(stat: string): void;
}

const HTTP_REQUEST_LINE = /^[A-Z]{3,10} \S+ HTTP\/1\.[01]\r?$/;
const H2_PREFACE = 'PRI * HTTP/2.0';

export class CaptureServers {
  readonly #inbound: net.Server;
  readonly #outbound: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor(
    private readonly options: CaptureOptions,
    private readonly targets: CaptureTargets,
  ) {
    this.#inbound = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (s) => this.#onInbound(s));
    this.#outbound = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (s) => this.#onOutbound(s));
    for (const server of [this.#inbound, this.#outbound]) server.on('error', (err) => targets.logger.error('capture port error', { error: err.message }));
  }

  async listen(): Promise<{ inbound: AddressInfo; outbound: AddressInfo }> {
    const host = this.options.host ?? '0.0.0.0';
    const listen = (server: net.Server, port: number) =>
      new Promise<AddressInfo>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve(server.address() as AddressInfo));
      });
    return { inbound: await listen(this.#inbound, this.options.inboundPort), outbound: await listen(this.#outbound, this.options.outboundPort) };
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all([this.#inbound, this.#outbound].map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }

  #track(socket: net.Socket): void {
    socket.on('error', () => {});
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #onInbound(socket: net.Socket): void {
    this.#track(socket);
    const dst = this.#destination(socket);
    if (!dst) return;
    const listener = this.targets.inbound(dst.port);
    if (listener) {
      this.targets.count('capture_inbound_listener');
      socket.resume();
      return listener.accept(socket);
    }
    this.targets.count('capture_inbound_passthrough');
    this.#passthrough(socket, { host: '127.0.0.1', port: dst.port });
  }

  #onOutbound(socket: net.Socket): void {
    this.#track(socket);
    const dst = this.#destination(socket);
    if (!dst) return;
    let seen = Buffer.alloc(0);
    const decide = (http: boolean) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      if (seen.length) socket.unshift(seen);
      const listener = http ? this.targets.outboundHttp() : undefined;
      if (listener) {
        this.targets.count('capture_outbound_http');
        return listener.accept(socket);
      }
      this.targets.count('capture_outbound_passthrough');
      this.#passthrough(socket, dst);
    };
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const text = seen.toString('latin1');
      const eol = text.indexOf('\n');
      if (text.startsWith(H2_PREFACE)) return decide(true);
      if (eol >= 0) return decide(HTTP_REQUEST_LINE.test(text.slice(0, eol)));
      if (seen.length > 8192 || !/^[A-Z]{0,10}( \S*)?$/.test(text.split(' HTTP/')[0] ?? '')) return decide(false);
    };
    // A server-first protocol (SMTP, MySQL) says nothing until the server does.
    const timer = setTimeout(() => decide(false), this.options.sniffMs ?? 100);
    socket.on('data', onData);
    socket.resume();
  }

  #destination(socket: net.Socket): Address | undefined {
    let dst: Address | undefined;
    try {
      dst = this.options.originalDestination(socket);
    } catch (err) {
      this.targets.logger.warn('no original destination', { error: (err as Error).message });
    }
    if (!dst) {
      // Reached the capture port directly: there is nowhere to send it.
      this.targets.count('capture_no_original_destination');
      socket.destroy();
    }
    return dst;
  }

  /** Bytes both ways to `to`, each side closing the other. */
  #passthrough(client: net.Socket, to: Address): void {
    const upstream = net.connect(to.port, to.host);
    this.#track(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}
