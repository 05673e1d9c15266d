/**
 * SNW1004: a subset name defined twice for one host in one namespace.
 * SNW1005: several DestinationRules for one host in one namespace.
 */
import type { Diagnostic } from '../../api/diagnostics.js';
import { resolveShortName } from '../../semantics/names.js';
import { finding, nameOf, ofKind, type Analyzer, type DestinationRule } from './common.js';

export const analyzeDestinationRuleConflicts: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  // Rules with a workloadSelector apply to chosen clients only; several of them per host is
  // how Istio expects them to be used, so they are grouped apart by selector.
  const groups = new Map<string, DestinationRule[]>();
  for (const dr of ofKind<DestinationRule>(resources, 'DestinationRule')) {
    const selector = dr.spec.workloadSelector ? JSON.stringify(dr.spec.workloadSelector.matchLabels ?? {}) : '';
    const key = `${dr.metadata.namespace}|${resolveShortName(dr.spec.host, dr.metadata.namespace)}|${selector}`;
    const group = groups.get(key);
    if (group) group.push(dr);
    else groups.set(key, [dr]);
  }
  for (const group of groups.values()) {
    const first = group[0];
    const fqdn = resolveShortName(first.spec.host, first.metadata.namespace);
    for (const dr of group.slice(1)) {
      out.push(
        finding(dr, 'SNW1005', ['spec', 'host'], `${nameOf(first)} also applies to host ${fqdn} in namespace ${dr.metadata.namespace}; Istio merges them, the older one winning each conflict`),
      );
    }
    const seen = new Map<string, DestinationRule>();
    for (const dr of group) {
      for (const [i, subset] of (dr.spec.subsets ?? []).entries()) {
        const earlier = seen.get(subset.name);
        if (earlier) {
          const where = earlier === dr ? 'earlier in this DestinationRule' : `by ${nameOf(earlier)}`;
          out.push(finding(dr, 'SNW1004', ['spec', 'subsets', i, 'name'], `subset "${subset.name}" of host ${fqdn} is already defined ${where}; only one of them takes effect`));
        } else {
          seen.set(subset.name, dr);
        }
      }
    }
  }
  return out;
};
