/** RANDOM: a uniform (or weight-proportional) random host from the injected Random. */
import type { Random } from '../../../core/random.js';
import type { PickContext } from '../types.js';
import { equalWeights, withoutExcluded, type Balancer, type LbHost } from './types.js';

export class RandomBalancer implements Balancer {
  private lastHosts: readonly LbHost[] | undefined;
  private cumulative: Float64Array | undefined;

  constructor(private readonly random: Random) {}

  pick(all: readonly LbHost[], ctx: PickContext): LbHost | undefined {
    const hosts = withoutExcluded(all, ctx.exclude);
    const n = hosts.length;
    if (n === 0) return undefined;
    if (n === 1) return hosts[0];
    if (hosts !== this.lastHosts) {
      this.lastHosts = hosts;
      this.cumulative = equalWeights(hosts) ? undefined : cumulativeWeights(hosts);
    }
    const cumulative = this.cumulative;
    if (!cumulative) return hosts[Math.floor(this.random.next() * n)];
    const target = this.random.next() * cumulative[n - 1];
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return hosts[lo];
  }
}

function cumulativeWeights(hosts: readonly LbHost[]): Float64Array {
  const out = new Float64Array(hosts.length);
  let sum = 0;
  for (let i = 0; i < hosts.length; i++) {
    sum += Math.max(0, hosts[i].weight);
    out[i] = sum;
  }
  return out;
}
