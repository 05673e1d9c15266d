/**
 * Sidecar spec (networking.istio.io), field for field from the v1 CRD schema in istio/api
 * kubernetes/customresourcedefinitions.gen.yaml. Strict objects; Istio's rules (egress host
 * `namespace/host` form, unique ports, bind addresses, outbound policy) are in
 * src/config/semantic/sidecar.ts.
 */
import { z } from 'zod';
import { connectionPoolSettingsSchema } from './destination-rule.js';
import { serverTLSSettingsSchema } from './gateway.js';
import { destinationSchema } from './virtual-service.js';

const uint32 = z.number().int().min(0);

/** Istio's `SidecarPort`: unlike a Gateway port every field is optional. */
export const sidecarPortSchema = z.strictObject({
  number: uint32.optional(),
  protocol: z.string().optional(),
  name: z.string().optional(),
  /** Deprecated; Istio reports that it has no effect on Sidecars. */
  targetPort: uint32.optional(),
});
export type SidecarPort = z.infer<typeof sidecarPortSchema>;

const captureModeSchema = z.enum(['DEFAULT', 'IPTABLES', 'NONE']);

export const istioIngressListenerSchema = z.strictObject({
  port: sidecarPortSchema,
  bind: z.string().optional(),
  captureMode: captureModeSchema.optional(),
  defaultEndpoint: z.string().optional(),
  tls: serverTLSSettingsSchema.optional(),
  connectionPool: connectionPoolSettingsSchema.optional(),
});
export type IstioIngressListener = z.infer<typeof istioIngressListenerSchema>;

export const istioEgressListenerSchema = z.strictObject({
  port: sidecarPortSchema.optional(),
  bind: z.string().optional(),
  captureMode: captureModeSchema.optional(),
  hosts: z.array(z.string()),
});
export type IstioEgressListener = z.infer<typeof istioEgressListenerSchema>;

export const outboundTrafficPolicySchema = z.strictObject({
  mode: z.enum(['REGISTRY_ONLY', 'ALLOW_ANY']).optional(),
  egressProxy: destinationSchema.optional(),
});
export type OutboundTrafficPolicy = z.infer<typeof outboundTrafficPolicySchema>;

/** Sidecar's own (older) selector form: `labels`, not `matchLabels`. */
export const sidecarWorkloadSelectorSchema = z.strictObject({
  labels: z.record(z.string(), z.string()).optional(),
});

/** Sidecar spec (networking.istio.io). */
export const sidecarSpecSchema = z.strictObject({
  workloadSelector: sidecarWorkloadSelectorSchema.optional(),
  ingress: z.array(istioIngressListenerSchema).optional(),
  egress: z.array(istioEgressListenerSchema).optional(),
  inboundConnectionPool: connectionPoolSettingsSchema.optional(),
  outboundTrafficPolicy: outboundTrafficPolicySchema.optional(),
});
export type SidecarSpec = z.infer<typeof sidecarSpecSchema>;
