/**
 * The cluster manager (Envoy's ClusterManager): owns every upstream cluster of one proxy and
 * swaps them atomically when a new ProxyConfig arrives. Clusters that stay keep their state
 * (active counts, outlier history, health) and their endpoint pools; removed clusters and
 * endpoints have their pools closed gracefully (a pool's `close()` lets in-flight requests
 * finish), so an update causes no reconnect storm and cuts no request short.
 */
import type { Cluster, Endpoint } from '../../api/proxy-config.js';
import { systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import { SinewError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { systemRandom, type Random } from '../../core/random.js';
import { ClusterImpl, type UpstreamEvent } from './cluster.js';
import { DnsResolution, systemLookup, type DnsLookup } from './dns.js';
import { poolSpec, type PoolSpec } from './endpoint-pool.js';
import { isPrime } from './lb/index.js';
import type { ClusterManager, ClusterStats, EndpointPool, UpstreamCluster } from './types.js';

export type { UpstreamEvent } from './cluster.js';

export interface ClusterManagerOptions {
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** The proxy's own labels (for locality `failoverPriority`). */
  localLabels?: Readonly<Record<string, string>>;
  /** Ejections, health-check results and pool retirements, for telemetry and tests. */
  onEvent?: (event: UpstreamEvent) => void;
  /** How long close() lets in-flight requests finish before destroying their pools (5 s). */
  drainTimeoutMs?: number;
  /** How `dns` clusters resolve their endpoints' names (dns.ts; default: the system's getaddrinfo). */
  dnsLookup?: DnsLookup;
}

export interface UpstreamClusterManager extends ClusterManager {
  get(name: string): (UpstreamCluster & { sweepOutliers(): void }) | undefined;
  /** Resolves when the first DNS resolution of every `dns` cluster is done. */
  dnsSettled(): Promise<void>;
}

/** Creates a cluster manager. Nothing connects until a request acquires an endpoint. */
export function createClusterManager(options: ClusterManagerOptions = {}): UpstreamClusterManager {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? systemRandom;
  const logger = (options.logger ?? silentLogger).child('upstream');
  const drainTimeoutMs = options.drainTimeoutMs ?? 5000;
  const clusters = new Map<string, ClusterImpl>();
  const closing = new Set<Promise<unknown>>();
  const retiring = new Set<EndpointPool>();
  let closed = false;

  const retirePool = (pool: EndpointPool) => {
    retiring.add(pool);
    const p = pool
      .close()
      .catch((err: unknown) => logger.debug('pool close failed', { error: String(err) }))
      .finally(() => {
        closing.delete(p);
        retiring.delete(pool);
      });
    closing.add(p);
  };
  const deps = { clock, random, logger, localLabels: options.localLabels ?? {}, onEvent: options.onEvent, retirePool };
  // `dns` clusters get the addresses their names resolve to, and new ones as the answers change.
  const specs = new Map<string, PoolSpec>();
  const dns = new DnsResolution({
    lookup: options.dnsLookup ?? systemLookup,
    clock,
    logger,
    onResolved: (name, endpoints) => {
      const cluster = clusters.get(name);
      const spec = specs.get(name);
      if (cluster && spec) cluster.apply(cluster.config, endpoints, spec);
    },
  });

  return {
    update(next, assignments, secrets = []) {
      if (closed) throw new SinewError('SNW_ERR_UPSTREAM_CLOSED', 'the cluster manager is closed; create a new one');
      // Build and check everything first, so a bad cluster leaves the old set serving
      // (STYLE.md 10: bad pushed config degrades, never crashes).
      const secretMap = new Map(secrets.map((s) => [s.name, s]));
      const byCluster = new Map<string, Endpoint[]>();
      for (const cla of assignments) {
        const list = byCluster.get(cla.clusterName);
        if (list) list.push(...cla.endpoints);
        else byCluster.set(cla.clusterName, [...cla.endpoints]);
      }
      const planned: { config: Cluster; spec: PoolSpec; endpoints: Endpoint[] }[] = [];
      const names = new Set<string>();
      for (const config of next) {
        if (names.has(config.name)) {
          throw new SinewError('SNW_ERR_UPSTREAM_DUPLICATE_CLUSTER', `cluster ${config.name} appears twice in the update; cluster names must be unique`);
        }
        names.add(config.name);
        if (config.lb.policy === 'MAGLEV' && config.lb.tableSize !== undefined && !isPrime(config.lb.tableSize)) {
          throw new SinewError('SNW_ERR_UPSTREAM_MAGLEV_TABLE', `cluster ${config.name}: Maglev tableSize ${config.lb.tableSize} is not prime; use a prime such as 65537`);
        }
        planned.push({ config, spec: poolSpec(config, secretMap), endpoints: byCluster.get(config.name) ?? [] });
      }
      // Swap: nothing below throws on valid input.
      for (const planItem of planned) {
        const { config, spec } = planItem;
        const endpoints = config.kind === 'dns' ? dns.endpoints(config, planItem.endpoints) : planItem.endpoints;
        specs.set(config.name, spec);
        if (spec.unavailable !== undefined) logger.warn('cluster warming: requests get 503 UH until its TLS secrets arrive', { cluster: config.name, reason: spec.unavailable });
        const existing = clusters.get(config.name);
        if (existing) existing.apply(config, endpoints, spec);
        else clusters.set(config.name, new ClusterImpl(config, endpoints, spec, deps));
      }
      for (const [name, cluster] of clusters) {
        if (!names.has(name)) {
          clusters.delete(name);
          specs.delete(name);
          cluster.close();
        }
      }
      dns.retain(new Set(planned.filter((p) => p.config.kind === 'dns').map((p) => p.config.name)));
    },

    dnsSettled() {
      return dns.settled();
    },

    get(name) {
      return clusters.get(name);
    },

    stats(): ClusterStats[] {
      return [...clusters.values()].map((c) => c.stats());
    },

    async close() {
      closed = true;
      dns.close();
      for (const cluster of clusters.values()) cluster.close();
      clusters.clear();
      // In-flight requests get drainTimeoutMs (on the injected clock) to finish; then their
      // pools are destroyed so shutdown cannot hang on a stuck upstream.
      let timer: TimerHandle | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = clock.setTimeout(resolve, drainTimeoutMs).unref();
      });
      const drained = (async () => {
        while (closing.size) await Promise.all([...closing]);
      })();
      await Promise.race([drained, deadline]);
      if (timer) clock.clearTimeout(timer);
      if (retiring.size) {
        await Promise.all([...retiring].map((pool) => pool.destroy().catch(() => {})));
        await drained;
      }
    },
  };
}
