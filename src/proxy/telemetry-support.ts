/**
 * What the proxy adds around the telemetry library to keep the request path cheap: decoded
 * peer metadata remembered by header value (a peer sends the same value on every request).
 */
import { decodePeerMetadata, PEER_METADATA_HEADER, type PeerMetadata } from '../telemetry/peer-metadata.js';

/** Distinct peer values remembered; a peer that varies its value only costs a decode each time. */
const MAX_CACHED_PEERS = 256;

export class PeerMetadataCache {
  private readonly cache = new Map<string, PeerMetadata | undefined>();

  /**
   * The peer's metadata from its exchange header, frozen and shared between requests. The
   * caller removes the exchange headers (withoutPeerMetadataHeaders): the app never sees them.
   */
  read(headers: Readonly<Record<string, string | string[] | undefined>>): PeerMetadata | undefined {
    const raw = headers[PEER_METADATA_HEADER];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string') return decodePeerMetadata(raw);
    const hit = this.cache.get(raw);
    if (hit !== undefined || this.cache.has(raw)) return hit;
    const decoded = decodePeerMetadata(raw);
    const md = decoded && Object.freeze(decoded);
    // Bounded against a client that sends a new value each time: start over when full.
    if (this.cache.size >= MAX_CACHED_PEERS) this.cache.clear();
    this.cache.set(raw, md);
    return md;
  }
}
