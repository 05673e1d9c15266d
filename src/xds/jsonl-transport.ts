/**
 * The push server's transport of today: the push protocol as newline-delimited JSON frames
 * over plain TCP (protocol.ts), one connection per proxy. It accepts connections, reads and
 * parses frames within their size limits, enforces the HELLO deadline and the idle timeout,
 * encodes pushes (whole or as deltas, delta.ts) and hands everything else to its
 * `PushStreamHandler` (the push server), which keeps the sessions and decides what to send.
 *
 * Reads are bounded twice: a connection that has not said HELLO may send frames of at most
 * `MAX_HELLO_FRAME_BYTES`, and a proxy past HELLO frames of `MAX_PROXY_FRAME_BYTES`; a frame
 * growing past the limit closes the connection before its newline arrives, so a peer can never
 * make the server buffer more than that for it.
 */
import net from 'node:net';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { FrameConnection } from './connection.js';
import type { CloseInfo } from './connection.js';
import { encodeConfig, segmentsBytes } from './content.js';
import { encodeDelta } from './delta.js';
import { SUPPORTED_PROTOCOLS, XdsError, XdsErrorCode, parseClientMessage } from './protocol.js';
import type { AckMessage, CertificateMessage, ClientMessage, CsrMessage, HelloMessage, NackMessage, ResyncMessage, ServerMessage } from './protocol.js';
import type { OutgoingPush, ProxySession } from './session.js';

/** One proxy's stream as the push server sees it, whatever the transport. */
export interface PushStream {
  /** Unique per connection. */
  readonly id: string;
  /** `host:port` the proxy connects from. */
  readonly peer: string;
  /** False once the stream is closing: pushes are dropped. */
  readonly open: boolean;
  /**
   * Sends a push: as a delta from `push.base` when there is one and it can be said by name,
   * else whole. Returns what went out. Throws `XdsError` (FrameTooLarge) when the frame
   * exceeds what the proxy accepts.
   */
  send(push: OutgoingPush): { kind: 'full' | 'delta'; bytes: number };
  /** Answers a certificate request (dropped once the stream is closing). */
  sendCertificate(message: CertificateMessage): void;
  /** Tells the proxy why, then closes. */
  close(code: string, reason: string): void;
}

/** A refusal of a HELLO: the stream is closed with this code and reason. */
export interface HelloRefusal {
  code: XdsErrorCode;
  reason: string;
}

/** What a transport calls on the push server. */
export interface PushStreamHandler {
  /** A proxy said who it is: the session for it, or why it is refused (at once, or once its credential is checked). */
  hello(stream: PushStream, hello: HelloMessage): ProxySession | HelloRefusal | Promise<ProxySession | HelloRefusal>;
  ack(session: ProxySession, message: AckMessage): void;
  nack(session: ProxySession, message: NackMessage): void;
  resync(session: ProxySession, stream: PushStream, message: ResyncMessage): void;
  /** A proxy past HELLO asked for a workload certificate. */
  csr(session: ProxySession, stream: PushStream, message: CsrMessage): void;
  /** The stream ended; `session` is undefined when it never got past HELLO. */
  closed(stream: PushStream, session: ProxySession | undefined, info: CloseInfo): void;
}

export interface JsonLinesTransportOptions {
  handler: PushStreamHandler;
  clock: Clock;
  logger: Logger;
  /** Largest frame sent (what proxies accept). */
  maxFrameBytes: number;
  /** Largest frame read before HELLO. */
  maxHelloFrameBytes: number;
  /** Largest frame read from a proxy past HELLO. */
  maxProxyFrameBytes: number;
  /** A connection that has not sent HELLO by then is closed. */
  helloTimeoutMs: number;
  /** A connection silent this long (no frame, not even a ping) is closed; 0 turns it off. */
  idleTimeoutMs: number;
}

