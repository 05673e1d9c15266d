/**
 * Proxy spans, as Envoy's tracer makes them for Istio: one SERVER span per inbound request
 * (the sidecar in front of the app, or a gateway's downstream side) and one CLIENT span per
 * outbound request, joined by trace context in B3 and W3C headers (./propagation.ts).
 *
 * Sampling follows Envoy's HTTP connection manager: a sampling decision that arrives with the
 * request is kept (Istio: "the sampling decision is propagated"), otherwise the proxy draws
 * against `randomSamplingPercentage` (Istio's Telemetry API / meshConfig
 * `defaultConfig.tracing.sampling`) from an injected Random.
 *
 * Export: spans are our own small objects on the request path; when a sampled span ends it is
 * turned into an OpenTelemetry `ReadableSpan` with the exact ids the headers carried and handed
 * to the SDK's `BatchSpanProcessor`, which batches to the OTLP/HTTP (JSON) or Zipkin v2
 * exporter. Building ReadableSpans ourselves, rather than running the SDK Tracer, keeps the ids
 * the proxy already put in headers (the SDK Tracer mints its own span ids) and keeps the
 * OpenTelemetry context machinery off the request path.
 *
 * A collector that is slow or down never blocks or throws into a request: the queue is bounded
 * (a full queue drops the span), export runs off the request path, and every span that did not
 * reach a collector is counted in `stats.dropped`.
 */
import { randomBytes } from 'node:crypto';
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type SpanContext } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ProxyNode } from '../api/proxy-config.js';
import { systemClock, type Clock } from '../core/clock.js';
import { systemRandom, type Random } from '../core/random.js';
import { peerMetadataFromNode } from './peer-metadata.js';
import { extractTraceContext, injectTraceContext, type HeaderBag, type TraceContext } from './propagation.js';

export interface CollectorSpec {
  kind: 'otlp-http' | 'zipkin';
  /** Full URL: `http://host:4318/v1/traces` (OTLP) or `http://host:9411/api/v2/spans` (Zipkin). */
  url: string;
}

export interface TracerOptions {
  node: ProxyNode;
  /** 0..100; undefined = never start a sampled trace of our own (keep incoming decisions only). */
  randomSamplingPercentage?: number;
  collectors?: CollectorSpec[];
  meshId?: string;
  clock?: Clock;
  random?: Random;
  /** Bounded queue per collector (the SDK's default is 2048). */
  maxQueueSize?: number;
  maxExportBatchSize?: number;
  /** How long spans wait to be batched (the SDK's default is 5000 ms). */
  scheduledDelayMillis?: number;
  /** Per export attempt, retries included. */
  exportTimeoutMillis?: number;
  /** Overrides the `service.name` resource (Istio's default is `<canonical service>.<namespace>`). */
  serviceName?: string;
  /** Span / trace id source; crypto-random by default. Tests may inject a deterministic one. */
  idBytes?: (n: number) => Buffer;
}

export interface TracerStats {
  started: number;
  sampled: number;
  exported: number;
  /** Spans that reached no collector: queue full, export failed or timed out. Per collector. */
  dropped: number;
}

/** What the proxy knows about the request when a span starts. */
export interface SpanRequest {
  method: string;
  /** Scheme + authority + path, Envoy's `http.url` tag. */
  url: string;
  /** `x-request-id`, Envoy's `guid:x-request-id` tag. */
  requestId?: string;
  /** Downstream address (server span) or upstream address (client span). */
  peerAddress?: string;
  /** Operation name; Istio's default route decorator is `<host>:<port>/*`. */
  operation?: string;
  protocol?: string;
  userAgent?: string;
  /** Upstream cluster, when already chosen. */
  upstreamCluster?: string;
}

export interface SpanResult {
  status: number;
  /** Envoy response flags, '-' when none. */
  flags?: string;
  upstreamCluster?: string;
  requestBytes?: number;
  responseBytes?: number;
  /** Epoch ms; defaults to the clock. */
  endTime?: number;
  tags?: Record<string, string>;
}

export type SpanParent = ProxySpan | TraceContext | { headers: HeaderBag } | undefined;

/** One proxy span. Cheap to create when not sampled: nothing is exported then. */
export class ProxySpan {
  readonly tags: Record<string, string> = {};
  endTime: number | undefined;

