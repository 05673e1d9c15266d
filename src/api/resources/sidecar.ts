import { z } from 'zod';

/** Sidecar spec (networking.istio.io). */
export const sidecarSpecSchema = z.looseObject({});
export type SidecarSpec = z.infer<typeof sidecarSpecSchema>;
