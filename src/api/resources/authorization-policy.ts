/**
 * AuthorizationPolicy (security.istio.io), as in Istio's CRD (v1 schema). Structural only;
 * ValidateAuthorizationPolicy's rules (and pkg/config/security's attribute checks) live in
 * src/config/semantic/authorization-policy.ts.
 */
import { z } from 'zod';
import { policyTargetReferenceSchema, workloadSelectorSchema } from './common.js';

const strings = z.array(z.string()).optional();

/** Who sends the request. Fields are ANDed; values inside one field are ORed. */
export const sourceSchema = z.strictObject({
  principals: strings,
  notPrincipals: strings,
  requestPrincipals: strings,
  notRequestPrincipals: strings,
  namespaces: strings,
  notNamespaces: strings,
  ipBlocks: strings,
  notIpBlocks: strings,
  remoteIpBlocks: strings,
  notRemoteIpBlocks: strings,
  serviceAccounts: strings,
  notServiceAccounts: strings,
  trustDomains: strings,
  notTrustDomains: strings,
});
export type Source = z.infer<typeof sourceSchema>;

/** What the request does. Ports are strings in the API. */
export const operationSchema = z.strictObject({
  hosts: strings,
  notHosts: strings,
  ports: strings,
  notPorts: strings,
  methods: strings,
  notMethods: strings,
  paths: strings,
  notPaths: strings,
});
export type Operation = z.infer<typeof operationSchema>;

/** An extra condition on a request attribute (`source.ip`, `request.headers[x]`, ...). */
export const conditionSchema = z.strictObject({
  key: z.string(),
  values: strings,
  notValues: strings,
});
export type Condition = z.infer<typeof conditionSchema>;

export const ruleSchema = z.strictObject({
  from: z.array(z.strictObject({ source: sourceSchema.optional() })).optional(),
  to: z.array(z.strictObject({ operation: operationSchema.optional() })).optional(),
  when: z.array(conditionSchema).optional(),
});
export type Rule = z.infer<typeof ruleSchema>;

export const authorizationActions = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;
export type AuthorizationAction = (typeof authorizationActions)[number];

export const authorizationPolicySpecSchema = z.strictObject({
  selector: workloadSelectorSchema.optional(),
  targetRef: policyTargetReferenceSchema.optional(),
  targetRefs: z.array(policyTargetReferenceSchema).optional(),
  /**
   * `rules` absent and `rules: []` differ in Istio: for DENY and CUSTOM a missing list is an
   * error, and an ALLOW policy without rules matches nothing (so it denies every request).
   */
  rules: z.array(ruleSchema).optional(),
  /** Default ALLOW. */
  action: z.enum(authorizationActions).optional(),
  /** Only with action CUSTOM: the extension provider (mesh config) that decides. */
  provider: z.strictObject({ name: z.string().optional() }).optional(),
});
export type AuthorizationPolicySpec = z.infer<typeof authorizationPolicySpecSchema>;
