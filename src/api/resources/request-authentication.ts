/**
 * RequestAuthentication (security.istio.io), as in Istio's CRD (v1 schema, plus `presence`
 * from istio/istio's shipped CRD). Structural only; ValidateRequestAuthentication and
 * validateJwtRule live in src/config/semantic/request-authentication.ts.
 */
import { z } from 'zod';
import { policyTargetReferenceSchema, workloadSelectorSchema } from './common.js';

/** Where to look for the token: a header, with an optional prefix such as `Bearer `. */
export const jwtHeaderSchema = z.strictObject({
  name: z.string(),
  prefix: z.string().optional(),
});
export type JWTHeader = z.infer<typeof jwtHeaderSchema>;

export const claimToHeaderSchema = z.strictObject({
  header: z.string(),
  claim: z.string(),
});
export type ClaimToHeader = z.infer<typeof claimToHeaderSchema>;

export const jwtPresence = ['OPTIONAL', 'REQUIRED'] as const;

export const jwtRuleSchema = z.strictObject({
  issuer: z.string().optional(),
  audiences: z.array(z.string()).optional(),
  jwksUri: z.string().optional(),
  /** Deprecated spelling of jwksUri, still in the CRD. */
  jwks_uri: z.string().optional(),
  /** An inline JSON Web Key Set. */
  jwks: z.string().optional(),
  fromHeaders: z.array(jwtHeaderSchema).optional(),
  fromParams: z.array(z.string()).optional(),
  fromCookies: z.array(z.string()).optional(),
  outputPayloadToHeader: z.string().optional(),
  forwardOriginalToken: z.boolean().optional(),
  outputClaimToHeaders: z.array(claimToHeaderSchema).optional(),
  /** Timeout for fetching the JWKS (a duration). */
  timeout: z.string().optional(),
  spaceDelimitedClaims: z.array(z.string()).optional(),
  presence: z.enum(jwtPresence).optional(),
});
export type JWTRule = z.infer<typeof jwtRuleSchema>;

export const requestAuthenticationSpecSchema = z.strictObject({
  selector: workloadSelectorSchema.optional(),
  targetRef: policyTargetReferenceSchema.optional(),
  targetRefs: z.array(policyTargetReferenceSchema).optional(),
  jwtRules: z.array(jwtRuleSchema).optional(),
});
export type RequestAuthenticationSpec = z.infer<typeof requestAuthenticationSpecSchema>;
