/**
 * gRPC deadlines and the route timeout. A gRPC client sends its deadline as `grpc-timeout`
 * (gRPC over HTTP/2, "Requests": 1-8 digits and a unit, H M S m u n). Istio sets Envoy's
 * `max_grpc_timeout` to the route's timeout, or to 0 (no maximum) when the route has none
 * (pilot route.go setTimeout), so Envoy's router (FilterUtility::finalTimeout) times a gRPC
 * request by its grpc-timeout, capped by the route timeout when one is set, and by the route
 * timeout alone when the client sent no deadline. The upstream is told the deadline it really
 * has: grpc-timeout is rewritten to that timeout, or to the per-try timeout when it is shorter,
 * so the server stops working on a call the proxy will no longer wait for.
 */
import type { HeaderBag } from './headers.js';
import { joinValue } from './headers.js';

const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;

/** `grpc-timeout` in milliseconds (a positive sub-millisecond deadline counts as 1 ms), or undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = GRPC_TIMEOUT.exec(value.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2]];
  return ms > 0 && ms < 1 ? 1 : Math.floor(ms);
}

/** Milliseconds as grpc-timeout: in ms while that fits in 8 digits, else seconds, then minutes, then hours. */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  if (whole < 1e8) return `${whole}m`;
  if (whole / 1_000 < 1e8) return `${Math.ceil(whole / 1_000)}S`;
  if (whole / 60_000 < 1e8) return `${Math.ceil(whole / 60_000)}M`;
  return `${Math.min(99_999_999, Math.ceil(whole / 3_600_000))}H`;
}

/**
 * The timeout of a gRPC request on a route with `routeTimeoutMs` (0: none), given its headers
 * (rewritten: `grpc-timeout` becomes the deadline the upstream has). Returns 0 for no timeout.
 */
export function grpcRequestTimeout(headers: HeaderBag, routeTimeoutMs: number, perTryTimeoutMs: number | undefined): number {
  const asked = parseGrpcTimeout(joinValue(headers['grpc-timeout']));
  let timeout = routeTimeoutMs;
  if (asked !== undefined) timeout = routeTimeoutMs > 0 ? Math.min(asked, routeTimeoutMs) : asked;
  if (timeout <= 0) return 0;
  const expected = perTryTimeoutMs !== undefined && perTryTimeoutMs > 0 && perTryTimeoutMs < timeout ? perTryTimeoutMs : timeout;
  headers['grpc-timeout'] = formatGrpcTimeout(expected);
  return timeout;
}
