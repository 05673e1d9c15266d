/**
 * One framed push-protocol connection over a TCP socket, shared by the server and the client:
 * it decodes newline-delimited JSON frames (see protocol.ts), hands each parsed message to
 * its owner, and closes with a reason (a `close` frame, then FIN) on any frame it cannot
 * read. It never throws into the event loop: every socket has an error listener, and a bad
 * peer only ever costs its own connection (STYLE.md "what to avoid": sockets without an
 * `error` listener).
 */
import type { Socket } from 'node:net';
import type { Clock, TimerHandle } from '../core/clock.js';
import { FrameDecoder, XdsError, XdsErrorCode, encodeFrame } from './protocol.js';
import type { Message } from './protocol.js';

/** Why a connection ended. `initiator` says which side decided. */
export interface CloseInfo {
  initiator: 'local' | 'peer';
  /** An `XdsErrorCode`, a peer's close code, or a socket error code (`ECONNRESET`). */
  code?: string;
  reason: string;
}

export interface FrameConnectionOptions<In> {
  socket: Socket;
  parse(frame: string): In;
  /** Largest frame sent: what the peer accepts. */
  maxFrameBytes: number;
  /** Largest frame read (default `maxFrameBytes`); see `limitInbound`. */
  maxInboundFrameBytes?: number;
  clock: Clock;
  onMessage(message: In): void;
  onClose(info: CloseInfo): void;
  /** How long a local close waits for its close frame to flush before destroying the socket. */
  closeGraceMs?: number;
}

/** A socket speaking the push protocol: parse in, encode out, close with a reason. */
export class FrameConnection<In extends Message, Out extends Message> {
  readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private readonly options: FrameConnectionOptions<In>;
  private closing = false;
  private closed = false;
  private closeInfo: CloseInfo | undefined;
  private graceTimer: TimerHandle | undefined;

  constructor(options: FrameConnectionOptions<In>) {
    this.options = options;
    this.socket = options.socket;
    this.decoder = new FrameDecoder(options.maxInboundFrameBytes ?? options.maxFrameBytes);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.closeInfo ??= { initiator: 'peer', code: err.code ?? 'ESOCKET', reason: err.message };
    });
    this.socket.on('close', () => this.onSocketClose());
  }

  /** True until the connection starts closing; sends after that are dropped. */
  get open(): boolean {
    return !this.closing && !this.closed;
  }

  /**
   * Changes the largest frame read from now on: a server reads little from a peer it does not
   * know yet and more once it has said who it is. A frame already buffered past the new limit
   * fails with the next chunk.
   */
  limitInbound(maxFrameBytes: number): void {
    this.decoder.maxFrameBytes = maxFrameBytes;
  }

  /**
   * Sends one message. Throws `XdsError` (FrameTooLarge) when its frame would exceed the
   * peer's limit, so the caller can count the failure instead of the peer dropping us.
   * Returns false when the connection is closing (the message is dropped).
   */
  send(message: Out): boolean {
    return this.sendEncoded(message.type, JSON.stringify(message));
  }

  /**
   * Sends a message already serialised as one line of JSON (no trailing newline), for a
   * caller that built it from parts it had serialised anyway. Same rules as `send`.
   */
  sendEncoded(type: Out['type'], json: string): boolean {
    if (!this.open) return false;
    const bytes = Buffer.byteLength(json);
    if (bytes > this.options.maxFrameBytes) {
      throw new XdsError(XdsErrorCode.FrameTooLarge, `${type} frame of ${bytes} bytes exceeds the ${this.options.maxFrameBytes}-byte limit`);
    }
    this.socket.write(json + '\n');
    return true;
  }

  /**
   * Tells the peer why, then closes: a `close` frame, FIN once it is flushed, and a destroy
   * after `closeGraceMs` in case the peer never reads it. Frames arriving meanwhile are ignored.
   */
  close(code: string, reason: string): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    this.closeInfo ??= { initiator: 'local', code, reason };
    const socket = this.socket;
    if (socket.destroyed) return;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(encodeFrame({ type: 'close', code, reason }), () => socket.destroy());
    this.graceTimer = this.options.clock.setTimeout(() => socket.destroy(), this.options.closeGraceMs ?? 1000).unref();
  }

  /** Drops the connection at once, without a close frame (used on keepalive failure). */
  destroy(code: string, reason: string): void {
    this.closeInfo ??= { initiator: 'local', code, reason };
    this.closing = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (!this.open) return;
    let frames: string[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    for (const frame of frames) {
      if (!this.open) return;
      if (frame.length === 0) continue; // a blank line carries nothing; skip it
      let message: In;
      try {
        message = this.options.parse(frame);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (message.type === 'close') {
        // The peer said why it is leaving; remember it for onClose and stop reading.
        this.closeInfo ??= { initiator: 'peer', code: message.code, reason: message.reason };
        this.closing = true;
        this.socket.end();
        return;
      }
      try {
        this.options.onMessage(message);
      } catch (err) {
        // A handler bug must cost this connection only, never the process.
        this.close(XdsErrorCode.Internal, `internal error handling ${message.type}: ${(err as Error).message}`);
        return;
      }
    }
  }

  private fail(err: unknown): void {
    if (err instanceof XdsError) this.close(err.code, err.message);
    else this.close(XdsErrorCode.MalformedFrame, `malformed frame: ${(err as Error)?.message ?? String(err)}`);
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    if (this.graceTimer) this.options.clock.clearTimeout(this.graceTimer);
    this.options.onClose(this.closeInfo ?? { initiator: 'peer', reason: 'connection closed by peer' });
  }
}
