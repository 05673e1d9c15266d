/**
 * The `sinew.filters.http.jwt_authn` filter config: what the compiler makes of Istio's
 * RequestAuthentication jwtRules and the JWT authenticator (jwt.ts) reads. Kept apart from the
 * authenticator so that the compiler does not load the JOSE library.
 */
import { z } from 'zod';

const providerSchema = z.strictObject({
  issuer: z.string().min(1),
  /** The token's `aud` must contain one of these; absent: any audience. */
  audiences: z.array(z.string()).optional(),
  /** An inline JSON Web Key Set (text). */
  jwks: z.string().optional(),
  jwksUri: z.string().optional(),
  /** How long a JWKS fetch may take (Istio's `timeout`, default 5 s). */
  jwksTimeoutMs: z.number().int().positive().optional(),
  fromHeaders: z.array(z.strictObject({ name: z.string(), prefix: z.string().optional() })),
  fromParams: z.array(z.string()),
  fromCookies: z.array(z.string()),
  outputPayloadToHeader: z.string().optional(),
  outputClaimToHeaders: z.array(z.strictObject({ header: z.string(), claim: z.string() })).optional(),
  forwardOriginalToken: z.boolean().optional(),
});
export type JwtProvider = z.infer<typeof providerSchema>;

export const jwtAuthnConfigSchema = z.strictObject({
  providers: z.array(providerSchema),
  /** Envoy's clock_skew_seconds (default 60). */
  clockSkewSeconds: z.number().int().min(0).optional(),
  /** How long a fetched JWKS is used before it is fetched again (Istio's default: 20 minutes). */
  jwksRefreshMs: z.number().int().positive().optional(),
  /**
   * Envoy's clear_route_cache: once a token is verified, the route is chosen again with its
   * claims, for VirtualService matches on `@request.auth.claims.*`. Istio sets it at gateways,
   * the only place it allows those matches.
   */
  clearRouteCache: z.boolean().optional(),
});
export type JwtAuthnConfig = z.infer<typeof jwtAuthnConfigSchema>;

/** Where Istio looks when a rule names no location: `Authorization: Bearer <token>` and `?access_token=`. */
export const DEFAULT_TOKEN_LOCATIONS = Object.freeze({
  fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }],
  fromParams: ['access_token'],
  fromCookies: [] as string[],
});

export const DEFAULT_CLOCK_SKEW_SECONDS = 60;
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
export const DEFAULT_JWKS_REFRESH_MS = 20 * 60_000;
