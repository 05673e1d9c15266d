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
 * OpenTelemetry context machinery off the request path. That part lives in ./span-export.ts and
 * is loaded only when a collector is configured.
 *
 * A collector that is slow or down never blocks or throws into a request: the queue is bounded
 * (a full queue drops the span), export runs off the request path, and every span that did not
 * reach a collector is counted in `stats.dropped`.
 */
import type { ProxyNode } from '../api/proxy-config.js';
import { systemClock, type Clock } from '../core/clock.js';
import { systemRandom, type Random } from '../core/random.js';
import { RandomHex } from '../core/random-hex.js';
import { peerMetadataFromNode } from './peer-metadata.js';
import { extractTraceContext, injectTraceContext, traceContextLines, type HeaderBag, type TraceContext } from './propagation.js';
import type { ProxyCredential, SpanExport } from './span-export.js';

export interface CollectorSpec {
  kind: 'otlp-http' | 'zipkin';
  /** Full URL: `http://host:4318/v1/traces` (OTLP) or `http://host:9411/api/v2/spans` (Zipkin). */
  url: string;
  /** Extra request headers on every export. */
  headers?: Record<string, string>;
  /** Per export (default: the tracer's exportTimeoutMillis). */
  timeoutMs?: number;
  /** The control plane's own collector: the proxy's credential goes with every export to it (and to no other). */
  presentCredential?: boolean;
}

export interface TracerOptions {
  node: ProxyNode;
  /** 0..100; undefined = never start a sampled trace of our own (keep incoming decisions only). */
  randomSamplingPercentage?: number;
  collectors?: CollectorSpec[];
  /**
   * The proxy's push credential, sent as a bearer token to the collectors marked
   * `presentCredential` (the control plane's collector asks for it).
   */
  credential?: ProxyCredential;
  meshId?: string;
  clock?: Clock;
  random?: Random;
  /** Bounded queue per collector (the SDK's default is 2048). */
  maxQueueSize?: number;
  maxExportBatchSize?: number;
  /**
   * How long spans wait to be batched; default 500 ms. The SDK's default, 5000 ms (Envoy
   * flushes its tracers every 5 s too), made a new trace show in `sinew traces` only seconds
   * after its request, its spans arriving from each proxy at a different moment. A full batch
   * (`maxExportBatchSize`) goes at once whatever the delay, so under load nothing changes.
   */
  scheduledDelayMillis?: number;
  /** Per export attempt, retries included. */
  exportTimeoutMillis?: number;
  /** Overrides the `service.name` resource (Istio's default is `<canonical service>.<namespace>`). */
  serviceName?: string;
  /**
   * Random bytes for span and trace ids; crypto-random by default. Tests may inject a
   * deterministic one. It is asked for 32 KiB at a time (core/random-hex.ts).
   */
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

/**
 * What describes a request lazily: the proxy's stream and router implement it, so that the
 * 99 of 100 requests whose span is not sampled build no URL, tag values or request object.
 */
export interface SpanRequestSource {
  spanRequest(): SpanRequest;
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

/** The tags of every unsampled span: it records none (see `setTag`). */
const NO_TAGS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** One proxy span. Cheap to create when not sampled: nothing is exported then. */
export class ProxySpan {
  readonly tags: Record<string, string>;
  endTime: number | undefined = undefined;

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
    /** The trace arrived in the single `b3` header, so the next hop gets one too (see `traceContextLines`). */
    readonly b3Single = false,
  ) {
    this.tags = sampled ? {} : NO_TAGS;
  }

  setTag(key: string, value: string | number | boolean): this {
    // Tags only matter for export: an unsampled span (99 of 100 by default) records none.
    if (this.sampled) this.tags[key] = String(value);
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
    return injectTraceContext(this, {}, this.b3Single);
  }

  /**
   * The same headers as ready-to-send field lines (`traceContextLines`), for the request going
   * on: the proxy hands them to the upstream client as they are.
   */
  headerLines(): string {
    return traceContextLines(this, this.b3Single);
  }

  /** Ends the span without a result: enough for an unsampled span, which exports nothing. */
  end(): void {
    if (this.endTime === undefined) this.endTime = this.tracer.clock.now();
  }

