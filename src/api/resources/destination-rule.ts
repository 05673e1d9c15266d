import { z } from 'zod';

/** DestinationRule spec (networking.istio.io). */
export const destinationRuleSpecSchema = z.looseObject({});
export type DestinationRuleSpec = z.infer<typeof destinationRuleSpecSchema>;
