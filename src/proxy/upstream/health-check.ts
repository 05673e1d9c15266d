/**
 * Active health checking (Envoy `health_checks`; in Sinew it carries a workload's
 * readinessProbe). Every `intervalMs` the proxy sends `GET httpPath` (or, without a path,
 * opens a TCP connection) with a `timeoutMs` limit. A host turns unhealthy after
 * `unhealthyThreshold` failures in a row and healthy after `healthyThreshold` successes in a
 * row; a new host needs one success (Envoy: a host starts as failing active health check and
 * is marked healthy after its first successful check, so traffic never reaches a host that
 * never answered). Success for HTTP is 200-399, Kubernetes' readiness rule.
 *
 * Timers run on the injected clock; each check's outcome is reported through `onResult`, so
 * tests drive checks with ManualClock.advance() and await the report instead of sleeping.
 *
 * A check goes to the endpoint's address, which in embedded mode is the inbound listener of
 * the replica's sidecar: the only address a client proxy knows. Like Envoy's health checker
 * (`user-agent: Envoy/HC`) it names itself in the user-agent and sends no peer metadata, and
 * the inbound sidecar leaves such requests out of Istio's standard metrics (telemetry's
 * `HEALTH_CHECK_USER_AGENT`): probes are not traffic of the mesh, and Istio never counts them.
 */
import http from 'node:http';
import net from 'node:net';
import type { Address, Endpoint } from '../../api/proxy-config.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { HEALTH_CHECK_USER_AGENT } from '../events.js';
import type { UpstreamTransport } from '../transport/transport-socket.js';

export type HealthCheckConfig = NonNullable<Endpoint['healthCheck']>;

export interface HealthCheckResult {
  ok: boolean;
  /** The host's health after this check. */
  healthy: boolean;
  /** True when this check flipped the host's health. */
  changed: boolean;
  /** Why it failed: status code, error code or `timeout`. */
  detail?: string;
}

export class HealthChecker {
  /** False until the first success (see the file comment), unless started healthy. */
  healthy: boolean;
  private successes = 0;
  private failures = 0;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private inflight: { cancel(): void } | undefined;

  constructor(
    readonly config: HealthCheckConfig,
    private readonly address: Address,
    private readonly clock: Clock,
    private readonly onResult: (result: HealthCheckResult) => void,
    /**
     * Start healthy: the control plane already vouched for this host (it publishes an
     * endpoint as HEALTHY only after the workload's readiness probe passed, as Kubernetes
     * endpoints do), so the active check only has to notice when it stops answering.
     */
    readonly vouched = false,
    /**
     * The transport the host's traffic uses, when it is TLS: a sidecar that requires mutual
     * TLS (STRICT) answers checks only over it, as Envoy's health checks use the host's
     * transport socket. Absent: plaintext.
     */
    readonly transport?: UpstreamTransport,
  ) {
    this.healthy = vouched;
  }

  /** Schedules the first check at once (on the clock, so a ManualClock needs advance(0)). */
  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.inflight?.cancel();
    this.inflight = undefined;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.runOnce();
    }, ms).unref();
  }

  private runOnce(): void {
    const port = this.config.port ?? this.address.port;
    const finish = (ok: boolean, detail?: string) => {
      if (this.stopped) return;
      this.inflight = undefined;
      const before = this.healthy;
      if (ok) {
        this.failures = 0;
        this.successes++;
        // Envoy: the first success of a new host is enough; afterwards healthyThreshold.
        if (!this.healthy && (this.successes >= this.config.healthyThreshold || !this.everHealthy)) this.healthy = true;
      } else {
        this.successes = 0;
        this.failures++;
        if (this.healthy && this.failures >= this.config.unhealthyThreshold) this.healthy = false;
      }
      if (this.healthy) this.everHealthy = true;
      this.schedule(this.config.intervalMs);
      this.onResult({ ok, healthy: this.healthy, changed: before !== this.healthy, ...(detail ? { detail } : {}) });
    };
    this.inflight = this.config.httpPath !== undefined
      ? probeHttp(this.address.host, port, this.config.httpPath, this.config.timeoutMs, this.clock, finish, this.transport)
      : probeTcp(this.address.host, port, this.config.timeoutMs, this.clock, finish, this.transport);
  }

  private everHealthy = false;
}

type Finish = (ok: boolean, detail?: string) => void;

function once(finish: Finish): Finish {
  let done = false;
  return (ok, detail) => {
    if (done) return;
    done = true;
    finish(ok, detail);
  };
}

function probeHttp(host: string, port: number, path: string, timeoutMs: number, clock: Clock, finish: Finish, transport: UpstreamTransport | undefined): { cancel(): void } {
  const done = once(finish);
  const req = http.request({
    host,
    port,
    ...(transport ? { createConnection: () => transport.connect(host, port, { noDelay: true }) } : {}),
    path: path.startsWith('/') ? path : `/${path}`,
    method: 'GET',
    agent: false,
    headers: { 'user-agent': HEALTH_CHECK_USER_AGENT, connection: 'close' },
  });
  const timer = clock.setTimeout(() => {
    done(false, 'timeout');
    req.destroy();
  }, timeoutMs).unref();
  req.on('response', (res) => {
    clock.clearTimeout(timer);
    const status = res.statusCode ?? 0;
    res.on('error', () => {});
    res.resume();
    done(status >= 200 && status < 400, status >= 200 && status < 400 ? undefined : String(status));
  });
  req.on('error', (err: NodeJS.ErrnoException) => {
    clock.clearTimeout(timer);
    done(false, err.code ?? 'error');
  });
  req.end();
  return {
    cancel() {
      clock.clearTimeout(timer);
      req.destroy();
    },
  };
}

function probeTcp(host: string, port: number, timeoutMs: number, clock: Clock, finish: Finish, transport: UpstreamTransport | undefined): { cancel(): void } {
  const done = once(finish);
  const socket = transport ? transport.connect(host, port, {}) : net.connect({ host, port });
  const timer = clock.setTimeout(() => {
    done(false, 'timeout');
    socket.destroy();
  }, timeoutMs).unref();
  socket.on(transport?.readyEvent ?? 'connect', () => {
    clock.clearTimeout(timer);
    socket.destroy();
    done(true);
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    clock.clearTimeout(timer);
    done(false, err.code ?? 'error');
  });
  return {
    cancel() {
      clock.clearTimeout(timer);
      socket.destroy();
    },
  };
}
