/** Builds the balancer a cluster's `lb.policy` names. */
import type { LoadBalancer } from '../../../api/proxy-config.js';
import type { Clock } from '../../../core/clock.js';
import type { Random } from '../../../core/random.js';
import { LeastRequestBalancer } from './least-request.js';
import { MaglevBalancer } from './maglev.js';
import { RandomBalancer } from './random.js';
import { RingHashBalancer } from './ring-hash.js';
import { RoundRobinBalancer } from './round-robin.js';
import type { Balancer } from './types.js';

export type { Balancer, LbHost } from './types.js';
export { withoutExcluded, effectiveWeight } from './types.js';
export { OriginalDstBalancer } from './passthrough.js';
export { DEFAULT_MIN_RING_SIZE } from './ring-hash.js';
export { DEFAULT_MAGLEV_TABLE_SIZE } from './maglev.js';

export interface BalancerDeps {
  random: Random;
  clock: Clock;
}

/**
 * A balancer for one of the endpoint-list policies. PASSTHROUGH has no endpoint list; the
 * cluster builds an OriginalDstBalancer for it, so it falls back to round robin here.
 */
export function createBalancer(lb: LoadBalancer, deps: BalancerDeps): Balancer {
  switch (lb.policy) {
    case 'LEAST_REQUEST':
      return new LeastRequestBalancer(deps.random, deps.clock, lb.choiceCount ?? 2, lb.warmupMs);
    case 'RANDOM':
      return new RandomBalancer(deps.random);
    case 'RING_HASH':
      return new RingHashBalancer(deps.random, lb.minimumRingSize);
    case 'MAGLEV':
      return new MaglevBalancer(deps.random, lb.tableSize);
    case 'ROUND_ROBIN':
    case 'PASSTHROUGH':
    default:
      return new RoundRobinBalancer(deps.random, deps.clock, lb.warmupMs);
  }
}

/** True for a prime (Maglev's table size must be one). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}
