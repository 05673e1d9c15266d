/**
 * ROUND_ROBIN. Equal weights: a plain rotation starting at a random index (Envoy starts each
 * worker at a random offset so a fleet of proxies does not hit the same first host). Unequal
 * weights, or hosts in slow start: smooth weighted round robin (nginx), which interleaves
 * hosts in proportion to weight like Envoy's EDF scheduler does.
 */
import type { Clock } from '../../../core/clock.js';
import { randomInt, type Random } from '../../../core/random.js';
import type { PickContext } from '../types.js';
import { effectiveWeight, equalWeights, withoutExcluded, type Balancer, type LbHost } from './types.js';

export class RoundRobinBalancer implements Balancer {
  private cursor: number;
  /** Smooth-WRR running weights, by host key (survives set changes and retry filtering). */
  private readonly current = new Map<string, number>();
  private lastHosts: readonly LbHost[] | undefined;
  private lastEqual = true;

  constructor(
    random: Random,
    private readonly clock: Clock,
    private readonly warmupMs?: number,
  ) {
    this.cursor = randomInt(random, 1 << 30);
  }

  pick(all: readonly LbHost[], ctx: PickContext): LbHost | undefined {
    const hosts = withoutExcluded(all, ctx.exclude);
    const n = hosts.length;
    if (n === 0) return undefined;
    if (n === 1) return hosts[0];
    if (hosts !== this.lastHosts) {
      this.lastHosts = hosts;
      this.lastEqual = equalWeights(hosts);
    }
    if (this.lastEqual && !this.warmupMs) {
      this.cursor = (this.cursor + 1) % 1073741824;
      return hosts[this.cursor % n];
    }
    const now = this.clock.monotonic();
    let total = 0;
    let best: LbHost | undefined;
    let bestWeight = -Infinity;
    for (let i = 0; i < n; i++) {
      const h = hosts[i];
      const w = effectiveWeight(h, now, this.warmupMs);
      total += w;
      const cw = (this.current.get(h.key) ?? 0) + w;
      this.current.set(h.key, cw);
      if (cw > bestWeight) {
        bestWeight = cw;
        best = h;
      }
    }
    this.current.set(best!.key, bestWeight - total);
    if (this.current.size > n * 4) this.prune(hosts);
    return best;
  }

  private prune(hosts: readonly LbHost[]): void {
    const keep = new Set(hosts.map((h) => h.key));
    for (const key of this.current.keys()) if (!keep.has(key)) this.current.delete(key);
  }
}