/** One accepted connection. */
class JsonLinesStream implements PushStream {
  session: ProxySession | undefined;
  /** HELLO arrived (its credential may still be being checked). */
  helloSeen = false;
  lastSeen: number;
  helloTimer: TimerHandle | undefined;
  idleTimer: TimerHandle | undefined;
  readonly conn: FrameConnection<ClientMessage, ServerMessage>;

  constructor(
    readonly id: string,
    readonly peer: string,
    socket: net.Socket,
    transport: JsonLinesTransport,
    private readonly options: JsonLinesTransportOptions,
  ) {
    this.lastSeen = options.clock.monotonic();
    this.conn = new FrameConnection<ClientMessage, ServerMessage>({
      socket,
      parse: parseClientMessage,
      maxFrameBytes: options.maxFrameBytes,
      maxInboundFrameBytes: options.maxHelloFrameBytes,
      clock: options.clock,
      onMessage: (message) => transport.onMessage(this, message),
      onClose: (info) => transport.onClose(this, info),
    });
  }

  get open(): boolean {
    return this.conn.open;
  }

  send(push: OutgoingPush): { kind: 'full' | 'delta'; bytes: number } {
    const versionJson = JSON.stringify(push.version);
    const nonceJson = JSON.stringify(push.nonce);
    let segments: (string | Buffer)[] | undefined;
    if (push.base) {
      try {
        const changes = encodeDelta(push.base.content, push.content);
        if (changes) segments = [`{"type":"delta","version":${versionJson},"nonce":${nonceJson},"base":${JSON.stringify(push.base.version)},"changes":`, ...changes, '}\n'];
      } catch (err) {
        // A delta is an optimisation: when it cannot be made, the whole config still can.
        this.options.logger.warn('could not compute a delta; pushing the whole config', { node: this.session?.node.id, error: (err as Error).message });
      }
    }
    const kind = segments ? 'delta' : 'full';
    // The pushed config carries the push version, so a config dump names what was acked.
    segments ??= [`{"type":"push","version":${versionJson},"nonce":${nonceJson},"config":`, ...encodeConfig(push.content, push.version), '}\n'];
    return { kind, bytes: this.sendFrame(segments) };
  }

  /**
   * Writes one frame made of segments (the last ends with the newline), with the checks
   * FrameConnection.sendEncoded makes for a frame given whole: dropped once the connection
   * is closing, refused when larger than the peer accepts. Returns the frame's size.
   */
  private sendFrame(segments: (string | Buffer)[]): number {
    const bytes = segmentsBytes(segments) - 1; // the newline is not part of the frame
    if (!this.conn.open) return bytes;
    if (bytes > this.options.maxFrameBytes) {
      throw new XdsError(XdsErrorCode.FrameTooLarge, `push frame of ${bytes} bytes exceeds the ${this.options.maxFrameBytes}-byte limit`);
    }
    const socket = this.conn.socket;
    socket.cork();
    for (const seg of segments) socket.write(seg);
    socket.uncork();
    return bytes;
  }

  sendCertificate(message: CertificateMessage): void {
    if (this.conn.open) this.conn.send(message);
  }

  close(code: string, reason: string): void {
    this.conn.close(code, reason);
  }
}

/** Accepts proxies' TCP connections and speaks the JSON-lines push protocol on them. */
export class JsonLinesTransport {
  private readonly server: net.Server;
  private readonly streams = new Map<string, JsonLinesStream>();
  private counter = 0;
  private closed = false;

