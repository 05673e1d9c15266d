/**
 * Which config shapes traffic to which service: the VirtualServices and DestinationRules by
 * the fully qualified host they name (short names resolve in the resource's namespace, as
 * Istio resolves them), and the badges the graph draws from them.
 */
import type { NodeBadges } from '../../api/console.js';
import { ACTION_LABEL } from '../../api/console.js';
import type { Resource } from '../../api/resources/meta.js';
import { resolveShortName } from '../../semantics/names.js';

interface HttpRouteSpec {
  fault?: unknown;
  timeout?: string;
  retries?: unknown;
  mirror?: unknown;
  mirrors?: unknown[];
}

interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HttpRouteSpec[];
}

interface TrafficPolicySpec {
  connectionPool?: unknown;
  outlierDetection?: unknown;
  portLevelSettings?: TrafficPolicySpec[];
}

interface DestinationRuleSpec {
  host?: string;
  trafficPolicy?: TrafficPolicySpec;
  subsets?: { trafficPolicy?: TrafficPolicySpec }[];
}

export class ConfigIndex {
  private readonly byHost = new Map<string, Resource[]>();

  constructor(resources: readonly Resource[]) {
    for (const r of resources) {
      const ns = r.metadata.namespace ?? 'default';
      if (r.kind === 'VirtualService') {
        const spec = r.spec as VirtualServiceSpec;
        for (const h of spec.hosts ?? []) this.add(resolveShortName(h, ns), r);
      } else if (r.kind === 'DestinationRule') {
        const host = (r.spec as DestinationRuleSpec).host;
        if (host) this.add(resolveShortName(host, ns), r);
      }
    }
  }

  private add(host: string, r: Resource): void {
    const list = this.byHost.get(host) ?? [];
    if (!list.includes(r)) list.push(r);
    this.byHost.set(host, list);
  }

  /** VirtualServices and DestinationRules naming `fqdn`. */
  forHost(fqdn: string): readonly Resource[] {
    return this.byHost.get(fqdn) ?? [];
  }

  badges(fqdn: string): NodeBadges {
    const badges: NodeBadges = {};
    for (const r of this.forHost(fqdn)) {
      if (r.kind === 'VirtualService') {
        // Gateway-only VirtualServices route at the edge, not the service's callers; they still shape it.
        (badges.virtualService ??= []).push(`${r.metadata.namespace}/${r.metadata.name}`);
        for (const route of (r.spec as VirtualServiceSpec).http ?? []) {
          if (route.fault) badges.faultInjection = true;
          if (route.timeout) badges.timeout = true;
          if (route.retries) badges.retries = true;
          if (route.mirror || route.mirrors?.length) badges.mirror = true;
        }
        if (r.metadata.labels?.[ACTION_LABEL] === 'suspend') badges.suspended = true;
      } else if (r.kind === 'DestinationRule') {
        const spec = r.spec as DestinationRuleSpec;
        const policies = [spec.trafficPolicy, ...(spec.subsets ?? []).map((s) => s.trafficPolicy)].filter((p): p is TrafficPolicySpec => !!p);
        const breaks = (p: TrafficPolicySpec): boolean => !!(p.connectionPool || p.outlierDetection || p.portLevelSettings?.some(breaks));
        if (policies.some(breaks)) badges.circuitBreaker = true;
      }
    }
    return badges;
  }
}
