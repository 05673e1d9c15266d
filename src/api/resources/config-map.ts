/**
 * Kubernetes ConfigMaps (core v1), as the Gateway API reads CA certificates from them: a
 * BackendTLSPolicy's `validation.caCertificateRefs` and a Gateway's client certificate
 * validation name ConfigMaps whose `ca.crt` holds PEM certificates. As for a Secret, the content
 * sits at the top level (`data`, `binaryData`, `immutable`); Sinew keeps it as the resource's
 * spec and writes it back where it was (`manifestOf`). A ConfigMap is not secret: it is shown
 * as it is.
 */
import { z } from 'zod';

export const CONFIG_MAP_TOP_LEVEL_FIELDS = ['data', 'binaryData', 'immutable'] as const;

/** The key the Gateway API reads CA certificates from (GEP-1897). */
export const CA_CERTIFICATE_KEY = 'ca.crt';

export const configMapSpecSchema = z.strictObject({
  data: z.record(z.string(), z.string()).optional(),
  binaryData: z.record(z.string(), z.string()).optional(),
  immutable: z.boolean().optional(),
});
export type ConfigMapSpec = z.infer<typeof configMapSpecSchema>;
