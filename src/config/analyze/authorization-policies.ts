/**
 * SNW1015-SNW1018: Kiali's AuthorizationPolicy validations (KIA0101 namespace not found,
 * KIA0104 host not found, KIA0106 service account not found) and Istio's rule for HTTP-only
 * fields on TCP workloads (pilot/pkg/security/authz/model: an ALLOW rule is dropped, a DENY
 * rule widens), which otherwise fails silently.
 */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { AuthorizationPolicySpec, Rule } from '../../api/resources/authorization-policy.js';
import type { Resource, WorkloadSpec } from '../../api/resources/index.js';
import type { FieldPath } from '../../core/path.js';
import { hostsOverlap } from '../../semantics/hosts.js';
import { selectorMatches, serviceSelects } from '../../semantics/labels.js';
import { serviceFqdn } from '../../semantics/names.js';
import { isTcpProtocol, parseProtocol } from '../semantic/rules.js';
import { finding, ofKind, ROOT_NAMESPACE, type Analyzer, type Gateway, type Service, type ServiceEntry, type VirtualService, type Workload } from './common.js';

type AuthorizationPolicy = Resource<AuthorizationPolicySpec>;

const hasWildcard = (v: string) => v.includes('*');

export const analyzeAuthorizationPolicies: Analyzer = (resources) => {
  const policies = ofKind<AuthorizationPolicy>(resources, 'AuthorizationPolicy');
  if (policies.length === 0) return [];
  const out: Diagnostic[] = [];
  const services = ofKind<Service>(resources, 'Service');
  const workloads = ofKind<Workload>(resources, 'Workload');
  const namespaces = new Set<string>([ROOT_NAMESPACE]);
  for (const r of resources) {
    if (r.kind === 'Namespace') namespaces.add(r.metadata.name);
    else if (r.metadata.namespace) namespaces.add(r.metadata.namespace);
  }
  const identities = new Set(workloads.map((w) => `${w.metadata.namespace}/${(w.spec as WorkloadSpec).serviceAccount ?? 'default'}`));
  const hosts = knownHosts(resources, services);

  for (const p of policies) {
    (p.spec.rules ?? []).forEach((rule, i) => {
      const at = (...rest: FieldPath) => ['spec', 'rules', i, ...rest];
      (rule.from ?? []).forEach((f, j) => {
        const source = f.source ?? {};
        for (const field of ['namespaces', 'notNamespaces'] as const) {
          (source[field] ?? []).forEach((ns, k) => {
            if (!hasWildcard(ns) && !namespaces.has(ns)) out.push(finding(p, 'SNW1015', at('from', j, 'source', field, k), `namespace ${ns} has nothing of the mesh in it; this rule never matches a caller from it`));
          });
        }
        for (const field of ['principals', 'notPrincipals'] as const) {
          (source[field] ?? []).forEach((principal, k) => {
            const m = /^[^*]*\/ns\/([^/*]+)\/sa\/([^/*]+)$/.exec(principal);
            if (m && !identities.has(`${m[1]}/${m[2]}`)) out.push(finding(p, 'SNW1016', at('from', j, 'source', field, k), `no Workload runs as service account ${m[2]} in namespace ${m[1]}; this rule never matches principal ${principal}`));
          });
        }
      });
      (rule.to ?? []).forEach((t, j) => {
        for (const field of ['hosts', 'notHosts'] as const) {
          (t.operation?.[field] ?? []).forEach((host, k) => {
            const bare = host.replace(/:\d+$/, '').toLowerCase();
            if (bare === '*' || hosts.some((h) => hostsOverlap(h, bare))) return;
            out.push(finding(p, 'SNW1017', at('to', j, 'operation', field, k), `no Service, ServiceEntry, Gateway or VirtualService has host ${host}; requests never carry it`));
          });
        }
      });
      (rule.when ?? []).forEach((c, j) => {
        if (c.key !== 'source.namespace') return;
        for (const field of ['values', 'notValues'] as const) {
          (c[field] ?? []).forEach((ns, k) => {
            if (!hasWildcard(ns) && !namespaces.has(ns)) out.push(finding(p, 'SNW1015', at('when', j, field, k), `namespace ${ns} has nothing of the mesh in it; this condition never holds for a caller from it`));
          });
        }
      });
    });
    const httpField = firstHttpOnlyField(p.spec.rules ?? []);
    if (httpField && tcpOnly(p, workloads, services)) {
      const action = p.spec.action ?? 'ALLOW';
      const effect = action === 'ALLOW' ? 'the rule is ignored, so the policy allows less' : 'the rule is applied without it, so it covers every connection';
      out.push(finding(p, 'SNW1018', httpField, `the workloads this policy selects serve only TCP ports, where ${String(httpField.at(-1))} cannot be checked: ${effect}`));
    }
  }
  return out;
};

/** Hosts a request may carry: Service names (FQDN, `name.ns`, `name.ns.svc`, and `name` within the namespace), ServiceEntry, Gateway and VirtualService hosts. */
function knownHosts(resources: readonly Resource[], services: readonly Service[]): string[] {
  const out: string[] = [];
  for (const s of services) {
    const fqdn = serviceFqdn(s.metadata.name, s.metadata.namespace!);
    out.push(fqdn, `${s.metadata.name}.${s.metadata.namespace}`, `${s.metadata.name}.${s.metadata.namespace}.svc`, s.metadata.name);
  }
  for (const se of ofKind<ServiceEntry>(resources, 'ServiceEntry')) out.push(...(se.spec.hosts ?? []));
  for (const gw of ofKind<Gateway>(resources, 'Gateway')) for (const server of gw.spec.servers ?? []) out.push(...(server.hosts ?? []).map((h) => h.slice(h.indexOf('/') + 1)));
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) out.push(...(vs.spec.hosts ?? []));
  return out.map((h) => h.toLowerCase());
}

/** The path of the first HTTP-only field in the rules, if any. */
function firstHttpOnlyField(rules: readonly Rule[]): FieldPath | undefined {
  for (const [i, rule] of rules.entries()) {
    for (const [j, f] of (rule.from ?? []).entries()) {
      for (const field of ['requestPrincipals', 'notRequestPrincipals'] as const) if (f.source?.[field]) return ['spec', 'rules', i, 'from', j, 'source', field];
    }
    for (const [j, t] of (rule.to ?? []).entries()) {
      for (const field of ['methods', 'notMethods', 'paths', 'notPaths', 'hosts', 'notHosts'] as const) if (t.operation?.[field]) return ['spec', 'rules', i, 'to', j, 'operation', field];
    }
    for (const [j, c] of (rule.when ?? []).entries()) if (c.key.startsWith('request.')) return ['spec', 'rules', i, 'when', j, 'key'];
  }
  return undefined;
}

/** True when the policy selects at least one Workload and every Service port of every one it selects is TCP-like. */
function tcpOnly(p: AuthorizationPolicy, workloads: readonly Workload[], services: readonly Service[]): boolean {
  const ns = p.metadata.namespace!;
  const selected = workloads.filter((w) => (ns === ROOT_NAMESPACE || w.metadata.namespace === ns) && selectorMatches(p.spec.selector?.matchLabels, w.metadata.labels ?? {}));
  if (selected.length === 0 || p.spec.targetRefs?.length || p.spec.targetRef) return false;
  return selected.every((w) => {
    const ports = services.filter((s) => s.metadata.namespace === w.metadata.namespace && serviceSelects(s.spec.selector, w.metadata.labels ?? {})).flatMap((s) => s.spec.ports ?? []);
    return ports.length > 0 && ports.every((port) => isTcpProtocol(parseProtocol(port.appProtocol ?? (port.name ?? '').split('-')[0])));
  });
}
