/**
 * Whether a peer's metadata-exchange headers (Istio's `x-envoy-peer-metadata` and `-id`, which
 * fill the `source_*` and `destination_*` labels of the standard metrics) come from a mesh
 * proxy. A plaintext client could send them itself (`source_workload="admin-v1"` was recorded
 * from one), so a proxy trusts them only when the peer proves they are its own.
 *
 * In Istio, mutual TLS carries that proof: the exchange rides on a connection whose peer
 * certificate names the workload. Until Sinew's identity work does the same, the proof is the
 * mesh key the control plane gives every proxy (ProxyConfig.peerMetadataKey): a proxy sends
 * an HMAC-SHA256 of its own exchange headers beside them (`x-sinew-peer-signature`), and a
 * receiving proxy trusts only headers whose HMAC it can verify. Anything else is stripped and
 * ignored, and the request is served as from an unknown peer. A proxy's signature never
 * changes while its key and metadata do not, so it is computed once, and a peer's verified
 * once per distinct value: no per-request cryptography.
 *
 * What the key does not do: a signature is a bearer proof of its proxy's metadata, so anyone
 * who reads it off the wire can replay it (the receiving proxies strip it, and it goes only
 * to mesh destinations); mutual TLS closes that. `PeerIdentity` is the seam: the mTLS work
 * gives it the peer certificate in place of the key.
 */
import type crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type { ProxyConfig } from '../api/proxy-config.js';
import { fieldLine } from '../core/header-lines.js';
import { decodePeerMetadata, PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, type PeerMetadata } from '../telemetry/peer-metadata.js';

// Through require: the ESM view of node:crypto loads WebCrypto (core/random-hex.ts says why).
const { createHmac, timingSafeEqual } = createRequire(import.meta.url)('node:crypto') as typeof crypto;

export const PEER_SIGNATURE_HEADER = 'x-sinew-peer-signature';

/** Every header of the exchange, for stripping. */
export const PEER_EXCHANGE_HEADERS: readonly string[] = [PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, PEER_SIGNATURE_HEADER];

/** Shortest mesh key accepted (HMAC-SHA256 keys are best at 32 bytes; the control plane makes 32). */
export const MIN_MESH_KEY_BYTES = 16;

/** Distinct peer values remembered; a peer that varies its value only costs a check each time. */
const MAX_CACHED_PEERS = 256;

/** A peer's exchange headers as they came, and the verdict on them. */
interface CachedPeer {
  readonly metadata: string;
  readonly id: string;
  readonly signature: string;
  readonly peer: PeerMetadata | undefined;
}

type Headers = Readonly<Record<string, string | string[] | undefined>>;

export interface PeerIdentity {
  /** What this proxy sends beside its own exchange headers, as ready field lines (upstream requests). */
  readonly proofLines: string;
  /** The same as headers (responses of an inbound sidecar). */
  readonly proofHeaders: Readonly<Record<string, string>>;
  /** The peer's metadata when its exchange headers are proven; undefined for anything else. */
  verify(headers: Headers): PeerMetadata | undefined;
}

/** No key: nothing is proven, nothing sent. */
export const NO_PEER_IDENTITY: PeerIdentity = { proofLines: '', proofHeaders: {}, verify: () => undefined };

class MeshKeyIdentity implements PeerIdentity {
  readonly proofLines: string;
  readonly proofHeaders: Readonly<Record<string, string>>;
  /** By metadata value (what a peer sends the same every time): the id and signature that came with it, and the verdict. */
  private readonly cache = new Map<string, CachedPeer>();
  /**
   * The peer seen last, checked before the map: a connection's requests come from one peer, and
   * comparing a header with the string seen last is a memory compare, while a map lookup first
   * hashes the whole header (hundreds of bytes, parsed afresh for every request). That hash was
   * the largest single cost the signed exchange added to an inbound request (1.6 % of the
   * proxy's CPU in a profile at saturation).
   */
  private last: CachedPeer | undefined;

  constructor(
    readonly key: Buffer,
    /** This proxy's own exchange headers (ProxyTelemetry.localPeerHeaders), or none when telemetry is off. */
    readonly local: Readonly<Record<string, string>> | undefined,
  ) {
    const metadata = local?.[PEER_METADATA_HEADER];
    const id = local?.[PEER_METADATA_ID_HEADER];
    if (metadata === undefined || id === undefined) {
      this.proofLines = '';
      this.proofHeaders = {};
      return;
    }
    const signature = this.sign(metadata, id);
    this.proofHeaders = Object.freeze({ [PEER_SIGNATURE_HEADER]: signature });
    // base64url: always a valid field value.
    this.proofLines = fieldLine(PEER_SIGNATURE_HEADER, signature);
  }

  verify(headers: Headers): PeerMetadata | undefined {
    const metadata = headers[PEER_METADATA_HEADER];
    const id = headers[PEER_METADATA_ID_HEADER];
    const signature = headers[PEER_SIGNATURE_HEADER];
    // One of each: a repeated field cannot be the one a proxy sent.
    if (typeof metadata !== 'string' || typeof id !== 'string' || typeof signature !== 'string') return undefined;
    const last = this.last;
    if (last !== undefined && last.metadata === metadata && last.id === id && last.signature === signature) return last.peer;
    const hit = this.cache.get(metadata);
    if (hit !== undefined && hit.id === id && hit.signature === signature) {
      this.last = hit;
      return hit.peer;
    }
    let md: PeerMetadata | undefined;
    const expected = Buffer.from(this.sign(metadata, id));
    const given = Buffer.from(signature);
    if (given.length === expected.length && timingSafeEqual(given, expected)) {
      const decoded = decodePeerMetadata(metadata);
      // The id header names the proxy too; a value that disagrees with the metadata is not one a proxy sent.
      if (decoded !== undefined && (decoded.id === undefined || decoded.id === id)) md = Object.freeze(decoded);
    }
    // Bounded against a client that sends a new value each time: start over when full.
    if (this.cache.size >= MAX_CACHED_PEERS) this.cache.clear();
    const entry: CachedPeer = { metadata, id, signature, peer: md };
    this.cache.set(metadata, entry);
    this.last = entry;
    return md;
  }

  private sign(metadata: string, id: string): string {
    return createHmac('sha256', this.key).update(`sinew-peer-metadata-v1\n${id}\n${metadata}`).digest('base64url');
  }
}

/** The key a config names (already validated by the proxy's compile), as bytes. */
export function meshKeyOf(config: ProxyConfig): Buffer | undefined {
  if (config.peerMetadataKey === undefined) return undefined;
  const secret = config.secrets?.find((s) => s.name === config.peerMetadataKey);
  return secret?.genericSecret === undefined ? undefined : Buffer.from(secret.genericSecret, 'base64');
}

/**
 * The identity check for a config and this proxy's own exchange headers; `previous` is kept
 * (with what it has verified) when neither changed.
 */
export function peerIdentityFor(config: ProxyConfig, local: Readonly<Record<string, string>> | undefined, previous: PeerIdentity): PeerIdentity {
  const key = meshKeyOf(config);
  if (key === undefined) return NO_PEER_IDENTITY;
  if (previous instanceof MeshKeyIdentity && previous.local === local && previous.key.equals(key)) return previous;
  return new MeshKeyIdentity(key, local);
}
