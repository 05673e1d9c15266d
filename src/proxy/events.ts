/**
 * What the proxy tells the rest of the system: per-request and per-connection events on
 * `node:diagnostics_channel` (STYLE.md 12, as undici does) for telemetry to subscribe to,
 * and plain counters for the admin port's /stats. Publishing costs nothing when nobody listens.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { PeerMetadata } from '../telemetry/peer-metadata.js';

/** One finished HTTP request (or WebSocket upgrade). */
export interface RequestEvent {
  listener: string;
  direction: string;
  requestId: string;
  method: string;
  authority: string;
  path: string;
  protocol: 'HTTP/1.1' | 'HTTP/2';
  route?: string;
  cluster?: string;
  upstreamHost?: string;
  status: number;
  /** Envoy response flags, '-' when none. */
  flags: string;
  details?: string;
  downstreamPeer: string;
  attempts: number;
  requestBytes: number;
  responseBytes: number;
  startTime: number;
  /** Milliseconds from request start to the first upstream response byte, when one came. */
  upstreamMs?: number;
  durationMs: number;
  /** The publishing proxy's node id (several proxies may share a process). */
  node?: string;
  /** The other sidecar's metadata (request on inbound, response on outbound/gateway). */
  peer?: PeerMetadata;
  /** The downstream (inbound) or upstream (outbound) connection was mutual TLS. */
  mtls?: boolean;
  /** The destination service host, from the cluster's `service.host`. */
  destinationService?: string;
  /** `grpc-status` of a gRPC response (trailers, or headers for trailers-only replies). */
  grpcStatus?: string;
  userAgent?: string;
  xForwardedFor?: string;
  /** Local address the request arrived on, `ip:port`. */
  downstreamLocal?: string;
}

/** One finished TCP connection through a `tcp` listener. */
export interface TcpConnectionEvent {
  listener: string;
  cluster?: string;
  upstreamHost?: string;
  flags: string;
  downstreamPeer: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  node?: string;
  direction?: string;
  /** `open` at accept, `close` when the connection ends (telemetry counts both halves). */
  phase?: 'open' | 'close';
  mtls?: boolean;
  destinationService?: string;
}

export interface ConfigEvent {
  node?: string;
  version: string;
  accepted: boolean;
  error?: string;
}

export const channels = {
  request: diagnosticsChannel.channel('sinew:proxy:request'),
  tcp: diagnosticsChannel.channel('sinew:proxy:tcp'),
  config: diagnosticsChannel.channel('sinew:proxy:config'),
};

/** Monotonic counters, printed by /stats as `name value` lines. */
export class ProxyStats {
  private readonly counters = new Map<string, number>();

  inc(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.counters.get(name) ?? 0;
  }

  render(): string {
    return [...this.counters.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
  }
}
