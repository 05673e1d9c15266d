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
  /** Where the schema differs between versions (the Gateway API's TLSRoute v1alpha2 and v1): the spec schema of each. */
  specByVersion?: Readonly<Record<string, z.ZodType>>;
  /**
   * The API server's defaulting, for kinds whose schema has defaults (the Gateway API's CRDs):
   * applied to a structurally valid spec before its rules are checked and before it is stored.
   */
  applyDefaults?: (spec: unknown, version: string) => unknown;
  /**
   * Kinds whose content is not under `spec` (a Secret's `type`, `data`, `stringData`): those
   * top-level fields, validated and kept as the resource's `spec`, and written back at the top
   * level (`manifestOf`).
   */
  topLevelSpec?: readonly string[];
  /**
   * The name the kind is stored, listed and asked for under when another group has a kind of
   * the same name, as kubectl names it (`Gateway.gateway.networking.k8s.io` beside Istio's
   * `Gateway`); absent, the kind itself.
   */
  key?: string;
}

export function apiVersionOf(def: KindDefinition, version: string): string {
  return def.group ? `${def.group}/${version}` : version;
}

/** The group of an apiVersion: `networking.istio.io/v1` -> `networking.istio.io`, `v1` -> `` (core). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}
