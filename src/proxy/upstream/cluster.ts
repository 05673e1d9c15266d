/**
 * One upstream cluster: its hosts, the balancing set (healthy, not ejected, locality), the
 * balancer, circuit breakers, outlier detection, active health checks and the per-endpoint
 * pools. The router meets it through `acquire` -> lease -> `release(outcome)`.
 */
import type { Address, Cluster, Endpoint, EndpointHealth } from '../../api/proxy-config.js';
import type { Clock } from '../../core/clock.js';
import { SinewError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Random } from '../../core/random.js';
import { createPool, endpointSpec, type PoolSpec } from './endpoint-pool.js';
import { PLAINTEXT_UPSTREAM, type UpstreamTransport } from '../transport/transport-socket.js';
import { HealthChecker, type HealthCheckResult } from './health-check.js';
import { createBalancer, OriginalDstBalancer, type Balancer, type LbHost } from './lb/index.js';
import { planLocality, type LocalityPlan } from './locality.js';
import { PendingGate } from './pending-gate.js';
import { OutlierDetector, OutlierState, type EjectionReason } from './outlier.js';
import type { AcquireResult, ClusterStats, EndpointPool, EndpointState, PickContext, UpstreamCluster, UpstreamDispatcher, UpstreamLease, UpstreamOutcome } from './types.js';

/** Things the upstream layer reports (telemetry and tests subscribe through `onEvent`). */
export type UpstreamEvent =
  | { type: 'ejected'; cluster: string; key: string; reason: EjectionReason; until: number }
  | { type: 'ejection-overflow'; cluster: string; key: string; reason: EjectionReason }
  | { type: 'unejected'; cluster: string; key: string }
  | ({ type: 'health-check'; cluster: string; key: string } & HealthCheckResult)
  | { type: 'pool-closed'; cluster: string; key: string };

export interface ClusterDeps {
  clock: Clock;
  random: Random;
  logger: Logger;
  /** The proxy's own labels, for `failoverPriority`. */
  localLabels: Readonly<Record<string, string>>;
  onEvent?: (event: UpstreamEvent) => void;
  /** Called with every pool the cluster drops; the manager closes it gracefully. */
  retirePool: (pool: EndpointPool) => void;
}

// === hosts ===

export class Host implements LbHost {
  readonly key: string;
  address: Address;
  endpoint: Endpoint;
  weight: number;
  readonly addedAt: number;
  activeRequests = 0;
  totalRequests = 0;
  failedRequests = 0;
  readonly od = new OutlierState();
  checker: HealthChecker | undefined;
  pool: EndpointPool | undefined;
  poolKey = '';

  constructor(endpoint: Endpoint, key: string, now: number) {
    this.key = key;
    this.address = endpoint.address;
    this.endpoint = endpoint;
    this.weight = endpoint.weight ?? 1;
    this.addedAt = now;
  }

  get locality(): string | undefined {
    return this.endpoint.locality;
  }

  get labels(): Readonly<Record<string, string>> {
    return this.endpoint.labels;
  }

  /** Pushed health and the active health check; ejection is separate. */
  get healthy(): boolean {
    const h = this.endpoint.health;
    if (h === 'UNHEALTHY' || h === 'DRAINING') return false;
    return this.checker ? this.checker.healthy : true;
  }

  get reportedHealth(): EndpointHealth {
    if (this.endpoint.health === 'DRAINING' || this.endpoint.health === 'UNHEALTHY') return this.endpoint.health;
    if (this.checker && !this.checker.healthy) return 'UNHEALTHY';
    return this.endpoint.health;
  }
}

export function endpointKey(address: Address): string {
  return `${address.host}:${address.port}`;
}

// === leases ===

class Lease implements UpstreamLease {
  private released = false;
  /** Set while the lease waits for a connection slot (see pending-gate.ts). */
  gate: PendingGate | undefined;
  readonly dispatcher: UpstreamDispatcher;

  constructor(
    private readonly cluster: ClusterImpl,
    readonly host: Host,
    private readonly pool: EndpointPool,
    pending: boolean,
  ) {
    if (pending) this.gate = new PendingGate();
    this.dispatcher = this.gate ?? pool;
  }

  get endpoint(): Endpoint {
    return this.host.endpoint;
  }

  get transport(): UpstreamTransport {
    return this.cluster.transportOf(this.host.endpoint);
  }

  get key(): string {
    return this.host.key;
  }

  get pending(): boolean {
    return this.gate !== undefined && !this.promoted;
  }

  private promoted = false;

  promote(): void {
    this.promoted = true;
    this.gate?.open(this.pool);
  }

  release(outcome: UpstreamOutcome): void {
    if (this.released) return;
    this.released = true;
    this.cluster.onRelease(this, outcome);
  }
}

// === the cluster ===

