/**
 * Istio's order of configs of one kind (pilot/pkg/model/config.go sortConfigByCreationTime):
 * oldest `creationTimestamp` first, then name, then namespace. The oldest wins where configs
 * conflict: of several VirtualServices claiming one host for sidecars only the oldest is used,
 * at gateways their routes merge in this order, and of several Telemetry resources at one level
 * the oldest applies (DESIGN.md behaviour 12).
 *
 * The config store stamps `creationTimestamp` on every resource it creates, as the Kubernetes
 * API server does. A resource without one (read from a file and never applied) counts as the
 * oldest possible, as Go's zero time does in Istio; name then decides among equals.
 */
import type { Resource } from '../api/resources/meta.js';

/** Milliseconds since the epoch of a resource's creationTimestamp; -Infinity when it has none. */
export function creationTime(r: Pick<Resource, 'metadata'>): number {
  const t = r.metadata.creationTimestamp;
  // Compared as instants, not strings: `2024-01-01T00:00:00Z` (Kubernetes' own, to the second)
  // and `2024-01-01T00:00:00.250Z` (the store's, to the millisecond) sort as the times they are.
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : Number.NaN;
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

/** Sort comparator: the oldest first (creation time, then name, then namespace). */
export function byCreation(a: Pick<Resource, 'metadata'>, b: Pick<Resource, 'metadata'>): number {
  const ta = creationTime(a);
  const tb = creationTime(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (a.metadata.name !== b.metadata.name) return a.metadata.name < b.metadata.name ? -1 : 1;
  return a.metadata.namespace < b.metadata.namespace ? -1 : a.metadata.namespace > b.metadata.namespace ? 1 : 0;
}
