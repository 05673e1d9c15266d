/**
 * The interface Istio's semantic rules are written against. A validator gets the spec as
 * read (already structurally checked, but it must still be defensive: when the structure
 * had errors it runs anyway, so every error is reported at once) and reports findings
 * with the path from the resource root (`['spec', 'http', 0, 'route']`).
 */
import type { ResourceRef } from '../../api/diagnostics.js';
import type { ObjectMeta } from '../../api/resources/meta.js';
import type { FieldPath } from '../../core/path.js';

export interface SemanticContext {
  readonly resource: ResourceRef & { readonly namespace: string };
  readonly metadata: Readonly<ObjectMeta>;
  /** The full apiVersion as written, e.g. `networking.istio.io/v1beta1`. */
  readonly apiVersion: string;
  /** Whether the structure had errors (already reported): rules that need a sound shape may stay quiet. */
  readonly structureFailed?: boolean;
  error(path: FieldPath, code: string, message: string): void;
  warn(path: FieldPath, code: string, message: string): void;
  /** Reports at the key of a mapping entry instead of its value (unknown or misplaced keys). */
  errorAtKey(path: FieldPath, code: string, message: string): void;
}

/** Checks one kind's spec. `spec` is `unknown` on purpose: guard before use. */
export type SemanticValidator = (spec: unknown, ctx: SemanticContext) => void;