export class ClusterImpl implements UpstreamCluster {
  readonly name: string;
  private cfg: Cluster;
  private spec: PoolSpec;
  private hosts: Host[] = [];
  private readonly byKey = new Map<string, Host>();
  private balancer: Balancer;
  private lbKey: string;
  private original: OriginalDstBalancer<Host> | undefined;
  private detector: OutlierDetector | undefined;
  private plan: LocalityPlan<Host> | undefined;
  private panic = false;
  private closed = false;

  /** Leases outstanding (running + waiting). */
  private active = 0;
  /** Leases holding a connection slot (running). */
  private running = 0;
  /** Leases waiting for a slot, oldest first. */
  private readonly waiting: Lease[] = [];
  private retries = 0;
  private overflows = 0;
  private pendingOverflows = 0;
  private retryOverflows = 0;

  constructor(
    config: Cluster,
    endpoints: readonly Endpoint[],
    spec: PoolSpec,
    private readonly deps: ClusterDeps,
  ) {
    this.name = config.name;
    this.cfg = config;
    this.spec = spec;
    this.lbKey = JSON.stringify(config.lb);
    this.balancer = createBalancer(config.lb, deps);
    this.apply(config, endpoints, spec);
  }

  get config(): Cluster {
    return this.cfg;
  }

  /** Applies a new config and endpoint list; hosts that stay keep their state and pools. */
  apply(config: Cluster, endpoints: readonly Endpoint[], spec: PoolSpec): void {
    const deps = this.deps;
    const now = deps.clock.monotonic();
    const lbKey = JSON.stringify(config.lb);
    if (lbKey !== this.lbKey) {
      this.lbKey = lbKey;
      this.balancer = createBalancer(config.lb, deps);
    }
    const specChanged = spec.settingsKey !== this.spec.settingsKey;
    this.cfg = config;
    this.spec = spec;

    // originalDst clusters have no endpoint list: hosts come from each request.
    if (config.kind === 'originalDst' || config.lb.policy === 'PASSTHROUGH') {
      if (!this.original || specChanged) {
        this.original?.clear();
        this.original = new OriginalDstBalancer<Host>(
          (address, key) => new Host({ address, labels: {}, health: 'HEALTHY' }, key, deps.clock.monotonic()),
          (host) => this.dropPool(host),
        );
      }
    } else if (this.original) {
      this.original.clear();
      this.original = undefined;
    }

    const next: Host[] = [];
    const seen = new Set<string>();
    if (config.kind !== 'blackhole' && !this.original) {
      for (const ep of endpoints) {
        const key = endpointKey(ep.address);
        if (seen.has(key)) continue; // a duplicate address adds nothing but skew
        seen.add(key);
        let host = this.byKey.get(key);
        if (!host) {
          host = new Host(ep, key, now);
          this.byKey.set(key, host);
        } else {
          host.endpoint = ep;
          host.address = ep.address;
          host.weight = ep.weight ?? 1;
        }
        this.syncHealthCheck(host);
        next.push(host);
      }
    }
    for (const [key, host] of this.byKey) {
      if (!seen.has(key)) {
        this.byKey.delete(key);
        this.retireHost(host);
      }
    }
    // A host keeps its pool while the transport it connects with stays (with auto mTLS, the
    // spec of its tlsMode: a renewed certificate replaces the pools of sidecar-backed hosts only).
    for (const host of next) if (host.pool && host.poolKey !== endpointSpec(spec, host.endpoint).settingsKey) this.dropPool(host);
    this.hosts = next;

    const od = config.outlierDetection;
    if (od && (od.consecutive5xxErrors || od.consecutiveGatewayErrors || od.consecutiveLocalOriginFailures)) {
      if (this.detector) this.detector.reconfigure(od);
      else this.detector = new OutlierDetector(od, deps.clock, this.outlierListener());
      this.detector.setHosts(next);
      this.detector.start();
    } else if (this.detector) {
      this.detector.stop();
      this.detector = undefined;
      for (const host of next) {
        host.od.ejected = false;
        host.od.ejectedUntil = undefined;
      }
    }
    this.plan = undefined;
    this.promoteWaiting(); // a raised maxConnections frees slots at once
  }

  // === picking ===

  /** The transport an endpoint connects with (its spec's: auto mTLS picks by its tlsMode). */
  transportOf(endpoint: Endpoint): UpstreamTransport {
    return endpointSpec(this.spec, endpoint).transport ?? PLAINTEXT_UPSTREAM;
  }

