/**
 * `sinew.filters.http.jwt_authn`: RequestAuthentication (src/security/jwt.ts does the work).
 * A request with a token that fails gets 401 with Envoy's text (`Jwt is expired`, `Jwt
 * verification fails`, ...), details `jwt_authn_access_denied{<text>}` and a
 * `WWW-Authenticate: Bearer` challenge (RFC 6750 3); a valid token's identity goes into the
 * request attributes for the filters after it; a request without a token goes on as it is.
 */
import type { Logger } from '../../../../core/logger.js';
import { createJwtAuthenticator, type JwtDependencies, type JwtOutcome } from '../../../../security/jwt.js';
import type { FilterHeadersStatus, FilterStats, HttpFilterContext, HttpFilterFactory } from '../contract.js';

export const JWT_AUTHN_HTTP_FILTER = 'sinew.filters.http.jwt_authn';

export interface JwtAuthnFilterDependencies extends JwtDependencies {
  stats?: FilterStats;
  logger?: Logger;
}

/**
 * Fetches a JWKS with the runtime's fetch. The proxy should pass a function that sends the
 * request through the mesh (the issuer's ServiceEntry, its DestinationRule) instead; this one
 * serves where the issuer is reached directly.
 */
export async function fetchJwksDirectly(uri: string, signal: AbortSignal): Promise<string> {
  const response = await fetch(uri, { signal, headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status} from ${uri}`);
  return response.text();
}

export function createJwtAuthnFilterFactory(deps: JwtAuthnFilterDependencies): HttpFilterFactory {
  return {
    name: JWT_AUTHN_HTTP_FILTER,
    compile(raw) {
      const authenticator = createJwtAuthenticator(raw, deps);
      const clearRouteCache = authenticator.clearRouteCache;
      const settle = (ctx: HttpFilterContext, outcome: JwtOutcome): FilterHeadersStatus => {
        if (outcome.ok) {
          if (outcome.auth) {
            ctx.attributes.auth = outcome.auth;
            deps.stats?.inc('http.jwt_authn.allowed');
            // Envoy's clear_route_cache: only a verified token changes what routing may see.
            if (clearRouteCache) ctx.clearRouteCache();
          }
          return 'continue';
        }
        deps.stats?.inc('http.jwt_authn.denied');
        deps.logger?.debug('jwt rejected', { reason: outcome.failure, detail: outcome.message });
        return {
          stop: {
            status: 401,
            details: `jwt_authn_access_denied{${outcome.failure.replace(/ /g, '_')}}`,
            body: outcome.failure,
            headers: { 'www-authenticate': `Bearer realm="${realm(ctx.attributes.host, ctx.attributes.path)}", error="invalid_token"` },
          },
        };
      };
      return {
        decodeHeaders(ctx) {
          // A token verified before is answered at once; only a new one waits for verification.
          const outcome = authenticator.authenticate({ headers: ctx.requestHeaders, path: ctx.attributes.path ?? '/' });
          return outcome instanceof Promise ? outcome.then((o) => settle(ctx, o)) : settle(ctx, outcome);
        },
      };
    },
  };
}

/** Envoy's realm: the request URL without its query. */
function realm(host: string | undefined, path: string | undefined): string {
  const p = (path ?? '/').split('?')[0];
  return `http://${host ?? ''}${p}`.replace(/["\\]/g, '');
}
