import type { SemanticContext } from './context.js';

/** Istio's ServiceEntry rules (ValidateServiceEntry). */
export function validateServiceEntry(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