  acquire(ctx: PickContext): AcquireResult {
    if (this.closed) return { ok: false, flag: 'UH', detail: 'cluster_removed' };
    const cfg = this.cfg;
    if (cfg.kind === 'blackhole') return { ok: false, flag: 'UH', detail: 'blackhole_cluster' };
    // Warming (endpoint-pool.ts `unavailable`): no connection can be made, so no endpoint is healthy.
    if (this.spec.unavailable !== undefined) return { ok: false, flag: 'UH', detail: 'cluster_warming' };
    let host: Host | undefined;
    if (this.original) {
      host = this.original.pick(this.hosts, ctx);
      if (!host) return { ok: false, flag: 'UH', detail: 'no_original_destination' };
    } else {
      host = this.pickHost(ctx);
      if (!host) return { ok: false, flag: 'UH', detail: 'no_healthy_upstream' };
    }

    // Circuit breakers (Envoy's per-cluster thresholds, checked when a request asks for a
    // connection pool). http2MaxRequests is Envoy's max_requests and applies to every
    // protocol. For HTTP/1.1 a request beyond maxConnections (cluster-wide, as Envoy's
    // max_connections) waits for a running one to finish; at most http1MaxPendingRequests may
    // wait (max_pending_requests) and the next is refused at once.
    const cp = cfg.connectionPool;
    let pending = false;
    if (cp) {
      if (cp.http2MaxRequests !== undefined && this.active >= cp.http2MaxRequests) {
        this.overflows++;
        return { ok: false, flag: 'UO', detail: 'upstream_rq_overflow' };
      }
      if (cfg.protocol !== 'http2' && cp.maxConnections !== undefined && this.running >= cp.maxConnections) {
        if (this.waiting.length >= (cp.http1MaxPendingRequests ?? Infinity)) {
          this.overflows++;
          this.pendingOverflows++;
          return { ok: false, flag: 'UO', detail: 'upstream_rq_pending_overflow' };
        }
        pending = true;
      }
    }

    const spec = endpointSpec(this.spec, host.endpoint);
    // Auto mTLS before the workload certificate is issued: no mutual TLS connection can be made.
    if (spec.unavailable !== undefined) return { ok: false, flag: 'UH', detail: 'cluster_warming' };
    let pool = host.pool;
    if (!pool || pool.closed || pool.destroyed) {
      pool = createPool(host.address, spec);
      host.pool = pool;
      host.poolKey = spec.settingsKey;
    }
    host.activeRequests++;
    host.totalRequests++;
    this.active++;
    const lease = new Lease(this, host, pool, pending);
    if (pending) this.waiting.push(lease);
    else this.running++;
    return { ok: true, lease };
  }

  /** Gives free connection slots to waiting leases, oldest first. */
  private promoteWaiting(): void {
    const max = this.cfg.protocol !== 'http2' ? this.cfg.connectionPool?.maxConnections : undefined;
    while (this.waiting.length > 0 && (max === undefined || this.running < max)) {
      const lease = this.waiting.shift()!;
      this.running++;
      lease.promote();
    }
  }

  private pickHost(ctx: PickContext): Host | undefined {
    const plan = this.plan ?? this.rebuild();
    if (plan.kind !== 'distribute') return this.balancer.pick(plan.hosts, ctx) as Host | undefined;
    if (plan.groups.length === 0) return undefined;
    let target = this.deps.random.next() * plan.total;
    for (const group of plan.groups) {
      target -= group.weight;
      if (target < 0) return this.balancer.pick(group.hosts, ctx) as Host | undefined;
    }
    return this.balancer.pick(plan.groups[plan.groups.length - 1].hosts, ctx) as Host | undefined;
  }

  /** Recomputes the balancing set; runs only after membership, health or ejections change. */
  private rebuild(): LocalityPlan<Host> {
    const all = this.hosts;
    let eligible = all.filter((h) => h.healthy && !h.od.ejected);
    // Istio minHealthPercent is Envoy's panic threshold: below it, balance over every host
    // (healthy or not), which in effect switches outlier ejection off.
    const minHealth = this.cfg.outlierDetection?.minHealthPercent;
    this.panic = false;
    if (minHealth && minHealth > 0 && all.length > 0 && (100 * eligible.length) / all.length < minHealth) {
      eligible = all.slice();
      this.panic = true;
    }
    this.plan = planLocality(eligible, this.cfg.lb.locality, this.deps.localLabels);
    return this.plan;
  }

  // === outcomes ===

  /** Called once per lease. */
  onRelease(lease: Lease, outcome: UpstreamOutcome): void {
    const host = lease.host;
    host.activeRequests--;
    this.active--;
    if (lease.pending) {
      const i = this.waiting.indexOf(lease);
      if (i >= 0) this.waiting.splice(i, 1);
      lease.gate!.fail();
      return; // it never reached the endpoint: nothing for outlier detection
    }
    this.running--;
    this.promoteWaiting();
    const failed = (outcome.status !== undefined && outcome.status >= 500) || (outcome.status === undefined && outcome.failure !== undefined && outcome.failure !== 'cancelled');
    if (failed) host.failedRequests++;
    // Only hosts still in the cluster feed outlier detection.
    if (this.detector && this.byKey.get(host.key) === host) this.detector.record(host, outcome);
  }

