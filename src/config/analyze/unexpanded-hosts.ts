/**
 * SNW1013: a host written `<service>.<namespace>` (`reviews.default`) where that Service
 * exists. A Kubernetes client resolves such a name to the Service through its DNS search
 * path, but Istio does not: its ResolveShortnameToFQDN expands only names without dots, so
 * `reviews.default` in a VirtualService or DestinationRule is the literal host
 * `reviews.default`, not `reviews.default.svc.cluster.local`, and the rule never applies to
 * the Service's traffic. istioctl analyze says nothing about it; the traffic silently takes
 * the default route.
 */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { FieldPath } from '../../core/path.js';
import { resolveShortName, serviceFqdn, splitServiceDotNamespace } from '../../semantics/names.js';
import { finding, ofKind, type Analyzer, type DestinationRule, type Service, type ServiceEntry, type VirtualService } from './common.js';
import { MESH_GATEWAY, resolveGatewayRef } from './gateways.js';

/**
 * The Service FQDN a client would mean by `host`, when `host` is `<service>.<namespace>`, a
 * Service by that name exists there (`services`: FQDNs), and `host` itself is not a host
 * some ServiceEntry declares (`declared`).
 */
export function unexpandedServiceHost(host: string, services: ReadonlySet<string>, declared: ReadonlySet<string>): string | undefined {
  const split = splitServiceDotNamespace(host);
  if (!split) return undefined;
  const fqdn = serviceFqdn(split.name, split.namespace);
  return services.has(fqdn) && !declared.has(resolveShortName(host, split.namespace)) ? fqdn : undefined;
}

export const analyzeUnexpandedHosts: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const services = new Set(ofKind<Service>(resources, 'Service').map((s) => serviceFqdn(s.metadata.name, s.metadata.namespace)));
  if (services.size === 0) return out;
  const declared = new Set(ofKind<ServiceEntry>(resources, 'ServiceEntry').flatMap((se) => (se.spec.hosts ?? []).map((h) => resolveShortName(h, se.metadata.namespace))));
  const report = (resource: VirtualService | DestinationRule, host: string, path: FieldPath, what: string) => {
    const fqdn = unexpandedServiceHost(host, services, declared);
    if (!fqdn) return;
    const short = fqdn.slice(0, fqdn.indexOf('.'));
    out.push(
      finding(
        resource,
        'SNW1013',
        path,
        `host "${host}" is not the Service ${fqdn}: Istio expands only names without dots and reads this one as written, so ${what}; ` +
          `write "${fqdn}"${resource.metadata.namespace === splitServiceDotNamespace(host)!.namespace ? ` (or "${short}")` : ''}`,
      ),
    );
  };
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) {
    // At a gateway a host is whatever clients send in Host; only the mesh means a Service.
    const gateways = vs.spec.gateways?.length ? vs.spec.gateways : [MESH_GATEWAY];
    if (!gateways.some((g) => resolveGatewayRef(g, vs.metadata.namespace) === MESH_GATEWAY)) continue;
    for (const [i, host] of (vs.spec.hosts ?? []).entries()) {
      report(vs, host, ['spec', 'hosts', i], "these routes do not apply to that Service's traffic, which takes its default route");
    }
  }
  for (const dr of ofKind<DestinationRule>(resources, 'DestinationRule')) {
    if (dr.spec.host) report(dr, dr.spec.host, ['spec', 'host'], 'its traffic policy and subsets do not apply to that Service');
  }
  return out;
};