  constructor(
    private readonly tracer: Tracer,
    readonly kind: 'server' | 'client',
    readonly name: string,
    readonly traceId: string,
    readonly spanId: string,
    readonly parentSpanId: string | undefined,
    readonly sampled: boolean,
    readonly startTime: number,
    readonly traceState?: string,
    readonly debug?: boolean,
  ) {}

  setTag(key: string, value: string | number | boolean): this {
    this.tags[key] = String(value);
    return this;
  }

  /** The context a child (or the next hop) parents to: this span's id. */
  context(): TraceContext {
    const ctx: TraceContext = { traceId: this.traceId, spanId: this.spanId, sampled: this.sampled };
    if (this.parentSpanId) ctx.parentSpanId = this.parentSpanId;
    if (this.traceState) ctx.traceState = this.traceState;
    if (this.debug) ctx.debug = true;
    return ctx;
  }

  /** B3 + W3C headers that make the next hop a child of this span. */
  headers(): Record<string, string> {
    return injectTraceContext(this.context());
  }

  /** Ends the span once; later calls do nothing. Never throws. */
  finish(result: SpanResult): void {
    if (this.endTime !== undefined) return;
    this.endTime = result.endTime ?? this.tracer.clock.now();
    this.tags['http.status_code'] = String(result.status);
    this.tags['response_flags'] = result.flags || '-';
    const cluster = result.upstreamCluster ?? this.tags['upstream_cluster'];
    if (cluster) {
      this.tags['upstream_cluster'] = cluster;
      this.tags['upstream_cluster.name'] = cluster;
    }
    if (result.requestBytes !== undefined) this.tags['request_size'] = String(result.requestBytes);
    if (result.responseBytes !== undefined) this.tags['response_size'] = String(result.responseBytes);
    // Envoy tags a span `error=true` on 5xx, on no response, and on a proxy-made failure.
    if (result.status >= 500 || result.status === 0) this.tags['error'] = 'true';
    if (result.tags) Object.assign(this.tags, result.tags);
    this.tracer.onEnd(this);
  }
}

// === export pipeline ===

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

function createExporter(spec: CollectorSpec, serviceName: string, timeoutMillis: number): SpanExporter {
  if (spec.kind === 'zipkin') return new ZipkinExporter({ url: spec.url, serviceName });
  return new OTLPTraceExporter({ url: spec.url, timeoutMillis });
}

// === tracer ===

/** One proxy's tracer: sampling, span creation, export. */
export class Tracer {
  readonly clock: Clock;
  readonly stats: TracerStats = { started: 0, sampled: 0, exported: 0, dropped: 0 };
  private readonly random: Random;
  private readonly percentage: number | undefined;
  private readonly pipelines: Pipeline[];
  private readonly resource: Resource;
  private readonly baseTags: Record<string, string>;
  private readonly idBytes: (n: number) => Buffer;
  private closed = false;

  constructor(options: TracerOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    const p = options.randomSamplingPercentage;
    this.percentage = p === undefined ? undefined : Math.min(100, Math.max(0, p));
    this.idBytes = options.idBytes ?? randomBytes;
    const md = peerMetadataFromNode(options.node);
    const serviceName = options.serviceName ?? `${md.canonicalService}.${options.node.namespace}`;
    this.resource = resourceFromAttributes({ 'service.name': serviceName });
    // Istio's custom tags on every proxy span (pilot's tracing config: istio.* plus node_id, component).
    this.baseTags = {
      component: 'proxy',
      node_id: options.node.id,
      'istio.canonical_service': md.canonicalService ?? 'unknown',
      'istio.canonical_revision': md.canonicalRevision ?? 'latest',
      'istio.namespace': options.node.namespace,
      'istio.mesh_id': options.meshId ?? 'cluster.local',
    };
    const maxQueueSize = options.maxQueueSize ?? 2048;
    const timeout = options.exportTimeoutMillis ?? 10_000;
    this.pipelines = (options.collectors ?? []).map(
      (c) =>
        new Pipeline(createExporter(c, serviceName, timeout), this.stats, maxQueueSize, timeout, {
          maxExportBatchSize: options.maxExportBatchSize ?? 512,
          scheduledDelayMillis: options.scheduledDelayMillis ?? 5000,
        }),
    );
  }

  /** Keeps an incoming decision, else draws against the configured percentage. */
  decide(incoming: boolean | undefined): boolean {
    if (incoming !== undefined) return incoming;
    if (this.percentage === undefined || this.percentage <= 0) return false;
    if (this.percentage >= 100) return true;
    return this.random.next() * 100 < this.percentage;
  }

