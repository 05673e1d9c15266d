/** SNW1008: a DestinationRule's client TLS mode that the server side's PeerAuthentication refuses. */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { ClientTLSSettings, MutualTLSMode, Resource, TrafficPolicy } from '../../api/resources/index.js';
import type { FieldPath } from '../../core/path.js';
import { hostSubsetOf, isWildcardHost } from '../../semantics/hosts.js';
import { selectorMatches, serviceSelects } from '../../semantics/labels.js';
import { resolveShortName, serviceFqdn } from '../../semantics/names.js';
import {
  ROOT_NAMESPACE,
  finding,
  nameOf,
  ofKind,
  type Analyzer,
  type DestinationRule,
  type PeerAuthentication,
  type Service,
  type Workload,
} from './common.js';

interface EffectiveMode {
  mode: Exclude<MutualTLSMode, 'UNSET'>;
  /** The PeerAuthentication that decided it, if any. */
  from?: PeerAuthentication;
}

/** A set mode, or undefined for UNSET/absent (inherit from the parent level). */
const modeOf = (pa: PeerAuthentication): EffectiveMode['mode'] | undefined => {
  const mode = pa.spec.mtls?.mode;
  return mode && mode !== 'UNSET' ? mode : undefined;
};

/** PeerAuthentications and Workloads grouped once, so each Service's lookup is cheap. */
class PolicyIndex {
  /** Namespace-wide policies (no selector) per namespace. */
  private readonly wide = new Map<string, PeerAuthentication[]>();
  /** Workload-level policies by `namespace|label=value` of the first label they select on. */
  private readonly selected = new Map<string, PeerAuthentication[]>();
  /** Input order, which decides between two policies of one level. */
  private readonly order = new Map<PeerAuthentication, number>();
  /** Workloads by `namespace|label=value`, for every label they carry. */
  private readonly workloads = new Map<string, Workload[]>();

  constructor(resources: readonly Resource[]) {
    for (const pa of ofKind<PeerAuthentication>(resources, 'PeerAuthentication')) {
      this.order.set(pa, this.order.size);
      const first = Object.entries(pa.spec.selector?.matchLabels ?? {})[0];
      const key = first ? `${pa.metadata.namespace}|${first[0]}=${first[1]}` : pa.metadata.namespace;
      const into = first ? this.selected : this.wide;
      const list = into.get(key);
      if (list) list.push(pa);
      else into.set(key, [pa]);
    }
    for (const w of ofKind<Workload>(resources, 'Workload')) {
      for (const [k, v] of Object.entries(w.metadata.labels ?? {})) {
        const key = `${w.metadata.namespace}|${k}=${v}`;
        const list = this.workloads.get(key);
        if (list) list.push(w);
        else this.workloads.set(key, [w]);
      }
    }
  }

  /**
   * The PeerAuthentication mode for the workloads behind a Service (DESIGN.md behaviour 9):
   * workload level, then namespace, then root; UNSET inherits; nothing means PERMISSIVE.
   * The workloads' labels are the selected Workloads' labels, or the Service's selector
   * itself when the input holds no Workloads for it (Kubernetes pods are not part of it).
   */
  modeFor(service: Service): EffectiveMode {
    const ns = service.metadata.namespace;
    const selector = service.spec.selector ?? undefined;
    const first = Object.entries(selector ?? {})[0];
    const workloads = first ? (this.workloads.get(`${ns}|${first[0]}=${first[1]}`) ?? []).filter((w) => serviceSelects(selector, w.metadata.labels)) : [];
    const labelSets = workloads.length ? workloads.map((w) => w.metadata.labels ?? {}) : selector ? [selector] : [];
    // A policy can only select labels that include its first selector label.
    const candidates = new Set(labelSets.flatMap((l) => Object.entries(l).flatMap(([k, v]) => this.selected.get(`${ns}|${k}=${v}`) ?? [])));
    const levels = [
      [...candidates].filter((pa) => labelSets.some((l) => selectorMatches(pa.spec.selector?.matchLabels, l))).sort((a, b) => this.order.get(a)! - this.order.get(b)!),
      this.wide.get(ns) ?? [],
      this.wide.get(ROOT_NAMESPACE) ?? [],
    ];
    for (const level of levels) {
      for (const pa of level) {
        const mode = modeOf(pa);
        if (mode) return { mode, from: pa };
      }
    }
    return { mode: 'PERMISSIVE' };
  }
}

/** Every client TLS setting of a DestinationRule (top level, per port, per subset), with its path. */
function* tlsSettingsOf(dr: DestinationRule): Generator<{ tls: ClientTLSSettings; path: FieldPath }> {
  function* ofPolicy(policy: TrafficPolicy | undefined, base: FieldPath): Generator<{ tls: ClientTLSSettings; path: FieldPath }> {
    if (!policy) return;
    if (policy.tls) yield { tls: policy.tls, path: [...base, 'tls'] };
    for (const [i, port] of (policy.portLevelSettings ?? []).entries()) {
      if (port.tls) yield { tls: port.tls, path: [...base, 'portLevelSettings', i, 'tls'] };
    }
  }
  yield* ofPolicy(dr.spec.trafficPolicy, ['spec', 'trafficPolicy']);
  for (const [i, subset] of (dr.spec.subsets ?? []).entries()) yield* ofPolicy(subset.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy']);
}

function conflict(server: EffectiveMode['mode'], client: string | undefined): string | undefined {
  if (server === 'STRICT' && client === 'DISABLE') return 'the server side requires mutual TLS (STRICT) but this rule sends plaintext (DISABLE)';
  if (server === 'DISABLE' && client === 'ISTIO_MUTUAL') return 'the server side accepts plaintext only (DISABLE) but this rule sends Istio mutual TLS (ISTIO_MUTUAL)';
  return undefined;
}

export const analyzeMtlsConflicts: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const services = ofKind<Service>(resources, 'Service').map((svc) => ({ svc, fqdn: serviceFqdn(svc.metadata.name, svc.metadata.namespace) }));
  const byHost = new Map(services.map((s) => [s.fqdn, s.svc]));
  const policies = new PolicyIndex(resources);
  const modes = new Map<Service, EffectiveMode>();
  const modeFor = (svc: Service) => {
    let mode = modes.get(svc);
    if (!mode) modes.set(svc, (mode = policies.modeFor(svc)));
    return mode;
  };
  for (const dr of ofKind<DestinationRule>(resources, 'DestinationRule')) {
    const settings = [...tlsSettingsOf(dr)].filter(({ tls }) => tls.mode === 'DISABLE' || tls.mode === 'ISTIO_MUTUAL');
    if (settings.length === 0) continue; // only these two modes can conflict
    const pattern = resolveShortName(dr.spec.host, dr.metadata.namespace);
    const exact = byHost.get(pattern);
    const targets = isWildcardHost(pattern) ? services.filter((s) => hostSubsetOf(s.fqdn, pattern)).map((s) => s.svc) : exact ? [exact] : [];
    for (const { tls, path } of settings) {
      for (const svc of targets) {
        const server = modeFor(svc);
        const why = conflict(server.mode, tls.mode);
        if (!why) continue;
        const decidedBy = server.from ? nameOf(server.from) : 'the mesh default';
        out.push(finding(dr, 'SNW1008', [...path, 'mode'], `${why} for ${nameOf(svc)} (mode set by ${decidedBy}); connections will fail`));
      }
    }
  }
  return out;
};
