/** SNW1010: two VirtualServices claim the same host for the same gateway (istioctl IST0109). */
import type { Diagnostic } from '../../api/diagnostics.js';
import { resolveShortName } from '../../semantics/names.js';
import { finding, nameOf, ofKind, type Analyzer, type VirtualService } from './common.js';
import { MESH_GATEWAY, resolveGatewayRef } from './gateways.js';

export const analyzeVirtualServiceHosts: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const owners = new Map<string, VirtualService>();
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) {
    const ns = vs.metadata.namespace;
    // No gateways means the sidecars of the mesh, as in Istio.
    const gateways = [...new Set((vs.spec.gateways?.length ? vs.spec.gateways : [MESH_GATEWAY]).map((g) => resolveGatewayRef(g, ns)))];
    for (const [i, host] of (vs.spec.hosts ?? []).entries()) {
      const fqdn = resolveShortName(host, ns);
      for (const gateway of gateways) {
        const key = `${gateway}|${fqdn}`;
        const owner = owners.get(key);
        if (!owner) {
          owners.set(key, vs);
          continue;
        }
        if (owner === vs) continue;
        const where = gateway === MESH_GATEWAY ? 'the mesh (sidecars)' : `gateway ${gateway}`;
        out.push(finding(vs, 'SNW1010', ['spec', 'hosts', i], `host ${fqdn} on ${where} is also claimed by ${nameOf(owner)}; only one of them is used`));
      }
    }
  }
  return out;
};
