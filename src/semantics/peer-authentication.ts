/**
 * Istio's PeerAuthentication precedence (pilot/pkg/model/authentication.go,
 * ComposePeerAuthentication), written once for the compiler (which builds the inbound filter
 * chains and decides auto mTLS from it) and the analyzers. DESIGN.md behaviour 9.
 *
 * For one workload, of the policies that apply to it:
 *
 * - mesh level: policies without a selector in the root namespace; the oldest wins;
 * - namespace level: policies without a selector in the workload's namespace; the oldest wins;
 * - workload level: policies with a selector in the workload's namespace (never the root
 *   namespace's: a selector there selects nothing elsewhere), whose selector matches; the
 *   oldest wins.
 *
 * The mode starts PERMISSIVE; the mesh, then the namespace, then the workload level replace it
 * unless they say UNSET (or nothing). The workload level's `portLevelMtls` then decides each
 * port it names (a port saying UNSET takes the workload's mode). Ports are the workload's
 * container ports, as Istio reads them (the port the app listens on, not the service port).
 */
import type { Resource } from '../api/resources/meta.js';
import type { MutualTLSMode, PeerAuthenticationSpec } from '../api/resources/peer-authentication.js';
import { byCreation } from './creation-order.js';
import { selectorMatches, type Labels } from './labels.js';

/** What a mode resolves to: UNSET never survives composition. */
export type EffectivePeerMode = Exclude<MutualTLSMode, 'UNSET'>;

export type PeerAuthenticationResource = Resource<PeerAuthenticationSpec>;

/** The composed policy for one workload: its mode, and the ports that differ. */
export interface ComposedPeerAuthentication {
  mode: EffectivePeerMode;
  /** Container port -> mode, from the workload-level policy's portLevelMtls. */
  ports: ReadonlyMap<number, EffectivePeerMode>;
  /** `namespace/name` of the policies that decided, for explanations: mesh, namespace, workload. */
  from: { mesh?: string; namespace?: string; workload?: string };
  /** `namespace/name` of the policy whose mode is in force (the most specific one that sets one); none: the PERMISSIVE default. */
  decidedBy?: string;
}

const set = (mode: MutualTLSMode | undefined): EffectivePeerMode | undefined => (mode && mode !== 'UNSET' ? mode : undefined);

/**
 * The composed PeerAuthentication of a workload in `namespace` with `labels`, from every
 * PeerAuthentication of the config (others are ignored).
 */
export function composePeerAuthentication(
  policies: readonly PeerAuthenticationResource[],
  rootNamespace: string,
  workload: { namespace: string; labels: Labels },
): ComposedPeerAuthentication {
  let mesh: PeerAuthenticationResource | undefined;
  let namespace: PeerAuthenticationResource | undefined;
  let selected: PeerAuthenticationResource | undefined;
  const older = (a: PeerAuthenticationResource, b: PeerAuthenticationResource | undefined) => b === undefined || byCreation(a, b) < 0;
  for (const pa of policies) {
    if (pa.kind !== 'PeerAuthentication') continue;
    const selector = pa.spec?.selector?.matchLabels;
    const ns = pa.metadata.namespace;
    if (!selector || Object.keys(selector).length === 0) {
      if (ns === rootNamespace) {
        if (older(pa, mesh)) mesh = pa;
      } else if (ns === workload.namespace && older(pa, namespace)) namespace = pa;
    } else if (ns !== rootNamespace && ns === workload.namespace && selectorMatches(selector, workload.labels) && older(pa, selected)) {
      selected = pa;
    }
  }
  let mode: EffectivePeerMode = 'PERMISSIVE';
  let decider: PeerAuthenticationResource | undefined;
  for (const level of [mesh, namespace, selected]) {
    const levelMode = set(level?.spec?.mtls?.mode);
    if (levelMode !== undefined) [mode, decider] = [levelMode, level];
  }
  const ports = new Map<number, EffectivePeerMode>();
  for (const [port, mtls] of Object.entries(selected?.spec?.portLevelMtls ?? {})) {
    const n = Number(port);
    if (Number.isInteger(n)) ports.set(n, set(mtls?.mode) ?? mode);
  }
  const name = (pa: PeerAuthenticationResource | undefined) => (pa ? `${pa.metadata.namespace}/${pa.metadata.name}` : undefined);
  const from: ComposedPeerAuthentication['from'] = {};
  if (mesh) from.mesh = name(mesh);
  if (namespace) from.namespace = name(namespace);
  if (selected) from.workload = name(selected);
  return decider ? { mode, ports, from, decidedBy: name(decider) } : { mode, ports, from };
}

/** The mode on one container port of a composed policy. */
export function peerModeForPort(composed: ComposedPeerAuthentication, containerPort: number): EffectivePeerMode {
  return composed.ports.get(containerPort) ?? composed.mode;
}