  /** Ends the span once; later calls do nothing. Never throws. */
  finish(result: SpanResult): void {
    if (this.endTime !== undefined) return;
    this.endTime = result.endTime ?? this.tracer.clock.now();
    if (!this.sampled) return;
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

// === tracer ===

/** See `TracerOptions.scheduledDelayMillis`. */
export const DEFAULT_BATCH_DELAY_MS = 500;

const ZERO_IDS: Readonly<Record<number, string>> = { 8: '0'.repeat(16), 16: '0'.repeat(32) };

/** One proxy's tracer: sampling, span creation, export. */
export class Tracer {
  readonly clock: Clock;
  readonly stats: TracerStats = { started: 0, sampled: 0, exported: 0, dropped: 0 };
  private readonly random: Random;
  private readonly percentage: number | undefined;
  /** Collectors configured (0 = spans are only propagated, never exported). */
  private readonly collectorCount: number;
  /** The exporters, once their module has loaded. */
  private export: SpanExport | undefined;
  private readonly exportReady: Promise<void> | undefined;
  /** Sampled spans that ended while the exporters were loading (bounded like the queue). */
  private early: ProxySpan[] = [];
  private readonly maxQueueSize: number;
  private readonly baseTags: Record<string, string>;
  /** Span and trace ids, cut from a pool of random hex (hex-encoding small buffers per span showed in the profile). */
  private readonly ids: RandomHex;
  private closed = false;

  constructor(options: TracerOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    const p = options.randomSamplingPercentage;
    this.percentage = p === undefined ? undefined : Math.min(100, Math.max(0, p));
    this.ids = new RandomHex(options.idBytes);
    const md = peerMetadataFromNode(options.node);
    const serviceName = options.serviceName ?? `${md.canonicalService}.${options.node.namespace}`;
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
    this.maxQueueSize = maxQueueSize;
    const collectors = options.collectors ?? [];
    this.collectorCount = collectors.length;
    if (collectors.length > 0) {
      const pipelineOptions = {
        maxQueueSize,
        timeoutMs: options.exportTimeoutMillis ?? 10_000,
        maxExportBatchSize: options.maxExportBatchSize ?? 512,
        scheduledDelayMillis: options.scheduledDelayMillis ?? DEFAULT_BATCH_DELAY_MS,
      };
      this.exportReady = import('./span-export.js').then(
        ({ createSpanExport }) => {
          const exp = createSpanExport(collectors, serviceName, this.stats, { ...pipelineOptions, credential: options.credential });
          this.export = exp;
          const early = this.early;
          this.early = [];
          for (const span of early) exp.offer(span);
        },
        () => {
          this.stats.dropped += this.early.length * this.collectorCount;
          this.early = [];
        },
      );
    }
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
   * from its headers. The span's `headerLines()` / `headers()` give what goes on the request
   * forwarded to the app: headers that name this span as the parent.
   */
  startServerSpan(headers: HeaderBag, req: SpanRequest | SpanRequestSource): ProxySpan {
    const extracted = extractTraceContext(headers);
    let parent: TraceContext | undefined;
    let incoming: boolean | undefined;
    if (extracted && 'context' in extracted) {
      parent = extracted.context;
      incoming = parent.sampled;
    } else if (extracted) incoming = extracted.decision;
    return this.newSpan('server', req, parent, incoming, extracted?.format === 'b3-single');
  }

  /**
   * Starts the CLIENT span for an upstream request. `parent` is the server span (gateway), a
   * context, or `{ headers }` of the request the app sent (outbound sidecar). The span's
   * `headerLines()` are the upstream request's trace headers. `startTime` (epoch ms, default
   * now) lets the span begin where the request did, when work came before the upstream call.
   */
  startClientSpan(parent: SpanParent, req: SpanRequest | SpanRequestSource, startTime?: number): ProxySpan {
    let ctx: TraceContext | undefined;
    let incoming: boolean | undefined;
    let b3Single = false;
    if (parent instanceof ProxySpan) {
      ctx = parent.context();
      incoming = parent.sampled;
      b3Single = parent.b3Single;
    } else if (parent && 'headers' in parent) {
      const extracted = extractTraceContext(parent.headers);
      if (extracted && 'context' in extracted) {
        ctx = extracted.context;
        incoming = ctx.sampled;
      } else if (extracted) incoming = extracted.decision;
      b3Single = extracted?.format === 'b3-single';
    } else if (parent) {
      ctx = parent;
      incoming = parent.sampled;
    }
    return this.newSpan('client', req, ctx, incoming, b3Single, startTime);
  }

  private newSpan(kind: 'server' | 'client', source: SpanRequest | SpanRequestSource, parent: TraceContext | undefined, incoming: boolean | undefined, b3Single: boolean, startTime?: number): ProxySpan {
    this.stats.started++;
    const sampled = parent?.debug ? true : this.decide(incoming);
    const traceId = parent?.traceId ?? this.newId(16);
    // Only exported spans need a name and tags; an unsampled one just carries ids onward.
    const req = sampled ? ('spanRequest' in source ? source.spanRequest() : source) : undefined;
    const name = req ? (req.operation ?? defaultOperation(req.url)) : '';
    const span = new ProxySpan(this, kind, name, traceId, this.newId(8), parent?.spanId, sampled, startTime ?? this.clock.now(), parent?.traceState, parent?.debug, b3Single);
    if (req === undefined) return span;
    this.stats.sampled++;
    const tags = span.tags;
    Object.assign(tags, this.baseTags);
    tags['http.url'] = req.url;
    tags['http.method'] = req.method;
    if (req.protocol) tags['http.protocol'] = req.protocol;
    if (req.requestId) tags['guid:x-request-id'] = req.requestId;
    if (req.peerAddress) tags['peer.address'] = req.peerAddress;
    if (req.userAgent) tags['user_agent'] = req.userAgent;
    if (kind === 'client' && req.upstreamCluster) tags['upstream_cluster'] = req.upstreamCluster;
    return span;
  }

  /** A random id of `bytes` bytes as lower-case hex; never all zeros (invalid in B3 and W3C). */
  private newId(bytes: number): string {
    for (;;) {
      const id = this.ids.take(bytes * 2);
      if (id !== ZERO_IDS[bytes]) return id;
    }
  }

  /** @internal Called by ProxySpan.finish. */
  onEnd(span: ProxySpan): void {
    if (!span.sampled || this.collectorCount === 0) return;
    if (this.closed) {
      // A request that outlived a config change ends on the retired tracer: counted, not exported.
      this.stats.dropped += this.collectorCount;
      return;
    }
    if (this.export) this.export.offer(span);
    else if (this.early.length < this.maxQueueSize) this.early.push(span);
    else this.stats.dropped += this.collectorCount;
  }

  /** Exports everything queued now (tests, and before shutdown). Never rejects. */
  async flush(): Promise<void> {
    await this.exportReady;
    await this.export?.drain();
  }

  /** Flushes and stops the exporters. Never rejects. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.export?.shutdown();
  }
}

/** `http://reviews:9080/x?y` -> `reviews:9080/*`, Istio's default decorator shape. */
function defaultOperation(url: string): string {
  const m = /^[a-z]+:\/\/([^/?#]+)/i.exec(url);
  return m ? `${m[1]}/*` : url;
}
