import type { SemanticContext } from './context.js';

/** Istio's AuthorizationPolicy rules (ValidateAuthorizationPolicy). */
export function validateAuthorizationPolicy(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
