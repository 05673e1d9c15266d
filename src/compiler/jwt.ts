/**
 * RequestAuthentication -> the `sinew.filters.http.jwt_authn` config of a proxy (Istio's
 * pilot/pkg/security/authn jwt filter): the jwtRules of every RequestAuthentication that
 * applies to it (root namespace, its namespace, its selector or targetRefs, as for
 * AuthorizationPolicy), one provider each, in the form src/security/jwt.ts checks.
 *
 * Istio's defaults are written out here so that the proxy never has to know them: a rule that
 * names no location reads `Authorization: Bearer <token>` and `?access_token=`.
 * A `jwksUri` is passed on and fetched by the proxy through the mesh.
 */
import type { Resource } from '../api/resources/meta.js';
import type { JWTRule, RequestAuthenticationSpec } from '../api/resources/request-authentication.js';
import { DEFAULT_TOKEN_LOCATIONS, type JwtAuthnConfig, type JwtProvider } from '../security/jwt-config.js';
import { durationMs } from './util.js';

export type RequestAuthenticationResource = Resource<RequestAuthenticationSpec>;

export const JWT_AUTHN_HTTP_FILTER = 'sinew.filters.http.jwt_authn';

/** The jwt_authn config for the RequestAuthentications that apply to a proxy; undefined when they have no rules. */
export function compileJwtAuthn(policies: readonly RequestAuthenticationResource[]): JwtAuthnConfig | undefined {
  const providers = policies.flatMap((p) => (p.spec.jwtRules ?? []).filter((r) => r.issuer).map(provider));
  return providers.length > 0 ? { providers } : undefined;
}

function provider(rule: JWTRule): JwtProvider {
  const named = rule.fromHeaders?.length || rule.fromParams?.length || rule.fromCookies?.length;
  const jwksUri = rule.jwksUri ?? rule.jwks_uri;
  const timeout = durationMs(rule.timeout);
  return {
    issuer: rule.issuer!,
    ...(rule.audiences?.length ? { audiences: [...rule.audiences] } : {}),
    ...(rule.jwks !== undefined ? { jwks: rule.jwks } : jwksUri !== undefined ? { jwksUri } : {}),
    ...(timeout !== undefined ? { jwksTimeoutMs: timeout } : {}),
    fromHeaders: named ? (rule.fromHeaders ?? []).map((h) => ({ name: h.name.toLowerCase(), ...(h.prefix !== undefined ? { prefix: h.prefix } : {}) })) : DEFAULT_TOKEN_LOCATIONS.fromHeaders.map((h) => ({ ...h })),
    fromParams: named ? [...(rule.fromParams ?? [])] : [...DEFAULT_TOKEN_LOCATIONS.fromParams],
    fromCookies: named ? [...(rule.fromCookies ?? [])] : [],
    ...(rule.outputPayloadToHeader ? { outputPayloadToHeader: rule.outputPayloadToHeader } : {}),
    ...(rule.outputClaimToHeaders?.length ? { outputClaimToHeaders: rule.outputClaimToHeaders.map((c) => ({ ...c })) } : {}),
    ...(rule.forwardOriginalToken ? { forwardOriginalToken: true } : {}),
  };
}
