/**
 * Kubernetes core v1 kinds Sinew reads: Service (a name, a selector and ports) and
 * Namespace. The Service spec is strict where Sinew uses it (ports, selector, type) and
 * lets the many other real ServiceSpec fields through, so `kubectl get svc -o yaml` output
 * validates.
 */
import { z } from 'zod';

export const serviceProtocols = ['TCP', 'UDP', 'SCTP'] as const;
export const serviceTypes = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;

/** Kubernetes IntOrString: a port number or the name of a container port. */
export const intOrStringSchema = z.union([z.number().int(), z.string()]);

/** core/v1 ServicePort (Kubernetes' own, not Istio's ServiceEntry port). */
export const kubernetesServicePortSchema = z.strictObject({
  /** Required when the Service has more than one port (checked semantically). */
  name: z.string().optional(),
  protocol: z.enum(serviceProtocols).optional(),
  /** e.g. `http`, `kubernetes.io/h2c`: Istio reads it as the port's protocol. */
  appProtocol: z.string().optional(),
  port: z.number().int(),
  /** Defaults to `port`. A string names a container port. */
  targetPort: intOrStringSchema.optional(),
  nodePort: z.number().int().optional(),
});
export type KubernetesServicePort = z.infer<typeof kubernetesServicePortSchema>;

export const serviceSpecSchema = z.looseObject({
  ports: z.array(kubernetesServicePortSchema).optional(),
  selector: z.record(z.string(), z.string()).nullable().optional(),
  type: z.enum(serviceTypes).optional(),
  clusterIP: z.string().optional(),
  clusterIPs: z.array(z.string()).optional(),
  externalName: z.string().optional(),
  externalIPs: z.array(z.string()).optional(),
  sessionAffinity: z.enum(['ClientIP', 'None']).optional(),
  publishNotReadyAddresses: z.boolean().optional(),
  ipFamilies: z.array(z.enum(['IPv4', 'IPv6'])).optional(),
  ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional(),
  internalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
  externalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
});
export type ServiceSpec = z.infer<typeof serviceSpecSchema>;

/** core/v1 NamespaceSpec: only finalizers. */
export const namespaceSpecSchema = z.looseObject({
  finalizers: z.array(z.string()).optional(),
});
export type NamespaceSpec = z.infer<typeof namespaceSpecSchema>;
