/**
 * What every resource shares: apiVersion, kind, metadata, and where it was read from.
 * The structural schemas (zod) live beside the types they describe so that one
 * definition serves validation and TypeScript alike.
 */
import { z } from 'zod';
import type { SourcePosition } from '../diagnostics.js';

/** Kubernetes object metadata, with the fields Sinew reads; others are allowed and kept. */
export const objectMetaSchema = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  generation: z.number().optional(),
  resourceVersion: z.string().optional(),
  uid: z.string().optional(),
  creationTimestamp: z.unknown().optional(),
});

export type ObjectMeta = z.infer<typeof objectMetaSchema>;

/** A validated, normalised, frozen resource of any kind. */
export interface Resource<Spec = unknown> {
  readonly apiVersion: string;
  /** The API group (`networking.istio.io`, `sinew.dev`, `""` for core Kubernetes). */
  readonly group: string;
  readonly kind: string;
  readonly metadata: Readonly<ObjectMeta> & { readonly namespace: string };
  readonly spec: Spec;
  /** Where the document started, when it came from a file. */
  readonly source?: SourcePosition;
}

/** How a kind is read: its group, the versions accepted, and its spec schema. */
export interface KindDefinition {
  kind: string;
  group: string;
  /** Accepted versions; all normalise to the same internal form. */
  versions: readonly string[];
  /** Cluster-scoped kinds (Namespace) have no namespace. */
  namespaced: boolean;
  /** Structural schema of `spec` (strict: unknown fields are errors). */
  spec: z.ZodType;
  /** Top-level fields besides apiVersion/kind/metadata/spec the kind allows (`status`, Service `spec` only...). */
  extraTopLevel?: readonly string[];
}

export function apiVersionOf(def: KindDefinition, version: string): string {
  return def.group ? `${def.group}/${version}` : version;
}