  /**
   * Starts the SERVER span for a request arriving at this proxy (inbound sidecar or gateway)
   * from its headers. `headers` in the result go on the request forwarded to the app (or to
   * the gateway's client span as parent): they name this span as the parent.
   */
  startServerSpan(headers: HeaderBag, req: SpanRequest): { span: ProxySpan; headers: Record<string, string> } {
    const extracted = extractTraceContext(headers);
    let parent: TraceContext | undefined;
    let incoming: boolean | undefined;
    if (extracted && 'context' in extracted) {
      parent = extracted.context;
      incoming = parent.sampled;
    } else if (extracted) incoming = extracted.decision;
    const span = this.newSpan('server', req, parent, incoming);
    return { span, headers: span.headers() };
  }

  /**
   * Starts the CLIENT span for an upstream request. `parent` is the server span (gateway), a
   * context, or `{ headers }` of the request the app sent (outbound sidecar). The returned
   * headers go on the upstream request.
   */
  startClientSpan(parent: SpanParent, req: SpanRequest): { span: ProxySpan; headers: Record<string, string> } {
    let ctx: TraceContext | undefined;
    let incoming: boolean | undefined;
    if (parent instanceof ProxySpan) {
      ctx = parent.context();
      incoming = parent.sampled;
    } else if (parent && 'headers' in parent) {
      const extracted = extractTraceContext(parent.headers);
      if (extracted && 'context' in extracted) {
        ctx = extracted.context;
        incoming = ctx.sampled;
      } else if (extracted) incoming = extracted.decision;
    } else if (parent) {
      ctx = parent;
      incoming = parent.sampled;
    }
    const span = this.newSpan('client', req, ctx, incoming);
    if (req.upstreamCluster) span.setTag('upstream_cluster', req.upstreamCluster);
    return { span, headers: span.headers() };
  }

  private newSpan(kind: 'server' | 'client', req: SpanRequest, parent: TraceContext | undefined, incoming: boolean | undefined): ProxySpan {
    this.stats.started++;
    const sampled = parent?.debug ? true : this.decide(incoming);
    if (sampled) this.stats.sampled++;
    const traceId = parent?.traceId ?? this.newId(16, 32);
    const span = new ProxySpan(
      this,
      kind,
      req.operation ?? defaultOperation(req.url),
      traceId,
      this.newId(8, 16),
      parent?.spanId,
      sampled,
      this.clock.now(),
      parent?.traceState,
      parent?.debug,
    );
    Object.assign(span.tags, this.baseTags);
    span.tags['http.url'] = req.url;
    span.tags['http.method'] = req.method;
    if (req.protocol) span.tags['http.protocol'] = req.protocol;
    if (req.requestId) span.tags['guid:x-request-id'] = req.requestId;
    if (req.peerAddress) span.tags['peer.address'] = req.peerAddress;
    if (req.userAgent) span.tags['user_agent'] = req.userAgent;
    return span;
  }

  private newId(bytes: number, hexLen: number): string {
    for (;;) {
      const id = this.idBytes(bytes).toString('hex').slice(0, hexLen).padStart(hexLen, '0');
      if (!/^0+$/.test(id)) return id; // all-zero ids are invalid in both B3 and W3C
    }
  }

  /** @internal Called by ProxySpan.finish. */
  onEnd(span: ProxySpan): void {
    if (!span.sampled || this.pipelines.length === 0) return;
    if (this.closed) {
      // A request that outlived a config change ends on the retired tracer: counted, not exported.
      this.stats.dropped += this.pipelines.length;
      return;
    }
    try {
      const readable = toReadableSpan(span, this.resource);
      for (const p of this.pipelines) p.offer(readable);
    } catch {
      // Export is best effort; a span that cannot be converted is dropped, the request goes on.
      this.stats.dropped += this.pipelines.length;
    }
  }

  /** Exports everything queued now (tests, and before shutdown). Never rejects. */
  async flush(): Promise<void> {
    await Promise.all(this.pipelines.map((p) => p.drain()));
  }

  /** Flushes and stops the exporters. Never rejects. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await Promise.all(this.pipelines.map((p) => p.processor.shutdown().catch(() => undefined)));
  }
}

/** `http://reviews:9080/x?y` -> `reviews:9080/*`, Istio's default decorator shape. */
function defaultOperation(url: string): string {
  const m = /^[a-z]+:\/\/([^/?#]+)/i.exec(url);
  return m ? `${m[1]}/*` : url;
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
