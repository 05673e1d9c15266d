/**
 * Kubernetes core v1 kinds Sinew reads: Service (a name, a selector and ports) and
 * Namespace; and discovery.k8s.io v1 EndpointSlice, the endpoints of a Service without a
 * selector (written by hand or by another controller). The Service spec is strict where Sinew uses it (ports, selector, type) and
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

/** The label naming the Service an EndpointSlice belongs to (discovery.k8s.io LabelServiceName). */
export const ENDPOINT_SLICE_SERVICE_LABEL = 'kubernetes.io/service-name';

/** discovery.k8s.io/v1 EndpointPort. */
export const endpointPortSchema = z.looseObject({
  /** The Service port's name it serves (empty for a Service's single unnamed port). */
  name: z.string().optional(),
  protocol: z.enum(serviceProtocols).optional(),
  appProtocol: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
});

/** discovery.k8s.io/v1 Endpoint: the addresses of one backend (a pod, usually, named by targetRef). */
export const endpointSchema = z.looseObject({
  addresses: z.array(z.string()).min(1),
  conditions: z.looseObject({ ready: z.boolean().nullable().optional(), serving: z.boolean().nullable().optional(), terminating: z.boolean().nullable().optional() }).optional(),
  hostname: z.string().optional(),
  nodeName: z.string().optional(),
  zone: z.string().optional(),
  targetRef: z.looseObject({ kind: z.string().optional(), name: z.string().optional(), namespace: z.string().optional(), uid: z.string().optional() }).optional(),
});

/**
 * An EndpointSlice's content, which Kubernetes keeps at the top level of the object (no
 * `spec`): its address type, endpoints and ports.
 */
export const endpointSliceSpecSchema = z.strictObject({
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
  endpoints: z.array(endpointSchema).nullable().optional(),
  ports: z.array(endpointPortSchema).nullable().optional(),
});
export type EndpointSliceSpec = z.infer<typeof endpointSliceSpecSchema>;
export const ENDPOINT_SLICE_TOP_LEVEL_FIELDS = ['addressType', 'endpoints', 'ports'] as const;
