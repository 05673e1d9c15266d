import type { SemanticContext } from './context.js';

/** Istio's Sidecar rules (ValidateSidecar). */
export function validateSidecar(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
