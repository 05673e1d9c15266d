/**
 * The events the proxy publishes and telemetry reads. They are defined here, by their
 * consumer, because the proxy may import telemetry but not the other way round (DESIGN.md
 * import directions); src/proxy/events.ts re-exports them as RequestEvent / TcpConnectionEvent
 * / ConfigEvent. Channels are looked up by name, which returns the same
 * `node:diagnostics_channel` objects the proxy publishes on.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { PeerMetadata } from './peer-metadata.js';

export const REQUEST_CHANNEL = 'sinew:proxy:request';
export const TCP_CHANNEL = 'sinew:proxy:tcp';
export const CONFIG_CHANNEL = 'sinew:proxy:config';

/**
 * The `user-agent` of the proxy's active health checks (src/proxy/upstream/health-check.ts),
 * as Envoy's HTTP health checker sends `Envoy/HC`. See `isPeerHealthCheck`.
 */
export const HEALTH_CHECK_USER_AGENT = 'sinew-health-check';

/**
 * Whether a request is a peer proxy's active health check, which an inbound sidecar neither
 * counts in the standard metrics nor traces. Istio never counts probes: kubelet's are rewritten
 * to the sidecar agent (15020), which calls the app directly, and Envoy's active health checks
 * come from its health checker, not through the router. Sinew's active checks reach the app
 * through the endpoint's inbound sidecar (the only address a client proxy knows), so that
 * sidecar recognises them, as Envoy's health_check filter marks a request as a health check
 * (`StreamInfo::healthCheck()`), which Envoy does not trace and access logs can leave out
 * (`not_health_check_filter`). Only what the health checker sends matches: a GET with its
 * user-agent arriving on an inbound listener without peer metadata. A meshed client's request
 * to a mesh service always carries its sidecar's metadata, so a workload cannot hide its
 * traffic behind the user-agent.
 */
export function isPeerHealthCheck(direction: string | undefined, method: string, userAgent: string | undefined, peer: PeerMetadata | undefined): boolean {
  return userAgent === HEALTH_CHECK_USER_AGENT && direction === 'inbound' && peer === undefined && method === 'GET';
}

export const telemetryChannels = {
  request: diagnosticsChannel.channel(REQUEST_CHANNEL),
  tcp: diagnosticsChannel.channel(TCP_CHANNEL),
  config: diagnosticsChannel.channel(CONFIG_CHANNEL),
};

/** One finished HTTP request: the proxy's RequestEvent plus optional fields it should add. */
export interface TelemetryRequestEvent {
  listener: string;
  /** `inbound` (reporter=destination), `outbound` or `gateway` (reporter=source). */
  direction: string;
  requestId: string;
  method: string;
  authority: string;
  path: string;
  protocol: string;
  route?: string;
  cluster?: string;
  upstreamHost?: string;
  status: number;
  flags: string;
  details?: string;
  downstreamPeer: string;
  attempts: number;
  requestBytes: number;
  responseBytes: number;
  /** Epoch milliseconds. */
  startTime: number;
  upstreamMs?: number;
  durationMs: number;

  // --- proposed additions (all optional) ---
  /**
   * The publishing proxy's node id. Subscribers for one node skip events of another, which
   * matters when several proxies share a process (tests, an in-process gateway).
   */
  node?: string;
  /** The other sidecar's metadata: from the request's `x-envoy-peer-metadata` on inbound, from the response's on outbound. */
  peer?: PeerMetadata;
  /** The connection to the peer was mutual TLS (decides `connection_security_policy` and principals). */
  mtls?: boolean;
  /** The downstream peer certificate's URI SAN (its SPIFFE ID): Envoy's %DOWNSTREAM_PEER_URI_SAN%, Istio's source principal. */
  downstreamPeerUriSan?: string;
  /**
   * What the request's filters recorded (Envoy's dynamic metadata), `<filter>:<key>`: e.g.
   * `envoy.filters.http.rbac:istio_dry_run_shadow_engine_result` for a dry-run policy, or
   * `...:access_log_hint` for an AUDIT one. Access logs read it with %DYNAMIC_METADATA(ns:key)%.
   */
  dynamicMetadata?: Readonly<Record<string, string>>;
  /** The upstream connection's peer certificate URI SAN, when it was mutual TLS: %UPSTREAM_PEER_URI_SAN%, the source reporter's destination principal. */
  upstreamPeerUriSan?: string;
  /** This proxy's own certificate URI SAN on that connection: %UPSTREAM_LOCAL_URI_SAN%, the source reporter's source principal. */
  upstreamLocalUriSan?: string;
  /** Destination service FQDN when the proxy knows it (else derived from the cluster name or authority). */
  destinationService?: string;
  /** gRPC status from `grpc-status`, when the request was gRPC (`content-type: application/grpc*`). */
  grpcStatus?: string;
  /** The pre-rewrite path (`x-envoy-original-path`). */
  originalPath?: string;
  userAgent?: string;
  xForwardedFor?: string;
  /** Local address the request arrived on (`ip:port`). */
  downstreamLocal?: string;
  /** Local address of the upstream connection (`ip:port`). */
  upstreamLocal?: string;
  requestedServerName?: string;
  /**
   * The request's headers as the proxy forwarded them (a reference, not a copy), for access
   * log formats that name any header (`%REQ(X-FOO)%`).
   */
  requestHeaders?: Readonly<Record<string, string | string[] | undefined>>;
  /** The query string without its `?` (Envoy's `:path` carries it; `path` does not). */
  query?: string;
  upstreamTransportFailureReason?: string;
  connectionTerminationDetails?: string;
}

/** One TCP connection through a `tcp` listener. */
export interface TelemetryTcpEvent {
  listener: string;
  cluster?: string;
  upstreamHost?: string;
  flags: string;
  downstreamPeer: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  // --- proposed additions ---
  node?: string;
  direction?: string;
  /**
   * `open` counts only an opened connection, `close` a closed one with its bytes. Absent (what
   * the proxy publishes today, once at close) counts the connection as opened and closed.
   */
  phase?: 'open' | 'close';
  peer?: PeerMetadata;
  mtls?: boolean;
  destinationService?: string;
  /** The downstream peer certificate's URI SAN (mutual TLS): the destination reporter's source_principal. */
  downstreamPeerUriSan?: string;
  /** This proxy's own URI SAN on the downstream connection: the destination reporter's destination_principal. */
  downstreamLocalUriSan?: string;
  /** The upstream connection's peer URI SAN (mutual TLS): the source reporter's destination_principal. */
  upstreamPeerUriSan?: string;
  /** This proxy's own URI SAN on the upstream connection: the source reporter's source_principal. */
  upstreamLocalUriSan?: string;
}

export interface TelemetryConfigEvent {
  node?: string;
  version: string;
  accepted: boolean;
  error?: string;
}

/**
 * Upstream-layer events the proxy receives through its cluster manager's `onEvent`
 * (outlier ejections); structurally the proxy's `UpstreamEvent`.
 */
export interface TelemetryUpstreamEvent {
  type: string;
  cluster: string;
  key?: string;
}

/** True when an event names a node other than `nodeId` (events without a node match every subscriber). */
export function foreignEvent(msg: unknown, nodeId: string | undefined): boolean {
  if (nodeId === undefined || msg === null || typeof msg !== 'object') return false;
  const n = (msg as { node?: unknown }).node;
  return typeof n === 'string' && n !== nodeId;
}
