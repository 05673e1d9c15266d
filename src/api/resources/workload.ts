/**
 * Sinew's Workload (sinew.dev/v1alpha1): a local process the embedded mesh runs, with its
 * sidecar, as `replicas` copies. Shaped like a Kubernetes container so that moving to a
 * Deployment later is mechanical.
 *
 * Labels are the resource's `metadata.labels` (what Service selectors and Istio workload
 * selectors match), as for a Pod; there is no `spec.labels`, so there is one place to look.
 */
import { z } from 'zod';
import { intOrStringSchema } from './kubernetes.js';

export const workloadPortProtocols = ['TCP', 'UDP', 'SCTP'] as const;

/**
 * A port the process serves. `containerPort` is the logical port Services target; the
 * embedded runner gives each replica its real port in `PORT`.
 */
export const workloadPortSchema = z.strictObject({
  name: z.string().optional(),
  containerPort: z.number().int(),
  protocol: z.enum(workloadPortProtocols).optional(),
});
export type WorkloadPort = z.infer<typeof workloadPortSchema>;

export const envVarSchema = z.strictObject({
  name: z.string(),
  value: z.string().optional(),
});
export type EnvVar = z.infer<typeof envVarSchema>;

/**
 * Kubernetes-like readiness probe: exactly one of httpGet or tcpSocket (no exec: a probe
 * runs a request against the process, never a second program). `port` is a containerPort
 * number or the name of one.
 */
export const probeSchema = z.strictObject({
  httpGet: z
    .strictObject({
      path: z.string().optional(),
      port: intOrStringSchema,
      scheme: z.enum(['HTTP', 'HTTPS']).optional(),
      httpHeaders: z.array(z.strictObject({ name: z.string(), value: z.string() })).optional(),
    })
    .optional(),
  tcpSocket: z.strictObject({ port: intOrStringSchema }).optional(),
  initialDelaySeconds: z.number().int().optional(),
  periodSeconds: z.number().int().optional(),
  timeoutSeconds: z.number().int().optional(),
  failureThreshold: z.number().int().optional(),
  successThreshold: z.number().int().optional(),
});
export type Probe = z.infer<typeof probeSchema>;

/** Replicas when `spec.replicas` is not given. */
export const DEFAULT_WORKLOAD_REPLICAS = 1;

export const workloadSpecSchema = z.strictObject({
  /** The program and its fixed arguments (like a container's `command`); required, not empty. */
  command: z.array(z.string()),
  args: z.array(z.string()).optional(),
  env: z.array(envVarSchema).optional(),
  ports: z.array(workloadPortSchema).optional(),
  /** Copies to run; default DEFAULT_WORKLOAD_REPLICAS (1); 0 keeps the workload defined but stopped. */
  replicas: z.number().int().optional(),
  /** Identity for mTLS (`spiffe://<trust-domain>/ns/<ns>/sa/<serviceAccount>`); default `default`. */
  serviceAccount: z.string().optional(),
  readinessProbe: probeSchema.optional(),
  /** Working directory of the process; the embedded runner resolves it against the manifest's directory (the default). */
  workingDir: z.string().optional(),
});
export type WorkloadSpec = z.infer<typeof workloadSpecSchema>;

/** The number of replicas a validated Workload asks for (the stored spec is as written, without defaults). */
export function workloadReplicas(spec: Pick<WorkloadSpec, 'replicas'>): number {
  return spec.replicas ?? DEFAULT_WORKLOAD_REPLICAS;
}
