/** SNW1012: DestinationRule TLS that needs credentials the mesh cannot provide yet. */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { FieldPath } from '../../core/path.js';
import { finding, ofKind, type Analyzer, type DestinationRule } from './common.js';

interface TlsSettings {
  mode?: string;
  credentialName?: string;
}

/** Every `tls` block of a DestinationRule (top, port level, subsets and their port level), with its path. */
function* tlsBlocks(dr: DestinationRule): Generator<{ tls: TlsSettings; path: FieldPath }> {
  const policies: { policy: DestinationRule['spec']['trafficPolicy']; path: FieldPath }[] = [{ policy: dr.spec.trafficPolicy, path: ['spec', 'trafficPolicy'] }];
  for (const [i, subset] of (dr.spec.subsets ?? []).entries()) policies.push({ policy: subset.trafficPolicy, path: ['spec', 'subsets', i, 'trafficPolicy'] });
  for (const { policy, path } of policies) {
    if (!policy) continue;
    if (policy.tls) yield { tls: policy.tls, path: [...path, 'tls'] };
    for (const [j, port] of (policy.portLevelSettings ?? []).entries()) {
      if (port.tls) yield { tls: port.tls, path: [...path, 'portLevelSettings', j, 'tls'] };
    }
  }
}

export const analyzeUpstreamTls: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  for (const dr of ofKind<DestinationRule>(resources, 'DestinationRule')) {
    for (const { tls, path } of tlsBlocks(dr)) {
      const needs = tls.mode === 'ISTIO_MUTUAL' ? 'the mesh\'s workload certificates' : tls.mode !== 'DISABLE' && tls.credentialName ? `credential ${tls.credentialName}` : undefined;
      if (!needs) continue;
      out.push(finding(dr, 'SNW1012', path, `${tls.mode} needs ${needs}, which the mesh cannot provide yet: requests to ${dr.spec.host} through this policy get 503 (no healthy upstream)`));
    }
  }
  return out;
};
