/**
 * One object the proxy holds for all its telemetry: metrics (subscribed to the proxy's
 * diagnostics channels), access logs (likewise) and the tracer (called on the request path,
 * because trace headers must be set before the request leaves). `apply(settings)` follows each
 * accepted ProxyConfig's `telemetry` block, rebuilding only what changed.
 */
import type { ProxyNode, TelemetrySettings } from '../api/proxy-config.js';
import type { Clock } from '../core/clock.js';
import { fieldLine, withoutFields } from '../core/header-lines.js';
import type { Random } from '../core/random.js';
import { subscribeAccessLog, type AccessLogSink } from './access-log.js';
import { MeshMetrics, subscribeProxyMetrics } from './metrics.js';
import {
  peerMetadataHeaders,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  type LocalIdentityOptions,
} from './peer-metadata.js';
import { TRACE_HEADERS } from './propagation.js';
import { Tracer, type TracerOptions } from './tracing.js';

export interface ProxyTelemetryOptions {
  clock?: Clock;
  random?: Random;
  identity?: LocalIdentityOptions;
  /** Where access logs go instead of `settings.accessLog.path` / stdout (tests, a shared writer). */
  accessLogSink?: AccessLogSink;
  /** Tracer knobs that are not in TelemetrySettings (queue size, batch delay, export timeout). */
  tracer?: Partial<Omit<TracerOptions, 'node' | 'collectors' | 'randomSamplingPercentage' | 'clock' | 'random'>>;
}

export class ProxyTelemetry {
  readonly metrics = new MeshMetrics();
  /** The headers this proxy adds to upstream requests (outbound) and to responses (inbound). */
  readonly localPeerHeaders: Readonly<Record<string, string>>;
  /**
   * The same, as ready-to-send field lines for upstream requests (src/core/header-lines.ts),
   * checked once here. A node id HTTP/1.1 cannot carry (a control character) is left out.
   */
  readonly localPeerHeaderLines: string;
  private tracerInstance: Tracer | undefined;
  private unsubscribeMetrics: (() => void) | undefined;
  private unsubscribeAccessLog: (() => Promise<void>) | undefined;
  private applied = { tracing: '', accessLog: '' };

  constructor(
    readonly node: ProxyNode,
    private readonly options: ProxyTelemetryOptions = {},
  ) {
    this.localPeerHeaders = Object.freeze(peerMetadataHeaders(node, options.identity));
    let lines = '';
    for (const [name, value] of Object.entries(this.localPeerHeaders)) {
      try {
        lines += fieldLine(name, value);
      } catch {
        // Not sendable: the peer then sees this proxy as unknown, and every request still goes.
      }
    }
    this.localPeerHeaderLines = lines;
  }

  /** The tracer for the settings in force (always present after `apply`: headers propagate even unsampled). */
  get tracer(): Tracer | undefined {
    return this.tracerInstance;
  }

  /** Applies a config's telemetry block. Metrics are on unless `metrics.enabled` is false (Istio's default). */
  apply(settings: TelemetrySettings | undefined): void {
    const s = settings ?? {};
    if (s.metrics?.enabled === false) {
      this.unsubscribeMetrics?.();
      this.unsubscribeMetrics = undefined;
    } else if (!this.unsubscribeMetrics) {
      this.unsubscribeMetrics = subscribeProxyMetrics(this.node, this.metrics, { identity: this.options.identity });
    }

    const logs = [...(s.accessLog ? [s.accessLog] : []), ...(s.accessLogs ?? [])].filter((l) => l.enabled);
    const accessKey = JSON.stringify(logs);
    if (accessKey !== this.applied.accessLog) {
      this.applied.accessLog = accessKey;
      void this.unsubscribeAccessLog?.();
      const offs: (() => Promise<void>)[] = [];
      for (const log of logs) {
        try {
          offs.push(subscribeAccessLog(log, this.options.accessLogSink, { nodeId: this.node.id }));
        } catch {
          // A format the control plane let through but Envoy would refuse: that log is off, the rest are on.
        }
      }
      this.unsubscribeAccessLog = offs.length ? async () => void (await Promise.all(offs.map((off) => off()))) : undefined;
    }

    const tracingKey = JSON.stringify([s.tracingSamplingPercentage ?? null, s.tracingCollectors ?? []]);
    if (tracingKey !== this.applied.tracing || !this.tracerInstance) {
      this.applied.tracing = tracingKey;
      const old = this.tracerInstance;
      this.tracerInstance = new Tracer({
        ...this.options.tracer,
        node: this.node,
        randomSamplingPercentage: s.tracingSamplingPercentage,
        collectors: s.tracingCollectors,
        clock: this.options.clock,
        random: this.options.random,
        meshId: this.options.tracer?.meshId ?? this.options.identity?.meshId,
      });
      // Spans of in-flight requests finish on the old tracer, which flushes in the background.
      void old?.shutdown();
    }
  }

  /** Stops every subscription and flushes spans and access logs. */
  async close(): Promise<void> {
    this.unsubscribeMetrics?.();
    this.unsubscribeMetrics = undefined;
    await this.unsubscribeAccessLog?.();
    this.unsubscribeAccessLog = undefined;
    await this.tracerInstance?.shutdown();
  }
}

const PEER_METADATA_FIELDS: readonly string[] = [PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER];

/**
 * `headers` without the metadata-exchange fields (a copy when they are there): Istio's
 * metadata exchange removes them so the app never sees them, and an app cannot speak for its
 * sidecar.
 */
export function withoutPeerMetadataHeaders<H extends Record<string, unknown>>(headers: H): H {
  return withoutFields(headers, PEER_METADATA_FIELDS);
}

/** `headers` without any trace-context field (a copy when there are some), before the proxy sets the ones naming its own span. */
export function withoutTraceHeaders<H extends Record<string, unknown>>(headers: H): H {
  return withoutFields(headers, TRACE_HEADERS);
}

