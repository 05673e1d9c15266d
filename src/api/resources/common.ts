/**
 * Schemas shared by several kinds. Structural only: they check shapes and types; Istio's
 * semantic rules (ranges, formats, cross-field rules) live in src/config/semantic/.
 */
import { z } from 'zod';

/** A protobuf Duration in its JSON form: `"1s"`, `"0.5s"`, `"100ms"`, `"1m"`, `"2h"`. Format checked semantically. */
export const durationSchema = z.string();

/** Istio's StringMatch: one of exact, prefix, regex (checked semantically; `{}` is allowed in headers = presence). */
export const stringMatchSchema = z.strictObject({
  exact: z.string().optional(),
  prefix: z.string().optional(),
  regex: z.string().optional(),
});
export type StringMatchSpec = z.infer<typeof stringMatchSchema>;

export const portSelectorSchema = z.strictObject({
  number: z.number().int().optional(),
});

export const labelsSchema = z.record(z.string(), z.string());

export const workloadSelectorSchema = z.strictObject({
  matchLabels: labelsSchema.optional(),
});

/** Gateway API style policy target (`targetRef` / `targetRefs`). */
export const policyTargetReferenceSchema = z.strictObject({
  group: z.string().optional(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
});

/** Percent: `{ value: 0..100 }`. */
export const percentSchema = z.strictObject({
  value: z.number().optional(),
});

/** A protobuf wrapper: a bare value in JSON/YAML. */
export const uint32Schema = z.number().int();
