import { z } from 'zod';

/** Telemetry spec (telemetry.istio.io). */
export const telemetrySpecSchema = z.looseObject({});
export type TelemetrySpec = z.infer<typeof telemetrySpecSchema>;
