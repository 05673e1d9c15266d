import { z } from 'zod';

/** VirtualService spec (networking.istio.io). */
export const virtualServiceSpecSchema = z.looseObject({});
export type VirtualServiceSpec = z.infer<typeof virtualServiceSpecSchema>;
