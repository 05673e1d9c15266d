/**
 * SNW1008: a DestinationRule's client TLS mode that the server side's PeerAuthentication
 * refuses. The server side's mode is Istio's composed PeerAuthentication
 * (src/semantics/peer-authentication.ts, the rule the compiler builds inbound chains from) of
 * each workload behind the Service: its selected Workloads, or, when the input holds none
 * (Kubernetes pods are not part of it), the Service's selector as their labels. Port-level
 * settings are not compared (a DestinationRule port is a service port, a PeerAuthentication
 * port a container port).
 */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { ClientTLSSettings, Resource } from '../../api/resources/index.js';
import type { FieldPath } from '../../core/path.js';
import { hostSubsetOf, isWildcardHost } from '../../semantics/hosts.js';
import { resolveShortName, serviceFqdn } from '../../semantics/names.js';
import type { ComposedPeerAuthentication, EffectivePeerMode } from '../../semantics/peer-authentication.js';
import { finding, nameOf, ofKind, type Analyzer, type DestinationRule, type Service } from './common.js';
import { PeerPolicyIndex } from './peer-policies.js';
import { trafficPolicies } from '../traffic-policies.js';

/** Every client TLS setting of a DestinationRule (top level, per port, per subset), with its path. */
function* tlsSettingsOf(dr: DestinationRule): Generator<{ tls: ClientTLSSettings; path: FieldPath }> {
  for (const { policy, path } of trafficPolicies(dr.spec)) if (policy.tls) yield { tls: policy.tls, path: [...path, 'tls'] };
}

function conflict(server: EffectivePeerMode, client: string | undefined): string | undefined {
  if (server === 'STRICT' && client === 'DISABLE') return 'the server side requires mutual TLS (STRICT) but this rule sends plaintext (DISABLE)';
  if (server === 'DISABLE' && client === 'ISTIO_MUTUAL') return 'the server side accepts plaintext only (DISABLE) but this rule sends Istio mutual TLS (ISTIO_MUTUAL)';
  return undefined;
}

export const analyzeMtlsConflicts: Analyzer = (resources: readonly Resource[]) => {
  const out: Diagnostic[] = [];
  const rules = ofKind<DestinationRule>(resources, 'DestinationRule');
  if (rules.length === 0) return out;
  const policies = new PeerPolicyIndex(resources);
  const services = ofKind<Service>(resources, 'Service').map((svc) => ({ svc, fqdn: serviceFqdn(svc.metadata.name, svc.metadata.namespace) }));
  const byHost = new Map(services.map((s) => [s.fqdn, s.svc]));
  const modes = new Map<Service, ComposedPeerAuthentication[]>();
  const modesOf = (svc: Service) => {
    let found = modes.get(svc);
    if (!found) {
      // One finding per distinct policy of the workloads behind the Service.
      const distinct = new Map(policies.behind(svc).map(({ composed }) => [`${composed.mode}|${composed.decidedBy ?? ''}`, composed]));
      modes.set(svc, (found = [...distinct.values()]));
    }
    return found;
  };
  for (const dr of rules) {
    const settings = [...tlsSettingsOf(dr)].filter(({ tls }) => tls.mode === 'DISABLE' || tls.mode === 'ISTIO_MUTUAL');
    if (settings.length === 0) continue; // only these two modes can conflict
    const pattern = resolveShortName(dr.spec.host, dr.metadata.namespace);
    const exact = byHost.get(pattern);
    const targets = isWildcardHost(pattern) ? services.filter((s) => hostSubsetOf(s.fqdn, pattern)).map((s) => s.svc) : exact ? [exact] : [];
    for (const { tls, path } of settings) {
      for (const svc of targets) {
        for (const server of modesOf(svc)) {
          const why = conflict(server.mode, tls.mode);
          if (!why) continue;
          const decidedBy = server.decidedBy ? `PeerAuthentication ${server.decidedBy}` : 'the mesh default';
          out.push(finding(dr, 'SNW1008', [...path, 'mode'], `${why} for ${nameOf(svc)} (mode set by ${decidedBy}); connections will fail`));
        }
      }
    }
  }
  return out;
};
