/**
 * The HTTP filters this proxy can build, by name (Envoy's registry of named filter
 * factories). A new filter is one factory here. Authorization (`sinew.filters.http.rbac`,
 * `...ext_authz`) and JWT (`...jwt_authn`) are registered with what they need from the proxy
 * (its clock, counters, a way to fetch a JWKS and to call an authorizer); a listener lists
 * them in `HttpConnectionManager.filters` before `cors` and `fault`, where Istio puts them, so
 * that a denied request is neither delayed nor aborted. Tests and embedders may pass more
 * factories to `createProxy({ httpFilters })`.
 */
import type { HttpFilterFactory } from '../filter-api.js';
import type { FilterRegistry } from '../filter-chain.js';
import { routerFactory } from '../router/index.js';
import { corsFactory } from './cors/index.js';
import { faultFactory } from './fault/index.js';
import { fetchJwksDirectly } from './jwt-authn/index.js';
import { peerMetadataFactory } from './peer-metadata/index.js';
import { securityChainFactories, type SecurityFilterDependencies } from './security-chain.js';
import { serverSpanFactory } from './server-span/index.js';

export const BUILTIN_HTTP_FILTERS: readonly HttpFilterFactory[] = Object.freeze([peerMetadataFactory, serverSpanFactory, corsFactory, faultFactory, routerFactory]);

/**
 * What the security filters are given when a config is only checked, not served (the proxy
 * passes its own): JWKS fetched directly, the system clock, and no authorizer to call.
 */
export function checkOnlySecurityDependencies(): SecurityFilterDependencies {
  return {
    jwt: { fetchJwks: fetchJwksDirectly, now: Date.now },
    extAuthz: { check: () => Promise.reject(new Error('no authorizer can be called here: the config is only being checked')) },
  };
}

/** The built-in factories, the security filters built with `security`, plus `extra` (which may not reuse a built-in name). */
export function filterRegistry(extra: readonly HttpFilterFactory[] = [], security: SecurityFilterDependencies = checkOnlySecurityDependencies()): FilterRegistry {
  const registry = new Map<string, HttpFilterFactory>();
  for (const f of [...BUILTIN_HTTP_FILTERS, ...securityChainFactories(security), ...extra]) {
    if (registry.has(f.name)) throw new Error(`two HTTP filter factories are named ${f.name}`);
    registry.set(f.name, f);
  }
  return registry;
}
