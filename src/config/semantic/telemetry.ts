import type { SemanticContext } from './context.js';

/** Istio's Telemetry rules (ValidateTelemetry). */
export function validateTelemetry(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
