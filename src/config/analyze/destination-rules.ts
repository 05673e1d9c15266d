/** Finding the DestinationRules that apply to a destination, the way Istio looks them up. */
import type { Resource } from '../../api/resources/index.js';
import { hostSpecificity, hostSubsetOf, isWildcardHost } from '../../semantics/hosts.js';
import { namespaceOfServiceHost, resolveShortName } from '../../semantics/names.js';
import { isExportedTo } from '../../semantics/visibility.js';
import { ROOT_NAMESPACE, ofKind, type DestinationRule, type ServiceEntry } from './common.js';

interface IndexedRule {
  rule: DestinationRule;
  host: string;
  specificity: number;
}

/**
 * The DestinationRules of one input, indexed by namespace once, so that looking up the rules
 * of every destination stays linear in the size of the input.
 */
export class DestinationRuleIndex {
  /** Per namespace: rules for exact hosts by host, and the (few) wildcard rules. */
  private readonly byNamespace = new Map<string, { exact: Map<string, IndexedRule[]>; wildcards: IndexedRule[] }>();
  private readonly serviceEntryHosts: { host: string; namespace: string }[] = [];

  constructor(resources: readonly Resource[]) {
    // Rules with a workloadSelector only apply to some clients and are left out.
    for (const rule of ofKind<DestinationRule>(resources, 'DestinationRule')) {
      if (rule.spec.workloadSelector) continue;
      const host = resolveShortName(rule.spec.host, rule.metadata.namespace);
      let ns = this.byNamespace.get(rule.metadata.namespace);
      if (!ns) this.byNamespace.set(rule.metadata.namespace, (ns = { exact: new Map(), wildcards: [] }));
      const entry = { rule, host, specificity: hostSpecificity(host) };
      if (isWildcardHost(host)) ns.wildcards.push(entry);
      else {
        const list = ns.exact.get(host);
        if (list) list.push(entry);
        else ns.exact.set(host, [entry]);
      }
    }
    for (const se of ofKind<ServiceEntry>(resources, 'ServiceEntry')) {
      for (const h of se.spec.hosts ?? []) this.serviceEntryHosts.push({ host: resolveShortName(h, se.metadata.namespace), namespace: se.metadata.namespace });
    }
  }

  /**
   * The namespace a host's service lives in: the one in a cluster-local FQDN, else the
   * namespace of a ServiceEntry that declares it.
   */
  serviceNamespaceOf(fqdn: string): string | undefined {
    return namespaceOfServiceHost(fqdn) ?? this.serviceEntryHosts.find((e) => hostSubsetOf(fqdn, e.host))?.namespace;
  }

  /**
   * The DestinationRules that decide traffic from `clientNamespace` to `fqdn` (DESIGN.md
   * behaviour 5): those of the client namespace, else those of the service's namespace, else
   * those of the root namespace, each subject to exportTo; within a namespace the most
   * specific host wins (an exact host over a wildcard), and rules of equal specificity merge,
   * as Istio merges them.
   */
  applicable(fqdn: string, clientNamespace: string): DestinationRule[] {
    const order = [clientNamespace, this.serviceNamespaceOf(fqdn), ROOT_NAMESPACE];
    for (const ns of new Set(order)) {
      if (ns === undefined) continue;
      const rules = this.byNamespace.get(ns);
      if (!rules) continue;
      const visible = (r: IndexedRule) => isExportedTo(r.rule.spec.exportTo, ns, clientNamespace);
      const exact = (rules.exact.get(fqdn) ?? []).filter(visible);
      const matching = exact.length ? exact : rules.wildcards.filter((r) => visible(r) && hostSubsetOf(fqdn, r.host));
      if (matching.length === 0) continue;
      const best = Math.max(...matching.map((r) => r.specificity));
      return matching.filter((r) => r.specificity === best).map((r) => r.rule);
    }
    return [];
  }
}
