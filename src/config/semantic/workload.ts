import type { SemanticContext } from './context.js';

/** Sinew Workload rules: a runnable command, ports, replicas, probe. */
export function validateWorkload(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
