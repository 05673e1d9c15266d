/**
 * The kinds Sinew reads, with the versions each accepts. All versions of a kind normalise
 * to one internal form (the spec shapes are the same across Istio's versions).
 */
import type { KindDefinition } from './meta.js';
import { virtualServiceSpecSchema } from './virtual-service.js';
import { destinationRuleSpecSchema } from './destination-rule.js';
import { gatewaySpecSchema } from './gateway.js';
import { sidecarSpecSchema } from './sidecar.js';
import { serviceEntrySpecSchema } from './service-entry.js';
import { workloadEntrySpecSchema, workloadGroupSpecSchema } from './workload-entry.js';
import { peerAuthenticationSpecSchema } from './peer-authentication.js';
import { authorizationPolicySpecSchema } from './authorization-policy.js';
import { requestAuthenticationSpecSchema } from './request-authentication.js';
import { telemetrySpecSchema } from './telemetry.js';
import { serviceSpecSchema, namespaceSpecSchema } from './kubernetes.js';
import { workloadSpecSchema } from './workload.js';

export * from './meta.js';
export * from './common.js';
export * from './virtual-service.js';
export * from './destination-rule.js';
export * from './gateway.js';
export * from './sidecar.js';
export * from './service-entry.js';
export * from './workload-entry.js';
export * from './peer-authentication.js';
export * from './authorization-policy.js';
export * from './request-authentication.js';
export * from './telemetry.js';
export * from './kubernetes.js';
export * from './workload.js';

const networking = ['v1alpha3', 'v1beta1', 'v1'] as const;
const security = ['v1beta1', 'v1'] as const;

export const kindDefinitions: readonly KindDefinition[] = Object.freeze([
  { kind: 'VirtualService', group: 'networking.istio.io', versions: networking, namespaced: true, spec: virtualServiceSpecSchema },
  { kind: 'DestinationRule', group: 'networking.istio.io', versions: networking, namespaced: true, spec: destinationRuleSpecSchema },
  { kind: 'Gateway', group: 'networking.istio.io', versions: networking, namespaced: true, spec: gatewaySpecSchema },
  { kind: 'ServiceEntry', group: 'networking.istio.io', versions: networking, namespaced: true, spec: serviceEntrySpecSchema },
  { kind: 'WorkloadEntry', group: 'networking.istio.io', versions: networking, namespaced: true, spec: workloadEntrySpecSchema },
  { kind: 'WorkloadGroup', group: 'networking.istio.io', versions: networking, namespaced: true, spec: workloadGroupSpecSchema },
  { kind: 'Sidecar', group: 'networking.istio.io', versions: networking, namespaced: true, spec: sidecarSpecSchema },
  { kind: 'PeerAuthentication', group: 'security.istio.io', versions: security, namespaced: true, spec: peerAuthenticationSpecSchema },
  { kind: 'AuthorizationPolicy', group: 'security.istio.io', versions: security, namespaced: true, spec: authorizationPolicySpecSchema },
  { kind: 'RequestAuthentication', group: 'security.istio.io', versions: security, namespaced: true, spec: requestAuthenticationSpecSchema },
  { kind: 'Telemetry', group: 'telemetry.istio.io', versions: ['v1alpha1', 'v1'], namespaced: true, spec: telemetrySpecSchema },
  { kind: 'Service', group: '', versions: ['v1'], namespaced: true, spec: serviceSpecSchema, extraTopLevel: ['status'] },
  { kind: 'Namespace', group: '', versions: ['v1'], namespaced: false, spec: namespaceSpecSchema, extraTopLevel: ['status'] },
  { kind: 'Workload', group: 'sinew.dev', versions: ['v1alpha1'], namespaced: true, spec: workloadSpecSchema },
]);

export function findKind(kind: string): KindDefinition | undefined {
  return kindDefinitions.find((d) => d.kind === kind);
}
