/**
 * Envoy's response flags (the `%RESPONSE_FLAGS%` access-log field, Istio's `response_flags`
 * metric label). Every reply the proxy makes itself carries one (STYLE.md 7), in the
 * `x-sinew-response-flags` response header and in what telemetry records; "-" means none.
 * https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage
 */
export const ResponseFlag = {
  /** No route configured for the request. */
  NoRouteFound: 'NR',
  /** No healthy upstream host in the cluster. */
  NoHealthyUpstream: 'UH',
  /** Upstream connection failure. */
  UpstreamConnectionFailure: 'UF',
  /** Upstream overflow (circuit breaking). */
  UpstreamOverflow: 'UO',
  /** Upstream retry limit exceeded. */
  UpstreamRetryLimitExceeded: 'URX',
  /** Upstream request timeout. */
  UpstreamRequestTimeout: 'UT',
  /** Upstream connection termination. */
  UpstreamConnectionTermination: 'UC',
  /** Upstream remote reset. */
  UpstreamRemoteReset: 'UR',
  /** Downstream connection termination. */
  DownstreamConnectionTermination: 'DC',
  /** The request was delayed by fault injection. */
  DelayInjected: 'DI',
  /** The request was aborted by fault injection. */
  FaultInjected: 'FI',
  /** Rate limited. */
  RateLimited: 'RL',
  /** Refused by authorization (RBAC). */
  UnauthorizedExternalService: 'UAEX',
  RbacAccessDenied: 'RBAC',
  /** Stream idle timeout. */
  StreamIdleTimeout: 'SI',
  /** Downstream protocol error (malformed request). */
  DownstreamProtocolError: 'DPE',
  /** Upstream protocol error. */
  UpstreamProtocolError: 'UPE',
  /** No cluster found for the route's destination (Envoy's NC). */
  NoClusterFound: 'NC',
  /** Duration limit exceeded (maxStreamDuration). */
  DurationTimeout: 'DT',
  /** Ejected by outlier detection while in flight. */
  UpstreamMaxStreamDurationReached: 'UMSDR',
} as const;

export type ResponseFlagCode = (typeof ResponseFlag)[keyof typeof ResponseFlag];

/** The response header that names the flag of a reply the proxy made itself. */
export const RESPONSE_FLAGS_HEADER = 'x-sinew-response-flags';
/** The response header with a human-readable reason (like Envoy's response code details). */
export const RESPONSE_DETAILS_HEADER = 'x-sinew-response-details';
