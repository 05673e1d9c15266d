/**
 * The HTTP connection manager settings every HTTP listener gets: Envoy's defaults that Istio
 * keeps, written out so that the proxy never has to know them (a field the proxy is not given
 * means off: src/api/proxy-config.ts).
 */
import type { HttpConnectionManager } from '../api/proxy-config.js';

/**
 * Envoy's stream_idle_timeout default (5 minutes), which Istio leaves as it is: a request with
 * no bytes either way for this long is ended (408 or 504, flag SI). Istio sets no
 * request_timeout (Envoy's default: none), so neither does this.
 */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;

/** A listener's connection manager: `settings` over the defaults. */
export function httpConnectionManager(settings: HttpConnectionManager): HttpConnectionManager {
  return { streamIdleTimeoutMs: DEFAULT_STREAM_IDLE_TIMEOUT_MS, ...settings };
}
