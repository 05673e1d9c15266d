import { z } from 'zod';

/** Gateway spec (networking.istio.io). */
export const gatewaySpecSchema = z.looseObject({});
export type GatewaySpec = z.infer<typeof gatewaySpecSchema>;
