/**
 * What every listener and request shares: the config snapshot in force (swapped atomically by
 * `apply`), the cluster manager, the injected clock and random source, counters and logger.
 */
import type { HttpConnectionManager, Listener, ProxyConfig } from '../api/proxy-config.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Random } from '../core/random.js';
import type { ProxyTelemetry } from '../telemetry/proxy-telemetry.js';
import type { ProxyStats } from './events.js';
import type { DownstreamConnections } from './overload.js';
import type { PeerIdentity } from './peer-identity.js';
import type { CompiledFilterChain } from './http/filter-chain.js';
import type { NetworkFilter } from './http/filters/contract.js';
import type { CompiledRouteTable } from './http/route-table.js';
import type { ClusterManager } from './upstream/types.js';

/** One applied config, compiled and frozen. Requests read it once, at their start. */
export interface Snapshot {
  readonly version: string;
  readonly config: ProxyConfig;
  readonly routeTables: ReadonlyMap<string, CompiledRouteTable>;
  /** Each http listener's HTTP filter chain, by listener name. */
  readonly filterChains: ReadonlyMap<string, CompiledFilterChain>;
  /** Each tcp listener's network filters (authorization), by listener name; absent: none. */
  readonly networkFilters: ReadonlyMap<string, readonly NetworkFilter[]>;
}

export interface ProxyRuntime {
  /** The snapshot in force; undefined until the first apply. */
  current: Snapshot | undefined;
  readonly clusterManager: ClusterManager;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly stats: ProxyStats;
  /**
   * Metrics, tracing and access logs; undefined when telemetry is off (requests then do no
   * telemetry work at all) or before the first config names the node.
   */
  telemetry: ProxyTelemetry | undefined;
  /** The node id events are published under (subscribers of other proxies skip them). */
  nodeId: string | undefined;
  /** Which peers' metadata-exchange headers to trust, for the config in force (peer-identity.ts). */
  peers: PeerIdentity;
  /** This proxy's own exchange headers and their proof, as ready field lines for upstream requests. */
  peerHeaderLines: string;
  /** Downstream connections open over all listeners, against the global limit (overload.ts). */
  readonly downstream: DownstreamConnections;
}

/** Per listener, replaced when an apply changes the listener's settings but not its socket. */
export interface ListenerContext {
  readonly listener: Listener;
  readonly http: HttpConnectionManager;
  /** The bound port (port 0 in a config binds any free port). */
  port: number;
  /** Set while the listener drains: HTTP/1.1 responses then carry `connection: close`. */
  draining: boolean;
}
