import type { SemanticContext } from './context.js';

/** Istio's Gateway rules (ValidateGateway). */
export function validateGateway(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
