import { z } from 'zod';

/** RequestAuthentication spec (security.istio.io). */
export const requestAuthenticationSpecSchema = z.looseObject({});
export type RequestAuthenticationSpec = z.infer<typeof requestAuthenticationSpecSchema>;
