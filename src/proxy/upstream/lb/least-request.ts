/**
 * LEAST_REQUEST (LEAST_CONN is Istio's deprecated alias; the compiler maps it here).
 *
 * Equal weights: Envoy's "power of two choices" — draw `choiceCount` (default 2) hosts and take
 * the one with fewer active requests. We draw distinct hosts (as linkerd2-proxy's P2C does)
 * rather than with replacement, so the busiest host is never chosen while another exists.
 * Unequal weights or slow start: Envoy's weighted mode, where a host's effective weight is
 * weight / (active + 1) (active_request_bias 1.0), drawn in proportion.
 */
import type { Clock } from '../../../core/clock.js';
import type { Random } from '../../../core/random.js';
import type { PickContext } from '../types.js';
import { effectiveWeight, equalWeights, withoutExcluded, type Balancer, type LbHost } from './types.js';

export class LeastRequestBalancer implements Balancer {
  private lastHosts: readonly LbHost[] | undefined;
  private lastEqual = true;

  constructor(
    private readonly random: Random,
    private readonly clock: Clock,
    private readonly choiceCount = 2,
    private readonly warmupMs?: number,
  ) {}

  pick(all: readonly LbHost[], ctx: PickContext): LbHost | undefined {
    const hosts = withoutExcluded(all, ctx.exclude);
    const n = hosts.length;
    if (n === 0) return undefined;
    if (n === 1) return hosts[0];
    if (hosts !== this.lastHosts) {
      this.lastHosts = hosts;
      this.lastEqual = equalWeights(hosts);
    }
    if (this.lastEqual && !this.warmupMs) return this.pickChoices(hosts);
    return this.pickWeighted(hosts);
  }

  private pickChoices(hosts: readonly LbHost[]): LbHost {
    const n = hosts.length;
    const choices = Math.min(Math.max(2, this.choiceCount), n);
    if (choices >= n) {
      // Every host is a candidate: take the least loaded, ties broken at random.
      // Scanning from a random start makes the first least-loaded host found a random one.
      const start = Math.floor(this.random.next() * n);
      let best = hosts[start];
      for (let i = 1; i < n; i++) {
        const h = hosts[(start + i) % n];
        if (h.activeRequests < best.activeRequests) best = h;
      }
      return best;
    }
    // Distinct draws by partial Fisher-Yates over indices, without allocating for choices = 2.
    const first = Math.floor(this.random.next() * n);
    let best = hosts[first];
    if (choices === 2) {
      let second = Math.floor(this.random.next() * (n - 1));
      if (second >= first) second++;
      const other = hosts[second];
      return other.activeRequests < best.activeRequests ? other : best;
    }
    const idx = Array.from({ length: n }, (_, i) => i);
    idx[first] = 0;
    idx[0] = first;
    for (let c = 1; c < choices; c++) {
      const j = c + Math.floor(this.random.next() * (n - c));
      const t = idx[c];
      idx[c] = idx[j];
      idx[j] = t;
      const h = hosts[idx[c]];
      if (h.activeRequests < best.activeRequests) best = h;
    }
    return best;
  }

  private pickWeighted(hosts: readonly LbHost[]): LbHost {
    const now = this.clock.monotonic();
    let total = 0;
    const weights = new Float64Array(hosts.length);
    for (let i = 0; i < hosts.length; i++) {
      const w = effectiveWeight(hosts[i], now, this.warmupMs) / (hosts[i].activeRequests + 1);
      weights[i] = w;
      total += w;
    }
    let target = this.random.next() * total;
    for (let i = 0; i < hosts.length; i++) {
      target -= weights[i];
      if (target < 0) return hosts[i];
    }
    return hosts[hosts.length - 1];
  }
}
