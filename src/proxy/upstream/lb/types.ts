/**
 * The one interface every load balancer implements (STYLE.md 17: one conformance suite runs
 * against all of them). A balancer sees only the hosts the cluster has already found eligible
 * (healthy, not ejected, in the chosen locality/priority) and picks one.
 */
import type { Address } from '../../../api/proxy-config.js';
import type { PickContext } from '../types.js';

/** What a balancer knows about an endpoint. The cluster's host objects satisfy it. */
export interface LbHost {
  /** `host:port`. */
  readonly key: string;
  readonly address: Address;
  /** Configured relative weight (>= 1 unless set otherwise). */
  readonly weight: number;
  /** Leases currently outstanding (LEAST_REQUEST). */
  readonly activeRequests: number;
  /** When the host joined the cluster (clock ms), for slow start. */
  readonly addedAt: number;
}

export interface Balancer {
  /**
   * Picks a host, or undefined when `hosts` is empty. `ctx.exclude` names hosts an earlier
   * attempt used (retry "previous hosts"): they are avoided while any other host is left.
   * The same array object is passed for as long as the set is unchanged, so balancers may
   * cache derived structures (rings, tables) by array identity.
   */
  pick(hosts: readonly LbHost[], ctx: PickContext): LbHost | undefined;
}

/**
 * The hosts minus the excluded ones, unless that leaves nothing: then all of them (Envoy's
 * retry host predicate gives up after its attempts and takes what it got).
 */
export function withoutExcluded<T extends LbHost>(hosts: readonly T[], exclude: ReadonlySet<string> | undefined): readonly T[] {
  if (!exclude || exclude.size === 0) return hosts;
  let any = false;
  for (let i = 0; i < hosts.length; i++) {
    if (exclude.has(hosts[i].key)) {
      any = true;
      break;
    }
  }
  if (!any) return hosts;
  const kept = hosts.filter((h) => !exclude.has(h.key));
  return kept.length ? kept : hosts;
}

/** True when every host has the same weight (the balancers' fast path). */
export function equalWeights(hosts: readonly LbHost[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i].weight !== hosts[0].weight) return false;
  return true;
}

/**
 * Slow start (Envoy `slow_start_config`, Istio `warmupDurationSecs`): a new host's weight
 * ramps linearly from 10% (Envoy's default min_weight_percent) to 100% over `warmupMs`.
 */
export function effectiveWeight(host: LbHost, now: number, warmupMs: number | undefined): number {
  if (!warmupMs || warmupMs <= 0) return host.weight;
  const age = now - host.addedAt;
  if (age >= warmupMs) return host.weight;
  return host.weight * Math.max(0.1, Math.max(0, age) / warmupMs);
}
