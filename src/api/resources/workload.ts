import { z } from 'zod';

/** Sinew's Workload spec (sinew.dev/v1alpha1): a local process run by the embedded mesh. */
export const workloadSpecSchema = z.looseObject({});
export type WorkloadSpec = z.infer<typeof workloadSpecSchema>;
