/**
 * RING_HASH (Ketama-style consistent hashing, Envoy's ring_hash_lb). Each host gets entries on
 * a ring in proportion to its weight, at hash(`host:port_i`); a request goes to the first entry
 * at or after its hash, wrapping. When a host leaves, only the keys that pointed at it move
 * (about 1/N of them). `minimumRingSize` (Envoy default 1024) is the number of entries of the
 * lightest host (see buildRing for how this differs from Envoy).
 */
import type { Random } from '../../../core/random.js';
import { HASH_SPACE, hashString, normalizeHash } from '../hash.js';
import type { PickContext } from '../types.js';
import type { Balancer, LbHost } from './types.js';

/** Envoy's defaults: minimum_ring_size 1024, maximum_ring_size 8M. */
export const DEFAULT_MIN_RING_SIZE = 1024;
/** Upper bound on ring entries (2 MB of positions), reached past 256 equal hosts at the default size. */
const MAX_RING_ENTRIES = 1 << 18;

interface Ring {
  positions: Float64Array;
  hostIndex: Int32Array;
}

export class RingHashBalancer implements Balancer {
  private readonly rings = new WeakMap<readonly LbHost[], Ring>();

  constructor(
    private readonly random: Random,
    private readonly minimumRingSize = DEFAULT_MIN_RING_SIZE,
  ) {}

  pick(hosts: readonly LbHost[], ctx: PickContext): LbHost | undefined {
    const n = hosts.length;
    if (n === 0) return undefined;
    let ring = this.rings.get(hosts);
    if (!ring) {
      ring = buildRing(hosts, this.minimumRingSize);
      this.rings.set(hosts, ring);
    }
    const size = ring.positions.length;
    if (size === 0) return undefined;
    // No hash (the policy's input was missing): Envoy picks a random ring entry.
    const hash = ctx.hash === undefined ? Math.floor(this.random.next() * HASH_SPACE) : normalizeHash(ctx.hash);
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring.positions[mid] < hash) lo = mid + 1;
      else hi = mid;
    }
    const start = lo === size ? 0 : lo;
    const chosen = hosts[ring.hostIndex[start]];
    const exclude = ctx.exclude;
    if (!exclude || exclude.size === 0 || !exclude.has(chosen.key)) return chosen;
    // Retry avoiding previous hosts: walk the ring to the next host not yet tried, so the
    // fallback is as stable as the first choice.
    for (let step = 1; step < size; step++) {
      const h = hosts[ring.hostIndex[(start + step) % size]];
      if (!exclude.has(h.key)) return h;
    }
    return chosen;
  }
}

function buildRing(hosts: readonly LbHost[], minimumRingSize: number): Ring {
  let sum = 0;
  let minWeight = Infinity;
  for (const h of hosts) {
    if (h.weight <= 0) continue;
    sum += h.weight;
    minWeight = Math.min(minWeight, h.weight);
  }
  if (sum <= 0) return { positions: new Float64Array(0), hostIndex: new Int32Array(0) };
  // Envoy sizes the whole ring to minimum_ring_size, so every membership change resizes every
  // host's share and moves about twice the 1/N keys consistent hashing promises. Here the
  // lightest host gets `minimumRingSize` entries and the others proportionally more, so a
  // host's entries depend only on its own address and weight and a leaving host moves only
  // its own keys; large clusters are scaled down to keep the ring within MAX_RING_ENTRIES.
  let perUnit = Math.max(1, minimumRingSize) / minWeight;
  if (perUnit * sum > MAX_RING_ENTRIES) perUnit = MAX_RING_ENTRIES / sum;
  let total = 0;
  const counts = hosts.map((h) => (h.weight > 0 ? Math.max(1, Math.ceil(perUnit * h.weight)) : 0));
  for (const c of counts) total += c;
  const positions = new Float64Array(total);
  const owner = new Map<number, number>();
  let at = 0;
  for (let i = 0; i < hosts.length; i++) {
    const prefix = `${hosts[i].address.host}:${hosts[i].address.port}_`;
    for (let j = 0; j < counts[i]; j++) {
      const pos = hashString(prefix + j);
      // Two hosts on one point (1 in 2^53 per pair): the earlier host keeps it.
      if (!owner.has(pos)) owner.set(pos, i);
      positions[at++] = pos;
    }
  }
  positions.sort(); // typed arrays sort numerically, natively
  const hostIndex = new Int32Array(total);
  for (let i = 0; i < total; i++) hostIndex[i] = owner.get(positions[i])!;
  return { positions, hostIndex };
}
