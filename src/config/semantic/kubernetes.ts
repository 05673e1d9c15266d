import type { SemanticContext } from './context.js';

/** Kubernetes Service rules Sinew relies on (ports, selector). */
export function validateService(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}

/** Kubernetes Namespace: nothing beyond the name. */
export function validateNamespace(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
