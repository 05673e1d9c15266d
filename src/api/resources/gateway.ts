/**
 * Gateway spec (networking.istio.io), field for field from the v1 CRD schema in istio/api
 * kubernetes/customresourcedefinitions.gen.yaml. Strict objects; the port protocol is a free
 * string in the CRD (Istio parses it case-insensitively), so it is checked semantically in
 * src/config/semantic/gateway.ts together with hosts, TLS and bind rules.
 */
import { z } from 'zod';

const uint32 = z.number().int().min(0);

/** Istio's `Port` for Gateway servers. Sidecar listeners use their own `SidecarPort`. */
export const gatewayPortSchema = z.strictObject({
  number: uint32,
  protocol: z.string(),
  name: z.string(),
  /** Deprecated; Istio reports that it has no effect on Gateways. */
  targetPort: uint32.optional(),
});
export type GatewayPort = z.infer<typeof gatewayPortSchema>;

export const tlsProtocolVersionSchema = z.enum(['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3']);

/** Server-side TLS: Gateway servers and Sidecar ingress listeners. */
export const serverTLSSettingsSchema = z.strictObject({
  httpsRedirect: z.boolean().optional(),
  mode: z.enum(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']).optional(),
  serverCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  caCrl: z.string().optional(),
  credentialName: z.string().optional(),
  credentialNames: z.array(z.string()).min(1).max(2).optional(),
  tlsCertificates: z
    .array(
      z.strictObject({
        serverCertificate: z.string().optional(),
        privateKey: z.string().optional(),
        caCertificates: z.string().optional(),
      }),
    )
    .min(1)
    .max(2)
    .optional(),
  caCertCredentialName: z.string().optional(),
  subjectAltNames: z.array(z.string()).optional(),
  verifyCertificateSpki: z.array(z.string()).optional(),
  verifyCertificateHash: z.array(z.string()).optional(),
  minProtocolVersion: tlsProtocolVersionSchema.optional(),
  maxProtocolVersion: tlsProtocolVersionSchema.optional(),
  cipherSuites: z.array(z.string()).optional(),
  insecureSkipVerify: z.boolean().optional(),
});
export type ServerTLSSettings = z.infer<typeof serverTLSSettingsSchema>;

export const serverSchema = z.strictObject({
  port: gatewayPortSchema,
  bind: z.string().optional(),
  hosts: z.array(z.string()),
  tls: serverTLSSettingsSchema.optional(),
  defaultEndpoint: z.string().optional(),
  name: z.string().optional(),
});
export type Server = z.infer<typeof serverSchema>;

/** Gateway spec (networking.istio.io). */
export const gatewaySpecSchema = z.strictObject({
  servers: z.array(serverSchema).optional(),
  selector: z.record(z.string(), z.string()).optional(),
});
export type GatewaySpec = z.infer<typeof gatewaySpecSchema>;
