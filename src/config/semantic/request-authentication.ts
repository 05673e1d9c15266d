import type { SemanticContext } from './context.js';

/** Istio's RequestAuthentication rules (ValidateRequestAuthentication). */
export function validateRequestAuthentication(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
