/** SNW1007: the weights of a split route do not add up to 100. */
import type { Diagnostic } from '../../api/diagnostics.js';
import { finding, ofKind, type Analyzer, type VirtualService } from './common.js';

export const analyzeRouteWeights: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) {
    for (const section of ['http', 'tls', 'tcp'] as const) {
      for (const [i, rule] of (vs.spec[section] ?? []).entries()) {
        const route = rule.route ?? [];
        // A lone destination gets everything whatever its weight (DESIGN.md behaviour 2).
        if (route.length < 2) continue;
        const weights = route.map((r) => r.weight ?? 0);
        const sum = weights.reduce((a, b) => a + b, 0);
        if (sum === 100) continue;
        const split = sum > 0 ? `traffic is split ${weights.map((w) => `${((100 * w) / sum).toFixed(1).replace(/\.0$/, '')}%`).join('/')} in proportion` : 'no destination has a weight';
        out.push(finding(vs, 'SNW1007', ['spec', section, i, 'route'], `the weights of the ${route.length} destinations add up to ${sum}, not 100 (${weights.join(' + ')}); ${split}`));
      }
    }
  }
  return out;
};
