/**
 * One proxy's push session, whatever carries it: what the server last sent it (version,
 * nonce, content), what it acknowledged, its last NACK, and whether the next push may be a
 * delta. Envoy's ADS keeps the same per-stream state (version_info, response_nonce, the last
 * ACKed version per type), so a gRPC transport can reuse this as it is; only the encoding of
 * a push is the transport's (jsonl-transport.ts).
 *
 * Versions are `<counter>-<hash>` (protocol.ts): the counter is shared by every session of a
 * server (`PushVersions`) so versions order pushes across reconnects, and the hash names the
 * content so a proxy that already holds it is not sent it again.
 */
import type { ProxyNode } from '../api/proxy-config.js';
import type { Clock } from '../core/clock.js';
import { contentHash } from './content.js';
import type { ConfigContent } from './content.js';
import { formatVersion, parseVersion } from './protocol.js';

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED';

/** One connected proxy, as `sinew proxy-status` shows it. Times are `clock.now()` milliseconds. */
export interface ProxyStatus {
  /** Unique per connection: a proxy that reconnects gets a new one. */
  connectionId: string;
  node: ProxyNode;
  /** `host:port` the proxy connects from. */
  peer: string;
  connectedSince: number;
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: number;
  /** Whether the last thing sent was the whole config or a delta, and its frame's size. */
  sentKind?: 'full' | 'delta';
  sentBytes?: number;
  ackedVersion?: string;
  ackedAt?: number;
  lastNack?: { version: string; reason: string; at: number };
  state: SyncState;
}

/** A push the session decided on; the transport encodes and sends it. */
export interface OutgoingPush {
  version: string;
  nonce: string;
  hash: string;
  content: ConfigContent;
  /** The content the proxy holds and its version, when the push may be sent as a delta from it. */
  base?: { version: string; content: ConfigContent };
}

/** The version counter and nonces of one server, shared by its sessions. */
export class PushVersions {
  private counter = 0;
  private nonces = 0;

  next(hash: string): string {
    return formatVersion(++this.counter, hash);
  }

  nonce(): string {
    return `n${++this.nonces}`;
  }

  /** Keeps versions monotonic past one a reconnecting proxy reports. */
  observe(counter: number): void {
    this.counter = Math.max(this.counter, counter);
  }
}

export class ProxySession {
  sentVersion?: string;
  sentHash?: string;
  /** The content of `sentVersion`, when known: the base of the next delta. */
  sent?: ConfigContent;
  /** False when the next push must be whole: after a NACK or a resync, or for a protocol 1 proxy. */
  deltaOk: boolean;
  sentKind?: 'full' | 'delta';
  sentBytes?: number;
  sentNonce?: string;
  sentAt?: number;
  sentAtMonotonic?: number;
  ackedVersion?: string;
  ackedAt?: number;
  lastNack?: { version: string; reason: string; at: number };

  /**
   * A session for a proxy that said HELLO. One that held config across a control-plane
   * restart reports its version: its content is treated as already sent and acknowledged, so
   * an identical config is not pushed again. The content itself is not known until a build
   * hashes the same (`plan`), so until then no delta can be based on it.
   */
  constructor(
    readonly connectionId: string,
    readonly peer: string,
    readonly connectedSince: number,
    readonly node: ProxyNode,
    readonly protocol: number,
    held: { version: string; versions: PushVersions; at: number } | undefined,
  ) {
    const version = held ? parseVersion(held.version) : undefined;
    if (held && version) {
      held.versions.observe(version.counter);
      this.sentVersion = held.version;
      this.sentHash = version.hash;
      this.ackedVersion = held.version;
      this.ackedAt = held.at;
    }
    this.deltaOk = protocol >= 2;
  }

  /**
   * What to send for `content`: nothing when the proxy was last sent the same content, else
   * a push with a new version, based on what the proxy holds when a delta may be sent.
   * `whole` forces a whole push even of unchanged content (a resync).
   */
  plan(content: ConfigContent, versions: PushVersions, whole = false): OutgoingPush | 'unchanged' {
    const sent = this.sent;
    // The same objects as last time: nothing to hash (a class the change did not touch).
    if (!whole && sent && sent.own === content.own && sent.shared === content.shared) return 'unchanged';
    const hash = contentHash(content);
    if (!whole && hash === this.sentHash) {
      // Equal content in new objects: keep these, so the next build is recognised by identity
      // (and the proxy, which holds this content, can take the next change as a delta).
      this.sent = content;
      return 'unchanged';
    }
    const push: OutgoingPush = { version: versions.next(hash), nonce: versions.nonce(), hash, content };
    if (!whole && this.deltaOk && sent && this.sentVersion !== undefined) push.base = { version: this.sentVersion, content: sent };
    return push;
  }

  /** Records that `push` went out, as `kind`, in a frame of `bytes`. */
  sentPush(push: OutgoingPush, kind: 'full' | 'delta', bytes: number, clock: Clock): void {
    this.sentVersion = push.version;
    this.sentHash = push.hash;
    this.sent = push.content;
    this.deltaOk = this.protocol >= 2;
    this.sentNonce = push.nonce;
    this.sentKind = kind;
    this.sentBytes = bytes;
    this.sentAt = clock.now();
    this.sentAtMonotonic = clock.monotonic();
  }

  /**
   * An ACK: true when it answers the latest push (then the proxy serves `version`). Answers
   * to an older push are stale, a newer one is on its way (pilot ignores stale nonces).
   */
  acked(version: string, nonce: string, now: number): boolean {
    if (nonce !== this.sentNonce) return false;
    this.ackedVersion = version;
    this.ackedAt = now;
    return true;
  }

  /** A NACK: true when it answers the latest push. The next push is whole. */
  nacked(nonce: string, reason: string, now: number): boolean {
    if (nonce !== this.sentNonce) return false;
    this.lastNack = { version: this.sentVersion ?? '', reason, at: now };
    // The proxy still holds what it rejected, but a whole push after a NACK leaves no doubt
    // about what the next version is built on.
    this.deltaOk = false;
    return true;
  }

  /** The proxy cannot use a delta and waits for the whole config. */
  resyncRequested(): void {
    this.deltaOk = false;
  }

  get state(): SyncState {
    if (this.sentVersion !== undefined && this.ackedVersion === this.sentVersion) return 'SYNCED';
    if (this.lastNack && this.lastNack.version === this.sentVersion) return 'NACKED';
    return 'STALE';
  }

  status(): ProxyStatus {
    const status: ProxyStatus = { connectionId: this.connectionId, node: this.node, peer: this.peer, connectedSince: this.connectedSince, state: this.state };
    if (this.sentVersion !== undefined) status.sentVersion = this.sentVersion;
    if (this.sentNonce !== undefined) status.sentNonce = this.sentNonce;
    if (this.sentAt !== undefined) status.sentAt = this.sentAt;
    if (this.sentKind !== undefined) status.sentKind = this.sentKind;
    if (this.sentBytes !== undefined) status.sentBytes = this.sentBytes;
    if (this.ackedVersion !== undefined) status.ackedVersion = this.ackedVersion;
    if (this.ackedAt !== undefined) status.ackedAt = this.ackedAt;
    if (this.lastNack) status.lastNack = { ...this.lastNack };
    return status;
  }
}
