/**
 * `sinew.filters.http.rbac` and `sinew.filters.network.rbac`: the ALLOW, DENY and AUDIT
 * AuthorizationPolicies of a workload (the config is src/security/policy.ts, the decision
 * src/security/evaluator.ts), as Envoy's RBAC filters apply them.
 *
 * A denied request gets 403 `RBAC: access denied`, response flag RBAC and details
 * `rbac_access_denied_matched_policy[<policy>]` (or `[none]` when an ALLOW policy applies and
 * none matched). A denied TCP connection is closed. Dry-run policies only set metadata for
 * the access log (`istio_dry_run_shadow_*`), count `rbac.shadow_allowed` / `shadow_denied`,
 * and log at debug level; AUDIT policies set `access_log_hint`.
 */
import { ResponseFlag } from '../../../../api/response-flags.js';
import type { Logger } from '../../../../core/logger.js';
import type { RequestAttributes } from '../../../../security/attributes.js';
import { compileAuthorization, type AuthorizationDecision } from '../../../../security/evaluator.js';
import { parseAuthorizationConfig } from '../../../../security/policy.js';
import type { FilterStats, HttpFilterFactory, NetworkFilterFactory } from '../contract.js';

export const RBAC_HTTP_FILTER = 'sinew.filters.http.rbac';
export const RBAC_NETWORK_FILTER = 'sinew.filters.network.rbac';
/** The metadata namespace the access log reads, as Envoy's. */
export const RBAC_METADATA = 'envoy.filters.http.rbac';

export interface RbacDependencies {
  stats?: FilterStats;
  logger?: Logger;
}

export function accessDenied(reason: string) {
  return { status: 403, flag: ResponseFlag.RbacAccessDenied, details: reason, body: 'RBAC: access denied' };
}

export function createRbacFilterFactory(deps: RbacDependencies = {}): HttpFilterFactory {
  return {
    name: RBAC_HTTP_FILTER,
    compile(raw) {
      const config = parseAuthorizationConfig(raw);
      const authorizer = compileAuthorization(config);
      const port = config.destinationPort;
      return {
        decodeHeaders(ctx) {
          const attributes = port === undefined ? ctx.attributes : { ...ctx.attributes, destinationPort: port };
          const decision = authorizer.authorize(attributes);
          record(decision, deps, 'http', (k, v) => ctx.setMetadata(RBAC_METADATA, k, v));
          return decision.allowed ? 'continue' : { stop: accessDenied(decision.reason) };
        },
      };
    },
  };
}

export function createNetworkRbacFilterFactory(deps: RbacDependencies = {}): NetworkFilterFactory {
  return {
    name: RBAC_NETWORK_FILTER,
    compile(raw) {
      const config = parseAuthorizationConfig(raw);
      const authorizer = compileAuthorization(config);
      const port = config.destinationPort;
      return {
        onNewConnection(attributes: RequestAttributes) {
          const decision = authorizer.authorize(port === undefined ? attributes : { ...attributes, destinationPort: port });
          record(decision, deps, 'tcp', () => {});
          return decision.allowed ? 'continue' : { close: { details: decision.reason } };
        },
      };
    },
  };
}

const STAT_NAMES = {
  http: { allowed: 'http.rbac.allowed', denied: 'http.rbac.denied', shadow_allowed: 'http.rbac.shadow_allowed', shadow_denied: 'http.rbac.shadow_denied' },
  tcp: { allowed: 'tcp.rbac.allowed', denied: 'tcp.rbac.denied', shadow_allowed: 'tcp.rbac.shadow_allowed', shadow_denied: 'tcp.rbac.shadow_denied' },
} as const;

function record(decision: AuthorizationDecision, deps: RbacDependencies, kind: 'http' | 'tcp', setMetadata: (key: string, value: string) => void): void {
  const stats = STAT_NAMES[kind];
  deps.stats?.inc(decision.allowed ? stats.allowed : stats.denied);
  if (decision.audited.length > 0) setMetadata('access_log_hint', 'true');
  if (decision.shadow) {
    const result = decision.shadow.allowed ? 'allowed' : 'denied';
    deps.stats?.inc(decision.shadow.allowed ? stats.shadow_allowed : stats.shadow_denied);
    setMetadata('istio_dry_run_shadow_engine_result', result);
    if (decision.shadow.policy) setMetadata('istio_dry_run_shadow_effective_policy_id', decision.shadow.policy);
    deps.logger?.debug('dry-run authorization', { result, policy: decision.shadow.policy ?? 'none' });
  }
}
