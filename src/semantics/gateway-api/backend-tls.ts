/**
 * BackendTLSPolicy (gateway.networking.k8s.io v1, GEP-1897): the one place its rules live.
 * A policy names Services (optionally one port, by `sectionName`) that speak TLS, and how a
 * gateway verifies them: the CA certificates of `caCertificateRefs` (ConfigMaps with `ca.crt`)
 * or the system's (`wellKnownCACertificates: System`), `hostname` as the SNI and the name the
 * certificate must carry, or `subjectAltNames` in its place.
 *
 * From it, the status `sinew get` shows (config/gateway-api/status.ts) and the TLS the gateway
 * originates (compiler/gateway-api/backend-tls.ts), so that a policy shown Accepted is one the
 * gateway enforces. A policy that is not Accepted sends nothing in its place: the gateway keeps
 * the backend's other settings, as the spec asks ("the policy MUST NOT be applied").
 *
 * Conditions, as the suite checks them (apis/v1 BackendTLSPolicy* reasons):
 *   Accepted      True Accepted; False Conflicted (an older policy targets the same Service and
 *                 section), False NoValidCACertificate (no caCertificateRef resolves)
 *   ResolvedRefs  True ResolvedRefs; False InvalidKind (a ref is no core ConfigMap), False
 *                 InvalidCACertificateRef (a ConfigMap missing, or without a PEM `ca.crt`)
 */
import type { Resource } from '../../api/resources/meta.js';
import { GATEWAY_API_GROUP, type BackendTLSPolicySpec, type LocalPolicyTargetReferenceWithSectionName } from '../../api/resources/gateway-api/types.js';
import { byCreation } from '../creation-order.js';
import { configMapsOf, resolveCaCertificateRefs } from './ca-certificates.js';
import type { ConditionState } from './binding.js';

export interface BackendTlsPolicyState {
  resource: Resource<BackendTLSPolicySpec>;
  /** `namespace/name`. */
  key: string;
  /** The CA bundle (PEM) of the refs that resolved; undefined with `wellKnownCACertificates: System`. */
  caPem?: string;
  /** The CA certificates are the system's (`wellKnownCACertificates: System`). */
  systemRoots: boolean;
  hostname: string;
  /** The SANs the backend must present one of (DNS names, URIs); empty: `hostname` is checked. */
  subjectAltNames: string[];
  accepted: ConditionState;
  resolvedRefs: ConditionState;
  /** The targets it applies to (the Service targets it did not lose to an older policy). */
  targets: LocalPolicyTargetReferenceWithSectionName[];
}

const ok = (reason: string, message: string): ConditionState => ({ status: 'True', reason, message });
const notOk = (reason: string, message: string): ConditionState => ({ status: 'False', reason, message });

const isServiceTarget = (t: LocalPolicyTargetReferenceWithSectionName) => (t.group ?? '') === '' && t.kind === 'Service';

/** Binds every BackendTLSPolicy of a config snapshot (see the module comment), oldest first. */
export function bindBackendTlsPolicies(resources: readonly Resource[]): BackendTlsPolicyState[] {
  const configMaps = configMapsOf(resources);
  const policies = (resources.filter((r) => r.kind === 'BackendTLSPolicy' && r.group === GATEWAY_API_GROUP) as Resource<BackendTLSPolicySpec>[]).sort(byCreation);
  // The oldest policy on a Service and section (none: the whole Service) wins it (GEP-713's
  // conflict resolution: creation time, then name).
  const claimed = new Set<string>();
  const out: BackendTlsPolicyState[] = [];
  for (const r of policies) {
    const ns = r.metadata.namespace;
    const validation = r.spec.validation ?? { hostname: '' };
    const state: BackendTlsPolicyState = {
      resource: r,
      key: `${ns}/${r.metadata.name}`,
      systemRoots: validation.wellKnownCACertificates === 'System',
      hostname: validation.hostname,
      subjectAltNames: (validation.subjectAltNames ?? []).flatMap((s) => (s.type === 'Hostname' && s.hostname ? [s.hostname] : s.type === 'URI' && s.uri ? [s.uri] : [])),
      accepted: ok('Accepted', 'the gateways originate TLS to its targets as it asks'),
      resolvedRefs: ok('ResolvedRefs', 'every CA certificate reference resolves'),
      targets: [],
    };
    const resolved = resolveCaCertificateRefs(validation.caCertificateRefs ?? [], ns, configMaps);
    const problems = resolved.problems.map((p) => ({ reason: p.problem === 'kind' ? 'InvalidKind' : 'InvalidCACertificateRef', message: p.message }));
    if (resolved.caPem) state.caPem = resolved.caPem;
    if (problems.length) {
      // InvalidKind before InvalidCACertificateRef, as the suite expects of a policy with both.
      const first = problems.find((p) => p.reason === 'InvalidKind') ?? problems[0];
      state.resolvedRefs = notOk(first.reason, problems.map((p) => p.message).join('; '));
    }
    if (!state.systemRoots && !state.caPem) {
      state.accepted = notOk('NoValidCACertificate', problems.length ? 'no caCertificateRef resolves to a CA certificate' : 'no CA certificates to verify the backend with');
      out.push(state);
      continue;
    }
    const lost: string[] = [];
    for (const t of r.spec.targetRefs ?? []) {
      if (!isServiceTarget(t)) continue;
      const claim = `${ns}/${t.name}#${t.sectionName ?? ''}`;
      if (claimed.has(claim)) {
        lost.push(t.sectionName ? `${t.name} port ${t.sectionName}` : t.name);
        continue;
      }
      claimed.add(claim);
      state.targets.push(t);
    }
    if (lost.length) state.accepted = notOk('Conflicted', `an older BackendTLSPolicy already targets ${lost.join(', ')}`);
    out.push(state);
  }
  return out;
}

/**
 * The accepted policy that applies to a Service port: the one naming that port (sectionName,
 * the Service port's name), else the one naming the whole Service.
 */
export function backendTlsPolicyFor(policies: readonly BackendTlsPolicyState[], service: { namespace: string; name: string }, portName: string | undefined): BackendTlsPolicyState | undefined {
  let whole: BackendTlsPolicyState | undefined;
  for (const p of policies) {
    if (p.accepted.status !== 'True' || p.resource.metadata.namespace !== service.namespace) continue;
    for (const t of p.targets) {
      if (t.name !== service.name) continue;
      if (t.sectionName !== undefined && portName !== undefined && t.sectionName === portName) return p;
      if (t.sectionName === undefined) whole ??= p;
    }
  }
  return whole;
}
