/**
 * A minimal ClusterManager for the proxy's tests: round-robin over the endpoints of a cluster
 * with one endpoint pool each (the real pools of endpoint-pool.ts), `exclude` honoured, a retry budget from connectionPool.maxRetries.
 * The real one (load balancers, circuit breakers, outlier detection) lives in src/proxy/upstream.
 */
import type { Cluster, ClusterLoadAssignment, Endpoint } from '../../../src/api/proxy-config.js';
import { createPool, poolSpec } from '../../../src/proxy/upstream/endpoint-pool.js';
import { PLAINTEXT_UPSTREAM } from '../../../src/proxy/transport/transport-socket.js';
import type { AcquireResult, ClusterManager, ClusterStats, EndpointPool, PickContext, UpstreamCluster, UpstreamOutcome } from '../../../src/proxy/upstream/types.js';

export class TestClusterManager implements ClusterManager {
  private readonly clusters = new Map<string, TestCluster>();
  private readonly pools = new Map<string, EndpointPool>();
  /** Every outcome released, for assertions. */
  readonly outcomes: { cluster: string; key: string; outcome: UpstreamOutcome }[] = [];

  update(clusters: readonly Cluster[], endpoints: readonly ClusterLoadAssignment[]): void {
    const byName = new Map(endpoints.map((e) => [e.clusterName, e.endpoints]));
    const next = new Map<string, TestCluster>();
    for (const c of clusters) next.set(c.name, new TestCluster(c, byName.get(c.name) ?? [], this));
    this.clusters.clear();
    for (const [k, v] of next) this.clusters.set(k, v);
  }

  pool(cluster: Cluster, key: string): EndpointPool {
    const id = `${cluster.protocol}|${key}`;
    let p = this.pools.get(id);
    if (!p) {
      const colon = key.lastIndexOf(':');
      p = createPool({ host: key.slice(0, colon), port: Number(key.slice(colon + 1)) }, poolSpec(cluster, new Map()));
      this.pools.set(id, p);
    }
    return p;
  }

  get(name: string): UpstreamCluster | undefined {
    return this.clusters.get(name);
  }

  stats(): ClusterStats[] {
    return [...this.clusters.values()].map((c) => c.stats());
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    this.pools.clear();
  }
}

class TestCluster implements UpstreamCluster {
  private next = 0;
  private active = 0;
  private retries = 0;
  private overflows = 0;
  private retryOverflows = 0;

  constructor(
    readonly config: Cluster,
    private readonly endpoints: readonly Endpoint[],
    private readonly manager: TestClusterManager,
  ) {}

  get name(): string {
    return this.config.name;
  }

  acquire(ctx: PickContext): AcquireResult {
    const healthy = this.endpoints.filter((e) => e.health === 'HEALTHY' || e.health === 'UNKNOWN');
    if (healthy.length === 0) return { ok: false, flag: 'UH', detail: 'no healthy upstream' };
    let candidates = ctx.exclude?.size ? healthy.filter((e) => !ctx.exclude!.has(key(e))) : healthy;
    // Envoy's previous_hosts predicate gives up when every host was tried.
    if (candidates.length === 0) candidates = healthy;
    const endpoint = candidates[this.next++ % candidates.length];
    const k = key(endpoint);
    this.active++;
    let released = false;
    return {
      ok: true,
      lease: {
        endpoint,
        key: k,
        dispatcher: this.manager.pool(this.config, k),
        transport: PLAINTEXT_UPSTREAM,
        release: (outcome) => {
          if (released) return;
          released = true;
          this.active--;
          this.manager.outcomes.push({ cluster: this.name, key: k, outcome });
        },
      },
    };
  }

  tryReserveRetry(): boolean {
    const max = this.config.connectionPool?.maxRetries ?? Infinity;
    if (this.retries >= max) {
      this.retryOverflows++;
      return false;
    }
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    this.retries--;
  }

  stats(): ClusterStats {
    return {
      name: this.name,
      activeRequests: this.active,
      pendingRequests: 0,
      overflows: this.overflows,
      retryOverflows: this.retryOverflows,
      ejections: 0,
      endpoints: this.endpoints.map((e) => ({
        key: key(e), address: e.address, health: e.health, activeRequests: 0, totalRequests: 0, failedRequests: 0, labels: e.labels,
      })),
    };
  }
}

const key = (e: Endpoint) => `${e.address.host}:${e.address.port}`;
