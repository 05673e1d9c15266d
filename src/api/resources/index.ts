/**
 * The kinds Sinew reads, with the versions each accepts. All versions of a kind normalise
 * to one internal form (the spec shapes are the same across Istio's versions).
 */
import type { KindDefinition, Resource } from './meta.js';
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
import { serviceSpecSchema, namespaceSpecSchema, endpointSliceSpecSchema, ENDPOINT_SLICE_TOP_LEVEL_FIELDS } from './kubernetes.js';
import { workloadSpecSchema } from './workload.js';
import { redactSecret, secretSpecSchema, SECRET_TOP_LEVEL_FIELDS, type SecretSpec } from './secret.js';
import { configMapSpecSchema, CONFIG_MAP_TOP_LEVEL_FIELDS } from './config-map.js';
import { gatewayApiKindDefinitions } from './gateway-api/index.js';
import { groupOf } from './meta.js';

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
export * from './secret.js';
export * from './config-map.js';
// The Gateway API's types share names with Istio's (GatewaySpec, Listener): import them from
// './gateway-api/index.js'.
export { GATEWAY_API_GROUP, UNIMPLEMENTED_GATEWAY_API_KINDS } from './gateway-api/index.js';

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
  { kind: 'EndpointSlice', group: 'discovery.k8s.io', versions: ['v1'], namespaced: true, spec: endpointSliceSpecSchema, topLevelSpec: ENDPOINT_SLICE_TOP_LEVEL_FIELDS },
  { kind: 'Workload', group: 'sinew.dev', versions: ['v1alpha1'], namespaced: true, spec: workloadSpecSchema },
  { kind: 'Secret', group: '', versions: ['v1'], namespaced: true, spec: secretSpecSchema, topLevelSpec: SECRET_TOP_LEVEL_FIELDS },
  { kind: 'ConfigMap', group: '', versions: ['v1'], namespaced: true, spec: configMapSpecSchema, topLevelSpec: CONFIG_MAP_TOP_LEVEL_FIELDS },
  ...gatewayApiKindDefinitions,
]);

/**
 * A kind by its name, its name and group, or its key (`Gateway.gateway.networking.k8s.io`).
 * Without a group, a name two groups share means the kind that had it first (Istio's Gateway),
 * as kubectl resolves `gateway` to one of them.
 */
export function findKind(kind: string, group?: string): KindDefinition | undefined {
  if (group !== undefined) return kindDefinitions.find((d) => d.kind === kind && d.group === group);
  return kindDefinitions.find((d) => d.key === kind) ?? kindDefinitions.find((d) => d.kind === kind);
}

/**
 * The key a resource of this kind and group is stored, listed and asked for under: the kind,
 * or the KindDefinition's `key` where two groups share the kind's name. Unknown kinds are
 * their own key.
 */
export function kindKey(kind: string, group: string): string {
  return qualifiedKeys.get(`${kind}/${group}`) ?? kind;
}

/** The kinds stored under a key other than their name, by `kind/group` (kindKey runs once per resource per lookup: keep it a map read). */
const qualifiedKeys = new Map(kindDefinitions.filter((d) => d.key).map((d) => [`${d.kind}/${d.group}`, d.key!]));

/** The key of a resource (or anything with a kind and an apiVersion or group). */
export function kindKeyOf(r: { kind: string; group?: string; apiVersion?: string }): string {
  return kindKey(r.kind, r.group ?? groupOf(r.apiVersion ?? ''));
}

/**
 * A resource as Kubernetes writes it: apiVersion, kind, metadata, then its content: `spec`, or
 * for a Secret `type` and `data` at the top level. With `redact` (everything that shows a
 * resource to someone: `sinew get`, the API's listings, the console), a Secret's values are
 * replaced by their sizes; only the store and the compiler see them.
 */
export function manifestOf(r: Pick<Resource, 'apiVersion' | 'kind' | 'metadata' | 'spec'> & { group?: string }, options: { redact?: boolean } = {}): Record<string, unknown> {
  const def = findKind(r.kind, r.group ?? groupOf(r.apiVersion));
  // A cluster-scoped resource (Namespace, GatewayClass) has no namespace to write.
  const metadata = def && !def.namespaced && !r.metadata.namespace ? Object.fromEntries(Object.entries(r.metadata).filter(([k]) => k !== 'namespace')) : r.metadata;
  const head = { apiVersion: r.apiVersion, kind: r.kind, metadata };
  if (!def?.topLevelSpec) return { ...head, spec: r.spec };
  const content = (r.kind === 'Secret' && options.redact ? redactSecret(r.spec as SecretSpec) : r.spec) as Record<string, unknown>;
  return { ...head, ...content };
}
