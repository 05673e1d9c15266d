/**
 * SNW1010: several VirtualServices claim one host for the sidecars of the mesh, Istio's
 * IST0109 ConflictingMeshGatewayVirtualServiceHosts (istio/istio
 * pkg/config/analysis/analyzers/virtualservice/conflictingmeshgatewayhosts.go):
 *
 *   - only VirtualServices bound to the mesh count (no `gateways`, or `mesh` among them): at
 *     gateways Istio merges the VirtualServices of a host, in creation order;
 *   - hosts are compared as FQDNs within the namespaces a VirtualService is exported to (its
 *     `exportTo`, `.` being its own namespace; none or `*` is every namespace), and one
 *     exported to every namespace also conflicts with any overlapping host in a narrower scope;
 *   - every VirtualService of a conflict is reported, naming the others.
 *
 * Sidecars then use the oldest (creationTimestamp, then name; DESIGN.md behaviour 12) and
 * ignore the rest for that host, so each finding says which one is in force.
 */
import type { Diagnostic } from '../../api/diagnostics.js';
import { byCreation } from '../../semantics/creation-order.js';
import { hostsOverlap } from '../../semantics/hosts.js';
import { resolveShortName } from '../../semantics/names.js';
import { finding, ofKind, type Analyzer, type VirtualService } from './common.js';
import { MESH_GATEWAY } from './gateways.js';

const ALL_NAMESPACES = '*';

interface Claim {
  vs: VirtualService;
  /** Index of the host in spec.hosts. */
  index: number;
  fqdn: string;
}

const fullName = (vs: VirtualService) => `${vs.metadata.namespace}/${vs.metadata.name}`;

/** The namespaces a VirtualService is visible in, as IST0109 scopes them. */
function scopesOf(vs: VirtualService): string[] {
  const exportTo = vs.spec.exportTo ?? [];
  if (exportTo.length === 0 || exportTo.includes(ALL_NAMESPACES)) return [ALL_NAMESPACES];
  return [...new Set(exportTo.map((e) => (e === '.' ? vs.metadata.namespace : e)))];
}

export const analyzeVirtualServiceHosts: Analyzer = (resources) => {
  // scope -> fqdn -> claims
  const byScope = new Map<string, Map<string, Claim[]>>();
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) {
    const gateways = vs.spec.gateways ?? [];
    if (gateways.length > 0 && !gateways.includes(MESH_GATEWAY)) continue;
    for (const scope of scopesOf(vs)) {
      let hosts = byScope.get(scope);
      if (!hosts) byScope.set(scope, (hosts = new Map()));
      for (const [index, host] of (vs.spec.hosts ?? []).entries()) {
        const fqdn = resolveShortName(host, vs.metadata.namespace);
        const claims = hosts.get(fqdn) ?? [];
        if (!claims.some((c) => c.vs === vs)) claims.push({ vs, index, fqdn });
        hosts.set(fqdn, claims);
      }
    }
  }

  const out: Diagnostic[] = [];
  const reported = new Set<string>();
  const everywhere = byScope.get(ALL_NAMESPACES) ?? new Map<string, Claim[]>();
  for (const [scope, hosts] of byScope) {
    for (const [fqdn, own] of hosts) {
      const claims = [...own];
      if (scope !== ALL_NAMESPACES) {
        for (const [other, list] of everywhere) {
          if (hostsOverlap(other, fqdn)) for (const c of list) if (!claims.some((x) => x.vs === c.vs)) claims.push(c);
        }
      }
      if (claims.length < 2) continue;
      const ordered = [...claims].sort((a, b) => byCreation(a.vs, b.vs));
      const inForce = ordered[0].vs;
      const names = ordered.map((c) => fullName(c.vs)).join(', ');
      for (const claim of ordered) {
        const key = `${fullName(claim.vs)}#${claim.index}`;
        if (reported.has(key)) continue;
        reported.add(key);
        const others = ordered.filter((c) => c.vs !== claim.vs).map((c) => fullName(c.vs)).join(', ');
        const verdict =
          claim.vs === inForce
            ? `sidecars use this one, the oldest, and ignore ${others} for this host`
            : `sidecars use ${fullName(inForce)}, the oldest, and ignore this one for this host`;
        out.push(
          finding(
            claim.vs,
            'SNW1010',
            ['spec', 'hosts', claim.index],
            `host ${claim.fqdn} is claimed for the mesh (sidecars) by VirtualServices ${names}: ${verdict}; merge them into one VirtualService, or scope them apart with exportTo`,
          ),
        );
      }
    }
  }
  return out;
};