  constructor(private readonly options: JsonLinesTransportOptions) {
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => options.logger.error('push server error', { error: err.message }));
  }

  /** Starts listening; resolves with the bound address (pass port 0 for an ephemeral port). */
  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.address());
      });
    });
  }

  address(): { host: string; port: number } {
    const addr = this.server.address();
    if (!addr || typeof addr === 'string') throw new XdsError(XdsErrorCode.NotConnected, 'push server is not listening');
    return { host: addr.address, port: addr.port };
  }

  /** Stops accepting and closes every connection with `code`; resolves once the listener is closed. */
  close(code: string, reason: string): Promise<void> {
    this.closed = true;
    const done = new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
    for (const stream of this.streams.values()) stream.close(code, reason);
    return done;
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    socket.setKeepAlive(true, 30_000);
    const { clock } = this.options;
    const stream = new JsonLinesStream(`c${++this.counter}`, `${socket.remoteAddress}:${socket.remotePort}`, socket, this, this.options);
    this.streams.set(stream.id, stream);
    stream.helloTimer = clock
      .setTimeout(() => {
        if (!stream.session) stream.close(XdsErrorCode.HelloTimeout, `no hello within ${this.options.helloTimeoutMs} ms`);
      }, this.options.helloTimeoutMs)
      .unref();
    if (this.options.idleTimeoutMs > 0) this.armIdle(stream, this.options.idleTimeoutMs);
  }

  private armIdle(stream: JsonLinesStream, ms: number): void {
    const { clock, idleTimeoutMs } = this.options;
    stream.idleTimer = clock
      .setTimeout(() => {
        const silent = clock.monotonic() - stream.lastSeen;
        if (silent >= idleTimeoutMs) stream.close(XdsErrorCode.PeerTimeout, `nothing heard for ${silent} ms`);
        else this.armIdle(stream, idleTimeoutMs - silent);
      }, ms)
      .unref();
  }

  /** @internal Called by a stream's connection for every frame. */
  onMessage(stream: JsonLinesStream, message: ClientMessage): void {
    stream.lastSeen = this.options.clock.monotonic();
    switch (message.type) {
      case 'hello':
        this.onHello(stream, message);
        return;
      case 'ping':
        stream.conn.send({ type: 'pong', id: message.id });
        return;
      case 'pong':
        return;
    }
    const session = stream.session;
    if (!session) {
      // A certificate is only signed for a node whose credential was checked in HELLO.
      if (message.type === 'csr') this.options.logger.warn('refused a certificate request without a credential (csr before hello)', { peer: stream.peer });
      stream.close(XdsErrorCode.UnexpectedMessage, `${message.type} before hello`);
      return;
    }
    if (message.type === 'ack') this.options.handler.ack(session, message);
    else if (message.type === 'nack') this.options.handler.nack(session, message);
    else if (message.type === 'resync') this.options.handler.resync(session, stream, message);
    else if (message.type === 'csr') this.options.handler.csr(session, stream, message);
  }

  private onHello(stream: JsonLinesStream, hello: HelloMessage): void {
    if (stream.helloSeen) {
      stream.close(XdsErrorCode.UnexpectedMessage, 'second hello on one connection');
      return;
    }
    if (!SUPPORTED_PROTOCOLS.includes(hello.protocol)) {
      stream.close(XdsErrorCode.ProtocolVersion, `protocol ${hello.protocol} is not supported; this server speaks ${SUPPORTED_PROTOCOLS.join(' and ')}`);
      return;
    }
    if (stream.helloTimer) this.options.clock.clearTimeout(stream.helloTimer);
    stream.helloTimer = undefined;
    stream.helloSeen = true;
    const result = this.options.handler.hello(stream, hello);
    if (result instanceof Promise) {
      // Only pings are answered until the credential is checked: the proxy sends nothing
      // else before its first config.
      void result.then((r) => this.helloAnswered(stream, r));
      return;
    }
    this.helloAnswered(stream, result);
  }

  private helloAnswered(stream: JsonLinesStream, result: ProxySession | HelloRefusal): void {
    if ('code' in result) {
      stream.close(result.code, result.reason);
      return;
    }
    stream.session = result;
    stream.conn.limitInbound(this.options.maxProxyFrameBytes);
  }

  /** @internal Called by a stream's connection once its socket is closed. */
  onClose(stream: JsonLinesStream, info: CloseInfo): void {
    this.streams.delete(stream.id);
    if (stream.helloTimer) this.options.clock.clearTimeout(stream.helloTimer);
    if (stream.idleTimer) this.options.clock.clearTimeout(stream.idleTimer);
    this.options.handler.closed(stream, stream.session, info);
  }
}
