/**
 * Telemetry (telemetry.istio.io), as in Istio's CRD (v1 schema). Structural only;
 * ValidateTelemetry's rules live in src/config/semantic/telemetry.ts.
 */
import { z } from 'zod';
import { policyTargetReferenceSchema, workloadSelectorSchema } from './common.js';

export const workloadModes = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] as const;
export const metricNames = [
  'ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES',
] as const;

/** Protobuf BoolValue wrappers: the CRD marks them nullable. */
const optionalBool = z.boolean().nullable().optional();

export const providerRefSchema = z.strictObject({ name: z.string() });
export type ProviderRef = z.infer<typeof providerRefSchema>;

const modeSelectorSchema = z.strictObject({ mode: z.enum(workloadModes).optional() });

export const customTagSchema = z.strictObject({
  literal: z.strictObject({ value: z.string() }).optional(),
  environment: z.strictObject({ name: z.string(), defaultValue: z.string().optional() }).optional(),
  header: z.strictObject({ name: z.string(), defaultValue: z.string().optional() }).optional(),
  formatter: z.strictObject({ value: z.string() }).optional(),
});
export type CustomTag = z.infer<typeof customTagSchema>;

export const tracingSchema = z.strictObject({
  match: modeSelectorSchema.optional(),
  providers: z.array(providerRefSchema).optional(),
  randomSamplingPercentage: z.number().nullable().optional(),
  disableSpanReporting: optionalBool,
  customTags: z.record(z.string(), customTagSchema).optional(),
  useRequestIdForTraceSampling: optionalBool,
  enableIstioTags: optionalBool,
  disableContextPropagation: optionalBool,
});
export type Tracing = z.infer<typeof tracingSchema>;

export const tagOverrideSchema = z.strictObject({
  /** Default UPSERT (the proto enum's zero value). */
  operation: z.enum(['UPSERT', 'REMOVE']).optional(),
  value: z.string().optional(),
});

export const metricsOverridesSchema = z.strictObject({
  match: z
    .strictObject({
      metric: z.enum(metricNames).optional(),
      customMetric: z.string().optional(),
      mode: z.enum(workloadModes).optional(),
    })
    .optional(),
  disabled: optionalBool,
  tagOverrides: z.record(z.string(), tagOverrideSchema).optional(),
});

export const metricsSchema = z.strictObject({
  providers: z.array(providerRefSchema).optional(),
  overrides: z.array(metricsOverridesSchema).optional(),
  reportingInterval: z.string().optional(),
});
export type Metrics = z.infer<typeof metricsSchema>;

export const accessLoggingSchema = z.strictObject({
  match: modeSelectorSchema.optional(),
  providers: z.array(providerRefSchema).optional(),
  disabled: optionalBool,
  filter: z.strictObject({ expression: z.string().optional() }).optional(),
});
export type AccessLogging = z.infer<typeof accessLoggingSchema>;

export const telemetrySpecSchema = z.strictObject({
  selector: workloadSelectorSchema.optional(),
  targetRef: policyTargetReferenceSchema.optional(),
  targetRefs: z.array(policyTargetReferenceSchema).optional(),
  tracing: z.array(tracingSchema).optional(),
  metrics: z.array(metricsSchema).optional(),
  accessLogging: z.array(accessLoggingSchema).optional(),
});
export type TelemetrySpec = z.infer<typeof telemetrySpecSchema>;
