/**
 * The composed PeerAuthentication of the workloads behind a Service, for the analyzers that
 * compare it with other resources (SNW1008). The rule is Istio's, written once in
 * src/semantics/peer-authentication.ts; this index only hands it the few policies that can
 * apply to a workload, so that thousands of Services stay linear.
 */
import type { Resource } from '../../api/resources/index.js';
import { serviceSelects, type Labels } from '../../semantics/labels.js';
import { composePeerAuthentication, type ComposedPeerAuthentication } from '../../semantics/peer-authentication.js';
import { ROOT_NAMESPACE, ofKind, type PeerAuthentication, type Service, type Workload } from './common.js';

/** One workload behind a Service (absent when the input holds none: Kubernetes pods are not part of it) and its composed policy. */
export interface WorkloadPolicy {
  workload?: Workload;
  composed: ComposedPeerAuthentication;
}

export class PeerPolicyIndex {
  /** Policies without a selector, per namespace. */
  private readonly wide = new Map<string, PeerAuthentication[]>();
  /** Policies with a selector, by `namespace|label=value` of their first selector label (a policy selects only labels including it). */
  private readonly selecting = new Map<string, PeerAuthentication[]>();
  /** Workloads by `namespace|label=value`, for every label they carry. */
  private readonly workloads = new Map<string, Workload[]>();
  /** Policies by `namespace/name`, as the composed policy names them. */
  readonly byName = new Map<string, PeerAuthentication>();

  constructor(resources: readonly Resource[]) {
    for (const pa of ofKind<PeerAuthentication>(resources, 'PeerAuthentication')) {
      this.byName.set(`${pa.metadata.namespace}/${pa.metadata.name}`, pa);
      const first = Object.entries(pa.spec.selector?.matchLabels ?? {})[0];
      if (first) push(this.selecting, `${pa.metadata.namespace}|${first[0]}=${first[1]}`, pa);
      else push(this.wide, pa.metadata.namespace, pa);
    }
    for (const w of ofKind<Workload>(resources, 'Workload')) {
      for (const [k, v] of Object.entries(w.metadata.labels ?? {})) push(this.workloads, `${w.metadata.namespace}|${k}=${v}`, w);
    }
  }

  /** The composed policy of a workload in `namespace` with `labels`. */
  compose(namespace: string, labels: Labels): ComposedPeerAuthentication {
    const wide = [...(this.wide.get(ROOT_NAMESPACE) ?? []), ...(namespace === ROOT_NAMESPACE ? [] : (this.wide.get(namespace) ?? []))];
    const candidates = [...wide, ...Object.entries(labels).flatMap(([k, v]) => this.selecting.get(`${namespace}|${k}=${v}`) ?? [])];
    return composePeerAuthentication(candidates, ROOT_NAMESPACE, { namespace, labels });
  }

  /**
   * The workloads a Service selects with their composed policies; when the input holds none,
   * one entry composed for the Service's selector as the labels.
   */
  behind(service: Service): WorkloadPolicy[] {
    const namespace = service.metadata.namespace;
    const selector = service.spec.selector ?? undefined;
    const first = Object.entries(selector ?? {})[0];
    const selected = first ? (this.workloads.get(`${namespace}|${first[0]}=${first[1]}`) ?? []).filter((w) => serviceSelects(selector, w.metadata.labels)) : [];
    if (selected.length === 0) return [{ composed: this.compose(namespace, selector ?? {}) }];
    return selected.map((workload) => ({ workload, composed: this.compose(namespace, workload.metadata.labels ?? {}) }));
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
