import type { SemanticContext } from './context.js';

/** Istio's PeerAuthentication rules (ValidatePeerAuthentication). */
export function validatePeerAuthentication(spec: unknown, ctx: SemanticContext): void {
  void spec;
  void ctx;
}
