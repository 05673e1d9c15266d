/**
 * The export side of proxy tracing: finished sampled spans become OpenTelemetry
 * `ReadableSpan`s with the exact ids the proxy put in headers, and go through the SDK's
 * `BatchSpanProcessor` to the OTLP/HTTP (JSON) or Zipkin v2 exporter.
 *
 * This module is loaded by the tracer only when a collector is configured: the OpenTelemetry
 * SDK and its exporters cost a proxy ~15 MB of memory, which a proxy that only propagates trace
 * headers (the default without collectors) should not pay.
 */
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type SpanContext } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { CollectorSpec, ProxySpan, TracerStats } from './tracing.js';

export interface PipelineOptions {
  maxQueueSize: number;
  timeoutMs: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  /** Sent as `Authorization: Bearer <credential>` to the collectors marked `presentCredential`. */
  credential?: ProxyCredential;
}

/**
 * The proxy's credential, or how to read its current value: a pod's service-account token is
 * renewed in place by kubelet, so each export reads it again.
 */
export type ProxyCredential = string | (() => string | undefined);

/** The tracer's handle on the exporters of one configuration. */
export interface SpanExport {
  offer(span: ProxySpan): void;
  drain(): Promise<void>;
  shutdown(): Promise<void>;
}

/** One pipeline per collector, all fed the same spans. */
export function createSpanExport(collectors: readonly CollectorSpec[], serviceName: string, stats: TracerStats, options: PipelineOptions): SpanExport {
  const resource = resourceFromAttributes({ 'service.name': serviceName });
  const pipelines = collectors.map(
    (c) =>
      new Pipeline(createExporter(c, serviceName, options.timeoutMs, options.credential), stats, options.maxQueueSize, c.timeoutMs ?? options.timeoutMs, {
        maxExportBatchSize: options.maxExportBatchSize,
        scheduledDelayMillis: options.scheduledDelayMillis,
      }),
  );
  return {
    offer(span) {
      try {
        const readable = toReadableSpan(span, resource);
        for (const p of pipelines) p.offer(readable);
      } catch {
        // Export is best effort; a span that cannot be converted is dropped, the request goes on.
        stats.dropped += pipelines.length;
      }
    },
    drain: async () => {
      await Promise.all(pipelines.map((p) => p.drain()));
    },
    shutdown: async () => {
      await Promise.all(pipelines.map((p) => p.processor.shutdown().catch(() => undefined)));
    },
  };
}

/** Wraps an exporter: counts outcomes, bounds in-flight spans, and times out exports itself. */
class Pipeline implements SpanExporter {
  pending = 0;
  readonly processor: BatchSpanProcessor;
  /** Exports under way; the processor starts one by itself when a batch fills, so flush waits on these too. */
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly inner: SpanExporter,
    private readonly stats: TracerStats,
    private readonly maxQueueSize: number,
    private readonly timeoutMs: number,
    options: { maxExportBatchSize: number; scheduledDelayMillis: number },
  ) {
    this.processor = new BatchSpanProcessor(this, {
      maxQueueSize: maxQueueSize,
      maxExportBatchSize: Math.min(options.maxExportBatchSize, maxQueueSize),
      scheduledDelayMillis: options.scheduledDelayMillis,
      // Longer than ours so that our timer settles each batch exactly once.
      exportTimeoutMillis: timeoutMs + 1000,
    });
  }

  offer(span: ReadableSpan): void {
    // Counting in-flight spans here (queued or being exported) bounds memory even while an
    // export is stuck, and lets us count what a full queue drops (the SDK only logs it).
    if (this.pending >= this.maxQueueSize) {
      this.stats.dropped++;
      return;
    }
    this.pending++;
    this.processor.onEnd(span);
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    let settled = false;
    let release!: () => void;
    const tracked = new Promise<void>((r) => (release = r));
    this.inflight.add(tracked);
    const settle = (ok: boolean, error?: Error) => {
      if (settled) return;
      settled = true;
      this.inflight.delete(tracked);
      release();
      clearTimeout(timer);
      this.pending = Math.max(0, this.pending - spans.length);
      if (ok) this.stats.exported += spans.length;
      else this.stats.dropped += spans.length;
      done(ok ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error });
    };
    // The Zipkin exporter sets no request timeout of its own; a collector that accepts and never
    // answers must not hold the queue forever.
    const timer = setTimeout(() => settle(false, new Error('export timed out')), this.timeoutMs);
    timer.unref();
    try {
      this.inner.export(spans, (r) => settle(r.code === ExportResultCode.SUCCESS, r.error));
    } catch (err) {
      settle(false, err as Error);
    }
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  /** Exports what is queued and waits until every export under way has settled. */
  async drain(): Promise<void> {
    await this.processor.forceFlush().catch(() => undefined);
    while (this.inflight.size) await Promise.all([...this.inflight]);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

function createExporter(spec: CollectorSpec, serviceName: string, timeoutMillis: number, credential: ProxyCredential | undefined): SpanExporter {
  // Only the control plane's own collector gets the credential: a third-party collector
  // named by a Telemetry resource must never learn it.
  const present = spec.presentCredential && credential !== undefined;
  const withCredential = (): Record<string, string> | undefined => {
    const value = typeof credential === 'function' ? credential() : credential;
    return present && value !== undefined ? { ...spec.headers, authorization: `Bearer ${value}` } : spec.headers;
  };
  if (spec.kind === 'zipkin') return new ZipkinExporter({ url: spec.url, serviceName, headers: withCredential() });
  // OTLP asks for its headers at every export: the current credential goes with each.
  return new OTLPTraceExporter({ url: spec.url, timeoutMillis: spec.timeoutMs ?? timeoutMillis, headers: present ? async () => withCredential() ?? {} : spec.headers });
}

function hrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.min(999_999_999, Math.round((ms - s * 1000) * 1e6))];
}

/** Builds the SDK's ReadableSpan with the exact ids of our span. */
export function toReadableSpan(span: ProxySpan, resource: Resource): ReadableSpan {
  const end = span.endTime ?? span.startTime;
  const flags = span.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE;
  const ctx: SpanContext = { traceId: span.traceId, spanId: span.spanId, traceFlags: flags };
  const parent: SpanContext | undefined = span.parentSpanId
    ? { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: flags, isRemote: true }
    : undefined;
  const attributes: Attributes = { ...span.tags };
  const error = span.tags['error'] === 'true';
  return {
    name: span.name,
    kind: span.kind === 'server' ? SpanKind.SERVER : SpanKind.CLIENT,
    spanContext: () => ctx,
    parentSpanContext: parent,
    startTime: hrTime(span.startTime),
    endTime: hrTime(end),
    duration: hrTime(Math.max(0, end - span.startTime)),
    status: error ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.UNSET },
    attributes,
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: { name: 'sinew-proxy' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}
