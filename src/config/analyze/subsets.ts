/** SNW1001: a route names a subset that no applicable DestinationRule defines. */
import type { Diagnostic } from '../../api/diagnostics.js';
import { didYouMean } from '../../core/suggest.js';
import { resolveShortName } from '../../semantics/names.js';
import { finding, destinationsOf, nameOf, ofKind, type Analyzer, type VirtualService } from './common.js';
import { DestinationRuleIndex } from './destination-rules.js';

export const analyzeSubsets: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const index = new DestinationRuleIndex(resources);
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) {
    for (const { destination, path } of destinationsOf(vs)) {
      const subset = destination.subset;
      if (!subset || !destination.host) continue;
      const fqdn = resolveShortName(destination.host, vs.metadata.namespace);
      const rules = index.applicable(fqdn, vs.metadata.namespace);
      const defined = rules.flatMap((dr) => (dr.spec.subsets ?? []).map((s) => s.name));
      if (defined.includes(subset)) continue;
      const message =
        rules.length === 0
          ? `subset "${subset}" of host ${fqdn} is not defined: no DestinationRule applies to that host; requests on this route fail with 503 until one defines it`
          : `subset "${subset}" is not defined by ${rules.map(nameOf).join(', ')} for host ${fqdn}` +
            (defined.length ? ` (it defines ${defined.map((s) => `"${s}"`).join(', ')})` : ' (it defines no subsets)') +
            didYouMean(subset, defined);
      out.push(finding(vs, 'SNW1001', [...path, 'subset'], message));
    }
  }
  return out;
};
