import type { SemanticContext } from './context.js';

/** Istio's VirtualService rules (pkg/config/validation: ValidateVirtualService). */
export function validateVirtualService(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
