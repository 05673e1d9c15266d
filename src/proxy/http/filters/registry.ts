/**
 * The HTTP filters this proxy can build, by name (Envoy's registry of named filter
 * factories). A new filter is one factory here: authorization (`sinew.filters.http.rbac`,
 * `...ext_authz`) and JWT (`...jwt_authn`) register theirs, and a listener lists them in
 * `HttpConnectionManager.filters` — before `fault`, where Istio puts them, so that a denied
 * request is neither delayed nor aborted — with no change to the connection manager. Tests
 * and embedders may pass more factories to `createProxy({ httpFilters })`.
 */
import type { HttpFilterFactory } from '../filter-api.js';
import type { FilterRegistry } from '../filter-chain.js';
import { routerFactory } from '../router/index.js';
import { corsFactory } from './cors/index.js';
import { faultFactory } from './fault/index.js';
import { peerMetadataFactory } from './peer-metadata/index.js';
import { serverSpanFactory } from './server-span/index.js';

export const BUILTIN_HTTP_FILTERS: readonly HttpFilterFactory[] = Object.freeze([peerMetadataFactory, serverSpanFactory, corsFactory, faultFactory, routerFactory]);

/** The built-in factories plus `extra` (which may not reuse a built-in name). */
export function filterRegistry(extra: readonly HttpFilterFactory[] = []): FilterRegistry {
  const registry = new Map<string, HttpFilterFactory>();
  for (const f of [...BUILTIN_HTTP_FILTERS, ...extra]) {
    if (registry.has(f.name)) throw new Error(`two HTTP filter factories are named ${f.name}`);
    registry.set(f.name, f);
  }
  return registry;
}
