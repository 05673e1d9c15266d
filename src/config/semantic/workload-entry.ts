import type { SemanticContext } from './context.js';

/** Istio's WorkloadEntry rules (ValidateWorkloadEntry). */
export function validateWorkloadEntry(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}

/** Istio's WorkloadGroup rules (ValidateWorkloadGroup). */
export function validateWorkloadGroup(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
