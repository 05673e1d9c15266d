/**
 * The walk over a DestinationRule's traffic policies, with their paths, that validation,
 * analysis and the not-enforced report share: the top level, each of its ports, then each
 * subset and its ports.
 */
import type { DestinationRuleSpec, PortTrafficPolicy, TrafficPolicy } from '../api/resources/index.js';
import type { FieldPath } from '../core/path.js';

/** Every traffic policy of a DestinationRule (top level, its ports, each subset and its ports), with its path. */
export function* trafficPolicies(spec: DestinationRuleSpec): Generator<{ policy: TrafficPolicy | PortTrafficPolicy; path: FieldPath }> {
  const levels: { policy: TrafficPolicy | undefined; path: FieldPath }[] = [{ policy: spec.trafficPolicy, path: ['spec', 'trafficPolicy'] }];
  for (const [i, subset] of (spec.subsets ?? []).entries()) levels.push({ policy: subset.trafficPolicy, path: ['spec', 'subsets', i, 'trafficPolicy'] });
  for (const { policy, path } of levels) {
    if (!policy) continue;
    yield { policy, path };
    for (const [j, port] of (policy.portLevelSettings ?? []).entries()) yield { policy: port, path: [...path, 'portLevelSettings', j] };
  }
}
