import type { SemanticContext } from './context.js';

/** Istio's DestinationRule rules (ValidateDestinationRule). */
export function validateDestinationRule(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
