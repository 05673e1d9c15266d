/** SNW1006: an HTTP route after a catch-all route of the same VirtualService. */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { HTTPMatchRequest, HTTPRoute } from '../../api/resources/index.js';
import { finding, ofKind, type Analyzer, type VirtualService } from './common.js';

/** Fields of a match block that do not narrow what it matches. */
const NEUTRAL_MATCH_FIELDS = new Set(['name', 'ignoreUriCase']);

/** A match block that every request satisfies: empty, or only `uri: prefix: /`. */
function matchesEverything(m: HTTPMatchRequest): boolean {
  for (const [key, value] of Object.entries(m)) {
    if (value === undefined || NEUTRAL_MATCH_FIELDS.has(key)) continue;
    if (key === 'uri') {
      const uri = value as Record<string, unknown>;
      const keys = Object.keys(uri).filter((k) => uri[k] !== undefined);
      if (keys.length === 1 && keys[0] === 'prefix' && uri.prefix === '/') continue;
    }
    return false;
  }
  return true;
}

/** Blocks are ORed (DESIGN.md behaviour 1): one block that matches everything is enough. */
export function isCatchAll(rule: HTTPRoute): boolean {
  const blocks = rule.match ?? [];
  return blocks.length === 0 || blocks.some(matchesEverything);
}

/**
 * Routes after a rule with no `match` at all are already reported by validation (SNW0224,
 * Istio's own "only the last rule can have no matches"), so they are left to it rather than
 * reported twice; this analyzer adds the catch-alls Istio's rule does not see: `uri: prefix: /`
 * alone, or an empty match block, ahead of routes that match on something else.
 */
export const analyzeUnreachableRoutes: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) {
    const rules = vs.spec.http ?? [];
    const catchAll = rules.findIndex(isCatchAll);
    if (catchAll < 0 || (rules[catchAll].match ?? []).length === 0) continue;
    const label = rules[catchAll].name ? `spec.http[${catchAll}] ("${rules[catchAll].name}")` : `spec.http[${catchAll}]`;
    for (let j = catchAll + 1; j < rules.length; j++) {
      out.push(finding(vs, 'SNW1006', ['spec', 'http', j], `this route can never match: ${label} before it matches every request (routes are tried in order, first match wins)`));
    }
  }
  return out;
};
