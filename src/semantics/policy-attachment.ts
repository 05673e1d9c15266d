/**
 * Which workload-scoped policies attach to a proxy: Istio's WorkloadPolicyMatcher
 * (pilot/pkg/model/policyattachment.go ShouldAttachPolicy), for the proxies Sinew runs.
 *
 * - A proxy of a Gateway API gateway carries `gateway.networking.k8s.io/gateway-name`: a
 *   policy in its namespace attaches through a targetRef to that Gateway
 *   (gateway.networking.k8s.io), or through its selector when it has no targetRef (Istio's
 *   ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY, on by default).
 * - Any other proxy (sidecars, the istio-ingressgateway): a policy with a targetRef never
 *   attaches (Service and ServiceEntry targets are for waypoints); one with a selector
 *   attaches when the selector's labels are the proxy's.
 */
import { selectorMatches, type Labels } from './labels.js';

export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

export interface TargetRef {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface TargetablePolicy {
  selector?: { matchLabels?: Labels } | null;
  targetRef?: TargetRef | null;
  targetRefs?: readonly TargetRef[] | null;
}

/** A policy's targetRefs, the legacy single targetRef counting as one. */
export function targetRefsOf(policy: TargetablePolicy): readonly TargetRef[] {
  if (policy.targetRefs?.length) return policy.targetRefs;
  return policy.targetRef ? [policy.targetRef] : [];
}

/** Whether a policy in `policyNamespace` with a selector or targetRefs attaches to a proxy with `labels` in `proxyNamespace`. */
export function policyAttaches(policy: TargetablePolicy, policyNamespace: string, proxyNamespace: string, labels: Labels): boolean {
  const refs = targetRefsOf(policy);
  const gatewayName = labels[GATEWAY_NAME_LABEL];
  const selected = () => selectorMatches(policy.selector?.matchLabels, labels);
  if (gatewayName === undefined) return refs.length === 0 && selected();
  if (refs.length === 0) return selected();
  if (policyNamespace !== proxyNamespace) return false;
  return refs.some((r) => r.group === 'gateway.networking.k8s.io' && r.kind === 'Gateway' && r.name === gatewayName && (!r.namespace || r.namespace === proxyNamespace));
}
