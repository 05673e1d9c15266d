/**
 * WorkloadEntry and WorkloadGroup (networking.istio.io), fields as in Istio's CRD
 * (istio/api kubernetes/customresourcedefinitions.gen.yaml, v1). Structural only: address
 * forms, port ranges and label syntax are Istio's semantic rules
 * (src/config/semantic/workload-entry.ts).
 */
import { z } from 'zod';
import { labelsSchema } from './common.js';

/** One workload outside Kubernetes (also a ServiceEntry endpoint). */
export const workloadEntrySpecSchema = z.strictObject({
  /** IP, FQDN, or `unix:///path` / `unix://@abstract`. Optional when `network` is set. */
  address: z.string().optional(),
  /** Port name (of the ServiceEntry / Service) -> port number on this workload. */
  ports: z.record(z.string(), z.number().int()).optional(),
  labels: labelsSchema.optional(),
  network: z.string().optional(),
  locality: z.string().optional(),
  weight: z.number().int().optional(),
  serviceAccount: z.string().optional(),
});
export type WorkloadEntrySpec = z.infer<typeof workloadEntrySpecSchema>;

const probePortSchema = z.number().int();

export const httpHeaderSchema = z.strictObject({
  name: z.string().optional(),
  value: z.string().optional(),
});

export const httpHealthCheckConfigSchema = z.strictObject({
  path: z.string().optional(),
  port: probePortSchema,
  host: z.string().optional(),
  scheme: z.string().optional(),
  httpHeaders: z.array(httpHeaderSchema).optional(),
});

export const tcpHealthCheckConfigSchema = z.strictObject({
  host: z.string().optional(),
  port: probePortSchema,
});

export const execHealthCheckConfigSchema = z.strictObject({
  command: z.array(z.string()),
});

export const grpcHealthCheckConfigSchema = z.strictObject({
  port: probePortSchema.optional(),
  service: z.string().optional(),
});

/** WorkloadGroup readiness probe: exactly one of httpGet, tcpSocket, exec, grpc (checked semantically). */
export const readinessProbeSchema = z.strictObject({
  initialDelaySeconds: z.number().int().optional(),
  timeoutSeconds: z.number().int().optional(),
  periodSeconds: z.number().int().optional(),
  successThreshold: z.number().int().optional(),
  failureThreshold: z.number().int().optional(),
  httpGet: httpHealthCheckConfigSchema.optional(),
  tcpSocket: tcpHealthCheckConfigSchema.optional(),
  exec: execHealthCheckConfigSchema.optional(),
  grpc: grpcHealthCheckConfigSchema.optional(),
});
export type ReadinessProbe = z.infer<typeof readinessProbeSchema>;

/** Template for the WorkloadEntries auto-registered from a WorkloadGroup. */
export const workloadGroupSpecSchema = z.strictObject({
  metadata: z
    .strictObject({
      labels: labelsSchema.optional(),
      annotations: labelsSchema.optional(),
    })
    .optional(),
  // The CRD requires it; Istio's ValidateWorkloadGroup says "template is required".
  template: workloadEntrySpecSchema,
  probe: readinessProbeSchema.optional(),
});
export type WorkloadGroupSpec = z.infer<typeof workloadGroupSpecSchema>;
