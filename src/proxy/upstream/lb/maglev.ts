/**
 * MAGLEV (Google's Maglev consistent hashing, Envoy's maglev_lb): a lookup table of a prime
 * size (default 65537) filled by each host's permutation (offset + skip * j) mod M, in
 * weighted turns. Lookup is one modulo; on a host change only a small share of slots move.
 * The compiler rejects a table size that is not prime.
 */
import type { Random } from '../../../core/random.js';
import { HASH_SPACE, hashString, normalizeHash } from '../hash.js';
import type { PickContext } from '../types.js';
import type { Balancer, LbHost } from './types.js';

export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;

export class MaglevBalancer implements Balancer {
  private readonly tables = new WeakMap<readonly LbHost[], Int32Array>();

  constructor(
    private readonly random: Random,
    private readonly tableSize = DEFAULT_MAGLEV_TABLE_SIZE,
  ) {}

  pick(hosts: readonly LbHost[], ctx: PickContext): LbHost | undefined {
    if (hosts.length === 0) return undefined;
    let table = this.tables.get(hosts);
    if (!table) {
      table = buildTable(hosts, this.tableSize);
      this.tables.set(hosts, table);
    }
    const size = table.length;
    const hash = ctx.hash === undefined ? Math.floor(this.random.next() * HASH_SPACE) : normalizeHash(ctx.hash);
    const start = hash % size;
    const first = table[start];
    if (first < 0) return undefined;
    const chosen = hosts[first];
    const exclude = ctx.exclude;
    if (!exclude || exclude.size === 0 || !exclude.has(chosen.key)) return chosen;
    // Retry avoiding previous hosts: probe the following slots, which belong to other hosts
    // in table proportion.
    for (let step = 1; step < size; step++) {
      const h = hosts[table[(start + step) % size]];
      if (!exclude.has(h.key)) return h;
    }
    return chosen;
  }
}

/** Envoy's weighted table build (MaglevTable::constructMaglevTableInternal). */
function buildTable(hosts: readonly LbHost[], size: number): Int32Array {
  const table = new Int32Array(size).fill(-1);
  const live: { idx: number; offset: number; skip: number; next: number; weight: number; target: number }[] = [];
  let maxWeight = 0;
  let sum = 0;
  for (const h of hosts) sum += Math.max(0, h.weight);
  if (sum <= 0) return table;
  for (let i = 0; i < hosts.length; i++) {
    const h = hosts[i];
    if (h.weight <= 0) continue;
    const key = `${h.address.host}:${h.address.port}`;
    const weight = h.weight / sum;
    maxWeight = Math.max(maxWeight, weight);
    live.push({ idx: i, offset: hashString(key, 0) % size, skip: (hashString(key, 1) % (size - 1)) + 1, next: 0, weight, target: 0 });
  }
  let filled = 0;
  for (let iteration = 1; filled < size; iteration++) {
    for (let i = 0; i < live.length && filled < size; i++) {
      const e = live[i];
      // A host with the maximum weight places an entry every iteration; one with a third of it,
      // every third iteration (Envoy's target_weight bookkeeping).
      if (iteration * e.weight < e.target) continue;
      e.target += maxWeight;
      let c = (e.offset + e.skip * e.next) % size;
      while (table[c] >= 0) {
        e.next++;
        c = (e.offset + e.skip * e.next) % size;
      }
      table[c] = e.idx;
      e.next++;
      filled++;
    }
  }
  return table;
}