  tryReserveRetry(): boolean {
    const max = this.cfg.connectionPool?.maxRetries;
    if (max !== undefined && this.retries >= max) {
      this.retryOverflows++;
      return false;
    }
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    if (this.retries > 0) this.retries--;
  }

  // === health checks and pools ===

  private syncHealthCheck(host: Host): void {
    const hc = host.endpoint.healthCheck;
    const current = host.checker;
    const vouched = host.endpoint.health === 'HEALTHY';
    // Keep a running checker unless its settings changed, or the control plane has just
    // vouched for a host the checker still holds as failing (the app became ready after the
    // first check ran): then start over, healthy.
    // Checks go over the host's own transport (TLS to a sidecar that requires it); a renewed
    // certificate starts a new checker with it.
    const transport = endpointSpec(this.spec, host.endpoint).transport;
    if (current && hc && JSON.stringify(current.config) === JSON.stringify(hc) && current.transport?.key === transport?.key && !(vouched && !current.healthy && !current.vouched)) return;
    current?.stop();
    host.checker = undefined;
    if (!hc) return;
    const checker = new HealthChecker(hc, host.address, this.deps.clock, (result) => {
      if (host.checker !== checker) return;
      if (result.changed) this.plan = undefined;
      this.deps.onEvent?.({ type: 'health-check', cluster: this.name, key: host.key, ...result });
    }, vouched, transport);
    host.checker = checker;
    checker.start();
  }

  private retireHost(host: Host): void {
    host.checker?.stop();
    host.checker = undefined;
    this.dropPool(host);
  }

  private dropPool(host: Host): void {
    const pool = host.pool;
    if (!pool) return;
    host.pool = undefined;
    this.deps.retirePool(pool);
    this.deps.onEvent?.({ type: 'pool-closed', cluster: this.name, key: host.key });
  }

  private outlierListener() {
    return {
      changed: () => {
        this.plan = undefined;
      },
      ejected: (host: { key: string; od: OutlierState }, reason: EjectionReason) => {
        this.deps.logger.info('outlier ejection', { cluster: this.name, endpoint: host.key, reason, times: host.od.timesEjected });
        this.deps.onEvent?.({ type: 'ejected', cluster: this.name, key: host.key, reason, until: host.od.ejectedUntil ?? 0 });
      },
      unejected: (host: { key: string }) => {
        this.deps.onEvent?.({ type: 'unejected', cluster: this.name, key: host.key });
      },
      overflow: (host: { key: string }, reason: EjectionReason) => {
        this.deps.onEvent?.({ type: 'ejection-overflow', cluster: this.name, key: host.key, reason });
      },
    };
  }

  /** Stops timers and hands every pool to the manager to drain. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.detector?.stop();
    const removed = new SinewError('SNW_ERR_UPSTREAM_CLUSTER_REMOVED', `cluster ${this.name} was removed by a config update while the request waited for a connection`);
    for (const lease of this.waiting) lease.gate?.fail(removed);
    for (const host of this.hosts) this.retireHost(host);
    this.original?.clear();
    this.byKey.clear();
  }

  // === stats ===

  stats(): ClusterStats {
    const hosts = this.original ? this.original.known() : this.hosts;
    if (this.plan === undefined && !this.original) this.rebuild();
    const endpoints: EndpointState[] = hosts.map((h) => {
      const state: EndpointState = {
        key: h.key,
        address: h.address,
        health: h.reportedHealth,
        activeRequests: h.activeRequests,
        totalRequests: h.totalRequests,
        failedRequests: h.failedRequests,
        labels: h.labels,
      };
      if (h.od.ejected && h.od.ejectedUntil !== undefined) state.ejectedUntil = h.od.ejectedUntil;
      return state;
    });
    return {
      name: this.name,
      ...(this.spec.unavailable !== undefined ? { unavailable: this.spec.unavailable } : {}),
      upstreamClient: this.spec.http1 !== undefined ? 'sinew-http1' : 'undici',
      transport: this.spec.secure ? 'tls' : 'plaintext',
      activeRequests: this.running,
      pendingRequests: this.waiting.length,
      overflows: this.overflows,
      pendingOverflows: this.pendingOverflows,
      retryOverflows: this.retryOverflows,
      activeRetries: this.retries,
      ejections: this.detector?.ejections ?? 0,
      ejectionOverflows: this.detector?.overflows ?? 0,
      activeEjections: this.detector?.ejectedCount() ?? 0,
      panic: this.panic,
      endpoints,
    };
  }

  /** Runs the outlier sweep now (admin and tests; the timer does it every interval). */
  sweepOutliers(): void {
    this.detector?.tick();
  }
}
