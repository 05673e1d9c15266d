import { z } from 'zod';

/** PeerAuthentication spec (security.istio.io). */
export const peerAuthenticationSpecSchema = z.looseObject({});
export type PeerAuthenticationSpec = z.infer<typeof peerAuthenticationSpecSchema>;
