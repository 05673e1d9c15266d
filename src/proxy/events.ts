/**
 * What the proxy tells the rest of the system: per-request and per-connection events on
 * `node:diagnostics_channel` (STYLE.md 12, as undici does) for telemetry to subscribe to,
 * and plain counters for the admin port's /stats. Publishing costs nothing when nobody listens.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { CONFIG_CHANNEL, HEALTH_CHECK_USER_AGENT, isPeerHealthCheck, REQUEST_CHANNEL, TCP_CHANNEL, type TelemetryConfigEvent, type TelemetryRequestEvent, type TelemetryTcpEvent } from '../telemetry/events.js';

/**
 * The events are defined by telemetry, their consumer (src/telemetry/events.ts; the proxy may
 * import telemetry, not the other way round): one finished HTTP request or WebSocket upgrade,
 * one TCP connection (opened and closed), one config applied or rejected.
 */
export type RequestEvent = TelemetryRequestEvent;
export type TcpConnectionEvent = TelemetryTcpEvent;
export type ConfigEvent = TelemetryConfigEvent;
/** What the proxy's active health checks send as user-agent, so the checked sidecar can tell them apart. */
export { HEALTH_CHECK_USER_AGENT, isPeerHealthCheck };

export const channels = {
  request: diagnosticsChannel.channel(REQUEST_CHANNEL),
  tcp: diagnosticsChannel.channel(TCP_CHANNEL),
  config: diagnosticsChannel.channel(CONFIG_CHANNEL),
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
