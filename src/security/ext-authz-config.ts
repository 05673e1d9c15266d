/**
 * The `sinew.filters.http.ext_authz` filter config: the CUSTOM AuthorizationPolicies of a
 * workload and the external authorizer they delegate to (meshConfig extensionProviders
 * `envoyExtAuthzHttp`, resolved by the compiler to a mesh cluster). The filter asks the
 * authorizer only for requests one of the policies matches, as Istio does with the RBAC
 * filter it puts in front of ext_authz.
 */
import { z } from 'zod';
import { authorizationConfigSchema } from './policy.js';

const headerNames = z.array(z.string()).optional();

export const extAuthzProviderSchema = z.strictObject({
  name: z.string(),
  /** The mesh cluster of the authorizer (`outbound|<port>||<host>`). */
  cluster: z.string(),
  /** Host and port the check is addressed to, as the service names them. */
  host: z.string(),
  port: z.number().int().min(1).max(65535),
  timeoutMs: z.number().int().positive(),
  /** Prepended to the request's path in the check (Istio's pathPrefix). */
  pathPrefix: z.string().optional(),
  /** When the authorizer cannot be reached or answers late: let the request through. */
  failOpen: z.boolean(),
  /** The status of the reply when it cannot be reached and failOpen is off (Istio's default: 403). */
  statusOnError: z.number().int().min(200).max(599),
  /** Request headers sent in the check besides Envoy's always-sent Host, Method, Path and Authorization. Patterns: exact, `x-*`, `*-x`, case-insensitive. */
  includeRequestHeadersInCheck: headerNames,
  includeAdditionalHeadersInCheck: z.record(z.string(), z.string()).optional(),
  /** Authorizer response headers copied into the upstream request when allowed; absent: none. */
  headersToUpstreamOnAllow: headerNames,
  /** Authorizer response headers added to the client's response when allowed; absent: none. */
  headersToDownstreamOnAllow: headerNames,
  /** Authorizer response headers sent to the client when denied; absent: all of them. */
  headersToDownstreamOnDeny: headerNames,
});
export type ExtAuthzProvider = z.infer<typeof extAuthzProviderSchema>;

export const extAuthzConfigSchema = authorizationConfigSchema.extend({
  provider: extAuthzProviderSchema,
});
export type ExtAuthzConfig = z.infer<typeof extAuthzConfigSchema>;

/** Istio's header patterns for the ext_authz header lists: exact, `prefix*`, `*suffix`, `*`, case-insensitive. */
export function headerPatternMatcher(patterns: readonly string[]): (name: string) => boolean {
  const lower = patterns.map((p) => p.toLowerCase());
  return (name) => {
    const n = name.toLowerCase();
    return lower.some((p) => p === '*' || (p.endsWith('*') ? n.startsWith(p.slice(0, -1)) : p.startsWith('*') ? n.endsWith(p.slice(1)) : n === p));
  };
}
