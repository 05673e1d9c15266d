/**
 * ServiceEntry (networking.istio.io), fields and enums as in Istio's CRD (v1 schema).
 * Structural only; Istio's ValidateServiceEntry rules live in
 * src/config/semantic/service-entry.ts.
 */
import { z } from 'zod';
import { labelsSchema } from './common.js';
import { workloadEntrySpecSchema } from './workload-entry.js';

export const serviceEntryLocations = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;
export const serviceEntryResolutions = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const;

/** A port of a ServiceEntry (networking.istio.io `ServicePort`). */
export const servicePortSchema = z.strictObject({
  number: z.number().int(),
  /** HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP, TLS, ... (case-insensitive; checked semantically). */
  protocol: z.string().optional(),
  name: z.string(),
  targetPort: z.number().int().optional(),
});
export type ServicePort = z.infer<typeof servicePortSchema>;

/** The networking (v1alpha3) selector form: `labels`, not `matchLabels`. */
export const networkingWorkloadSelectorSchema = z.strictObject({
  labels: labelsSchema.optional(),
});

export const serviceEntrySpecSchema = z.strictObject({
  // Required by the CRD. Left optional here so that a missing list gets Istio's own message
  // ("service entry must have at least one host") from the semantic rule, not a second error.
  hosts: z.array(z.string()).optional(),
  addresses: z.array(z.string()).optional(),
  ports: z.array(servicePortSchema).optional(),
  location: z.enum(serviceEntryLocations).optional(),
  resolution: z.enum(serviceEntryResolutions).optional(),
  endpoints: z.array(workloadEntrySpecSchema).optional(),
  workloadSelector: networkingWorkloadSelectorSchema.optional(),
  exportTo: z.array(z.string()).optional(),
  subjectAltNames: z.array(z.string()).optional(),
});

/** A validated ServiceEntry spec: validation guarantees at least one host. */
export type ServiceEntrySpec = Omit<z.infer<typeof serviceEntrySpecSchema>, 'hosts'> & { hosts: string[] };
export type ServiceEntryEndpoint = z.infer<typeof workloadEntrySpecSchema>;
