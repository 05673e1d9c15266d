import { z } from 'zod';

/** ServiceEntry spec (networking.istio.io). */
export const serviceEntrySpecSchema = z.looseObject({});
export type ServiceEntrySpec = z.infer<typeof serviceEntrySpecSchema>;
