import { z } from 'zod';

/** AuthorizationPolicy spec (security.istio.io). */
export const authorizationPolicySpecSchema = z.looseObject({});
export type AuthorizationPolicySpec = z.infer<typeof authorizationPolicySpecSchema>;
