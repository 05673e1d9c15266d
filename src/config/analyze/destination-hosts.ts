/** SNW1002: a route's destination host that no Service or ServiceEntry provides. */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { Resource } from '../../api/resources/index.js';
import { closest } from '../../core/suggest.js';
import { hostSubsetOf, isWildcardHost } from '../../semantics/hosts.js';
import { resolveShortName, serviceFqdn } from '../../semantics/names.js';
import { unexpandedServiceHost } from './unexpanded-hosts.js';
import { finding, destinationsOf, ofKind, type Analyzer, type Service, type ServiceEntry, type VirtualService } from './common.js';

/**
 * Every host the input provides: `name.namespace.svc.cluster.local` of each Service (a
 * Workload is reachable through the Service that selects it, so it adds no host of its own)
 * and the hosts of each ServiceEntry, wildcards included.
 */
export function providedHosts(resources: readonly Resource[]): string[] {
  const hosts: string[] = [];
  for (const svc of ofKind<Service>(resources, 'Service')) hosts.push(serviceFqdn(svc.metadata.name, svc.metadata.namespace));
  for (const se of ofKind<ServiceEntry>(resources, 'ServiceEntry')) {
    for (const h of se.spec.hosts ?? []) hosts.push(resolveShortName(h, se.metadata.namespace));
  }
  return hosts;
}

export const analyzeDestinationHosts: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const provided = providedHosts(resources);
  const exact = new Set(provided);
  const wildcards = provided.filter(isWildcardHost);
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) {
    for (const { destination, path } of destinationsOf(vs)) {
      if (!destination.host) continue;
      const fqdn = resolveShortName(destination.host, vs.metadata.namespace);
      if (exact.has(fqdn) || wildcards.some((p) => hostSubsetOf(fqdn, p))) continue;
      const meant = unexpandedServiceHost(destination.host, exact, exact);
      const near = meant ?? nearHost(fqdn, provided);
      const hint = meant
        ? `; Istio expands only names without dots (a client's DNS would find the Service, the mesh does not): write "${meant}"`
        : near
          ? `; did you mean "${near}"?`
          : '; add its Service or a ServiceEntry';
      out.push(finding(vs, 'SNW1002', [...path, 'host'], `host "${destination.host}" (${fqdn}) is not provided by any Service or ServiceEntry${hint}`));
    }
  }
  return out;
};

/**
 * A provided host that differs from `fqdn` only by a typo in its first label
 * (`reviewz.default.svc.cluster.local` -> `reviews...`): comparing whole FQDNs would call
 * any two short names in one namespace "close".
 */
function nearHost(fqdn: string, provided: readonly string[]): string | undefined {
  const dot = fqdn.indexOf('.');
  const rest = dot < 0 ? '' : fqdn.slice(dot);
  const label = dot < 0 ? fqdn : fqdn.slice(0, dot);
  const sameDomain = provided.filter((p) => !p.startsWith('*') && p.endsWith(rest) && p.indexOf('.') === p.length - rest.length);
  const near = closest(label, sameDomain.map((p) => p.slice(0, p.length - rest.length)));
  return near === undefined ? undefined : near + rest;
}
