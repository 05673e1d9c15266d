/**
 * PeerAuthentication (security.istio.io), as in Istio's CRD (v1 schema). Structural only;
 * ValidatePeerAuthentication's rules live in src/config/semantic/peer-authentication.ts.
 */
import { z } from 'zod';
import { workloadSelectorSchema } from './common.js';

/** UNSET inherits from the parent (namespace, then mesh); at the root it means PERMISSIVE. */
export const mtlsModes = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
export type MutualTLSMode = (typeof mtlsModes)[number];

export const mutualTlsSchema = z.strictObject({
  mode: z.enum(mtlsModes).optional(),
});
export type MutualTLS = z.infer<typeof mutualTlsSchema>;

export const peerAuthenticationSpecSchema = z.strictObject({
  selector: workloadSelectorSchema.optional(),
  mtls: mutualTlsSchema.optional(),
  /** Port number (as a map key, so a string) -> mode. Requires a selector. */
  portLevelMtls: z.record(z.string(), mutualTlsSchema).optional(),
});
export type PeerAuthenticationSpec = z.infer<typeof peerAuthenticationSpecSchema>;
