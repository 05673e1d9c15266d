/**
 * Locality-aware load balancing (Istio `localityLbSetting`, Envoy priorities and locality
 * weights). Two modes:
 *
 * - Failover (the default when enabled): endpoints get a priority by how close they are to
 *   the proxy — same region/zone/subzone 0, same zone 1, same region 2, the region named by a
 *   matching `failover` rule next, everything else last — or, with `failoverPriority`, by how
 *   many of the listed labels they share with the proxy in order. Traffic goes to the lowest
 *   priority that has a healthy endpoint. (Envoy spills traffic gradually with an
 *   overprovisioning factor of 1.4; we switch a whole level once it has no healthy endpoint.)
 * - Distribute: the first `distribute` rule whose `from` matches the proxy's locality splits
 *   traffic between target localities by weight; endpoints outside every target get nothing.
 */
import type { LocalityLb } from '../../api/proxy-config.js';

export interface LocalityHost {
  readonly locality?: string;
  readonly labels: Readonly<Record<string, string>>;
}

export type LocalityPlan<H> =
  | { kind: 'flat'; hosts: readonly H[] }
  | { kind: 'priority'; hosts: readonly H[] }
  | { kind: 'distribute'; groups: { hosts: readonly H[]; weight: number }[]; total: number };

/** Splits `region/zone/subzone` (missing parts are empty). */
export function parseLocality(locality: string | undefined): [string, string, string] {
  const [region = '', zone = '', subzone = ''] = (locality ?? '').split('/');
  return [region, zone, subzone];
}

/** Istio locality patterns: `*` matches anything at its level and below; missing levels match all. */
export function localityMatches(pattern: string, locality: string | undefined): boolean {
  const want = pattern.split('/');
  const have = parseLocality(locality);
  for (let i = 0; i < Math.min(want.length, 3); i++) {
    if (want[i] === '*') return true;
    if (want[i] !== have[i]) return false;
  }
  return true;
}

const LABEL_REGION = 'topology.kubernetes.io/region';
const LABEL_ZONE = 'topology.kubernetes.io/zone';
const LABEL_SUBZONE = 'topology.istio.io/subzone';

function labelOf(labels: Readonly<Record<string, string>>, locality: string | undefined, key: string): string | undefined {
  const [region, zone, subzone] = parseLocality(locality);
  if (key === LABEL_REGION) return region || labels[key];
  if (key === LABEL_ZONE) return zone || labels[key];
  if (key === LABEL_SUBZONE) return subzone || labels[key];
  return labels[key];
}

/** The priority of one endpoint relative to the proxy (0 = closest). */
export function localityPriority(host: LocalityHost, lb: LocalityLb, selfLabels: Readonly<Record<string, string>>): number {
  if (lb.failoverPriority && lb.failoverPriority.length > 0) {
    // Istio: an endpoint matching the first n listed labels gets priority (len - n).
    let matched = 0;
    for (const key of lb.failoverPriority) {
      const mine = labelOf(selfLabels, lb.self, key);
      if (mine === undefined || labelOf(host.labels, host.locality, key) !== mine) break;
      matched++;
    }
    return lb.failoverPriority.length - matched;
  }
  const [sr, sz, ss] = parseLocality(lb.self);
  const [r, z, s] = parseLocality(host.locality);
  if (r === sr && z === sz && s === ss) return 0;
  if (r === sr && z === sz) return 1;
  if (r === sr) return 2;
  const rule = lb.failover?.find((f) => f.from === sr);
  if (rule) return r === rule.to ? 3 : 4;
  return 3;
}

/**
 * Plans how `eligible` (the healthy, non-ejected hosts) are balanced. `all` is the full
 * endpoint list; priorities are fixed by locality, so only eligibility decides the level.
 */
export function planLocality<H extends LocalityHost>(
  eligible: readonly H[],
  lb: LocalityLb | undefined,
  selfLabels: Readonly<Record<string, string>>,
): LocalityPlan<H> {
  if (!lb || !lb.enabled || (!lb.self && !(lb.failoverPriority && lb.failoverPriority.length))) {
    return { kind: 'flat', hosts: eligible };
  }
  const rule = lb.distribute?.find((d) => localityMatches(d.from, lb.self));
  if (rule) {
    const groups: { hosts: H[]; weight: number }[] = [];
    const targets = Object.entries(rule.to);
    const byTarget = targets.map(() => [] as H[]);
    for (const h of eligible) {
      const i = targets.findIndex(([pattern]) => localityMatches(pattern, h.locality));
      if (i >= 0) byTarget[i].push(h);
    }
    let total = 0;
    targets.forEach(([, weight], i) => {
      if (weight > 0 && byTarget[i].length > 0) {
        groups.push({ hosts: byTarget[i], weight });
        total += weight;
      }
    });
    return { kind: 'distribute', groups, total };
  }
  let best = Infinity;
  let level: H[] = [];
  for (const h of eligible) {
    const p = localityPriority(h, lb, selfLabels);
    if (p < best) {
      best = p;
      level = [h];
    } else if (p === best) {
      level.push(h);
    }
  }
  return { kind: 'priority', hosts: level };
}
