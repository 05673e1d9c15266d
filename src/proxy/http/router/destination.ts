/** The route's weighted destination choice (DESIGN.md behaviour 2), by a point in [0, 1). */
import type { WeightedCluster } from '../../../api/proxy-config.js';
import type { CompiledWeighted } from '../route-table.js';

/** Chooses by a point in [0, 1): the destination whose cumulative interval holds point x total. */
export function chooseDestination(w: CompiledWeighted, point: number): WeightedCluster {
  const d = w.destinations;
  if (d.length === 1) return d[0];
  const x = point * w.total;
  for (let i = 0; i < d.length; i++) if (x < w.cumulative[i]) return d[i];
  // point rounding at the top end: the last destination with a weight.
  for (let i = d.length - 1; i >= 0; i--) if (d[i].weight > 0) return d[i];
  return d[d.length - 1];
}

/** A request hash mapped to [0, 1): the sticky canary position of this user. */
export function stickyPoint(hash: number): number {
  return (hash % 1_000_003) / 1_000_003;
}
