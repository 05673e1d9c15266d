/**
 * The compiled form of Istio's AuthorizationPolicy, as the compiler puts it into a proxy's
 * config and the RBAC and ext_authz filters read it: Envoy's RBAC filter, reduced to what
 * Istio generates (pilot/pkg/security/authz/builder). JSON data, checked once when a filter
 * is built (`parseAuthorizationConfig`), so a bad config fails when it is applied, never on
 * a request (STYLE.md 3, 9).
 *
 * A policy matches when any of its rules does; a rule when any of its `from` sources, any of
 * its `to` operations and all of its `when` conditions do (an absent list holds); a source
 * or operation when all of its clauses do; a clause when one of `values` matches (if given)
 * and none of `notValues` does (if given). An attribute the request does not have matches no
 * value, so a `not` form holds for it (Envoy's `not_rule` around a matcher that fails).
 */
import { z } from 'zod';

/** The attributes a clause can read: Istio's source/operation fields and condition keys. */
export const ATTRIBUTE_KEYS = [
  'source.principal',
  'source.namespace',
  'source.ip',
  'remote.ip',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'request.auth.claims',
  'request.headers',
  'request.host',
  'request.method',
  'request.path',
  'destination.ip',
  'destination.port',
  'connection.sni',
] as const;
export type AttributeKey = (typeof ATTRIBUTE_KEYS)[number];

/** Attributes only an HTTP request has (Istio's `request.*` keys): a TCP-only filter cannot read them. */
export const HTTP_ONLY_ATTRIBUTES: ReadonlySet<AttributeKey> = new Set(ATTRIBUTE_KEYS.filter((k) => k.startsWith('request.')));

const valueMatcherSchema = z.union([
  z.strictObject({ exact: z.string(), ignoreCase: z.boolean().optional() }),
  z.strictObject({ prefix: z.string(), ignoreCase: z.boolean().optional() }),
  z.strictObject({ suffix: z.string(), ignoreCase: z.boolean().optional() }),
  /** Any non-empty value (Istio's `*`). */
  z.strictObject({ present: z.literal(true) }),
  /** A host, case-insensitive, with or without a `:port` (Istio's host matcher). */
  z.strictObject({ host: z.string() }),
  /** A path template with `{*}` (one segment) and `{**}` (the rest): Envoy's uri_template. */
  z.strictObject({ template: z.string() }),
  /** An address or CIDR block. */
  z.strictObject({ cidr: z.string() }),
  z.strictObject({ port: z.number().int().min(0).max(65535) }),
]);
export type ValueMatcher = z.infer<typeof valueMatcherSchema>;

const clauseSchema = z.strictObject({
  attribute: z.enum(ATTRIBUTE_KEYS),
  /** `request.headers[<name>]`, lower case. */
  header: z.string().optional(),
  /** `request.auth.claims[a][b]`: the path into the payload. */
  claim: z.array(z.string()).min(1).optional(),
  values: z.array(valueMatcherSchema).optional(),
  notValues: z.array(valueMatcherSchema).optional(),
});
export type Clause = z.infer<typeof clauseSchema>;

const ruleSchema = z.strictObject({
  from: z.array(z.array(clauseSchema)).optional(),
  to: z.array(z.array(clauseSchema)).optional(),
  when: z.array(clauseSchema).optional(),
});
export type CompiledRule = z.infer<typeof ruleSchema>;

export const AUTHORIZATION_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;

const policySchema = z.strictObject({
  /** `ns[<namespace>]-policy[<name>]`, as Envoy's RBAC policy ids that Istio writes. */
  name: z.string(),
  action: z.enum(AUTHORIZATION_ACTIONS),
  /** `istio.io/dry-run: "true"`: evaluated, logged and counted, never enforced. */
  dryRun: z.boolean().optional(),
  /** No rules: matches nothing (an ALLOW policy `spec: {}` then denies everything). */
  rules: z.array(ruleSchema),
});
export type CompiledPolicy = z.infer<typeof policySchema>;

/** The `sinew.filters.http.rbac` / `sinew.filters.network.rbac` config: the ALLOW, DENY and AUDIT policies of one workload. */
export const authorizationConfigSchema = z.strictObject({
  policies: z.array(policySchema),
  /**
   * The port requests on this listener are addressed to, as policies name it (a sidecar's
   * containerPort, a gateway server's port), where the proxy listens elsewhere; absent: the
   * port the connection arrived on.
   */
  destinationPort: z.number().int().min(1).max(65535).optional(),
});
export type AuthorizationConfig = z.infer<typeof authorizationConfigSchema>;

/** Checks a filter config; throws with every problem (zod lists them all). */
export function parseAuthorizationConfig(config: unknown): AuthorizationConfig {
  return authorizationConfigSchema.parse(config);
}

/** Envoy RBAC's policy id for an Istio policy, shown in the access log and in `rbac_access_denied_matched_policy[...]`. */
export function policyId(namespace: string, name: string): string {
  return `ns[${namespace}]-policy[${name}]`;
}
