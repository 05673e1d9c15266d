/**
 * The security filters by name, and a minimal runner for a listener's `httpFilters`, until the
 * connection manager's filter chain runs them itself: it builds each named filter once
 * (unknown names and bad configs throw, so the config is refused when applied) and passes a
 * request's headers through them in order, stopping at the first local reply.
 */
import type { NamedFilterConfig } from '../../../api/proxy-config.js';
import type { FilterHeadersStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from './contract.js';
import { createExtAuthzFilterFactory, type ExtAuthzDependencies } from './ext-authz/index.js';
import { createJwtAuthnFilterFactory, type JwtAuthnFilterDependencies } from './jwt-authn/index.js';
import { createRbacFilterFactory, type RbacDependencies } from './rbac/index.js';

export interface SecurityFilterDependencies {
  jwt: JwtAuthnFilterDependencies;
  extAuthz: ExtAuthzDependencies;
  rbac?: RbacDependencies;
}

/** The three security filter factories, by the names the compiler uses. */
export function securityFilterFactories(deps: SecurityFilterDependencies): Map<string, HttpFilterFactory> {
  const factories = [createJwtAuthnFilterFactory(deps.jwt), createExtAuthzFilterFactory(deps.extAuthz), createRbacFilterFactory(deps.rbac)];
  return new Map(factories.map((f) => [f.name, f]));
}

/** Builds a listener's filters; throws naming the filter whose config cannot be used. */
export function compileHttpFilters(list: readonly NamedFilterConfig[], factories: ReadonlyMap<string, HttpFilterFactory>): HttpFilter[] {
  return list.map(({ name, config }) => {
    const factory = factories.get(name);
    if (!factory) throw new TypeError(`unknown HTTP filter ${name}`);
    try {
      return factory.compile(config);
    } catch (e) {
      throw new TypeError(`HTTP filter ${name}: ${(e as Error).message}`);
    }
  });
}

/** Decodes a request's headers through `filters` in order; the first stop ends it. */
export function decodeHeadersThrough(filters: readonly HttpFilter[], ctx: HttpFilterContext, from = 0): FilterHeadersStatus | Promise<FilterHeadersStatus> {
  for (let i = from; i < filters.length; i++) {
    const status = filters[i].decodeHeaders(ctx);
    // A filter that answers at once is not waited for (no turn of the event loop per filter).
    if (status instanceof Promise) return status.then((s) => (s === 'continue' ? decodeHeadersThrough(filters, ctx, i + 1) : s));
    if (status !== 'continue') return status;
  }
  return 'continue';
}
