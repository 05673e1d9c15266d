import type { ServiceProtocol } from '../api/registry-snapshot.js';

/**
 * Ports routed at layer 7. Undeclared ports (`UNSUPPORTED`) count: Istio sniffs them, and
 * Sinew's embedded capture is an HTTP proxy, so HTTP is what arrives there.
 */
export function isHttpPort(p: ServiceProtocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB' || p === 'UNSUPPORTED';
}
