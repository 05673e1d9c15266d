import { z } from 'zod';

/** WorkloadEntry spec (networking.istio.io). */
export const workloadEntrySpecSchema = z.looseObject({});
export type WorkloadEntrySpec = z.infer<typeof workloadEntrySpecSchema>;

/** WorkloadGroup spec (networking.istio.io). */
export const workloadGroupSpecSchema = z.looseObject({});
export type WorkloadGroupSpec = z.infer<typeof workloadGroupSpecSchema>;
