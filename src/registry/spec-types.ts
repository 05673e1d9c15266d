/**
 * The spec types of the source kinds the registry reads, from src/api/resources (one
 * definition for validation and code alike).
 */
export type { ServiceSpec as KubeServiceSpec, EndpointSliceSpec } from '../api/resources/kubernetes.js';
export type { ServiceEntrySpec } from '../api/resources/service-entry.js';
export type { WorkloadEntrySpec } from '../api/resources/workload-entry.js';
export type { WorkloadSpec, Probe as ProbeSpec } from '../api/resources/workload.js';
