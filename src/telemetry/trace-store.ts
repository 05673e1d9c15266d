/**
 * The control plane's span collector: OTLP/HTTP JSON (`POST /v1/traces`) and Zipkin v2 JSON
 * (`POST /api/v2/spans`) receivers as plain `node:http` request handlers, and a bounded
 * in-memory store of recent traces with the queries the CLI and dashboard need (Jaeger's
 * query model: service, operation, tags, min duration, time range, limit).
 *
 * Times in the store and its JSON are microseconds since the epoch (`startTime`) and
 * microseconds (`duration`), the unit of both Zipkin v2 and Jaeger's query API.
 * Memory is bounded by `maxTraces` and `maxSpans`; the least recently updated trace goes first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ClientGoneError, HttpBodyError, drainAfterRefusal, readJson } from '../core/http-body.js';

export interface StoredSpan {
  spanId: string;
  parentSpanId?: string;
  service: string;
  name: string;
  /** Epoch microseconds. */
  startTime: number;
  /** Microseconds. */
  duration: number;
  tags: Record<string, string>;
  kind?: string;
}

export interface StoredTrace {
  traceId: string;
  spans: StoredSpan[];
}

export interface TraceQuery {
  service?: string;
  operation?: string;
  /** Every tag must match exactly on one span (the span that also matches service/operation). */
  tags?: Record<string, string>;
  /** Microseconds. */
  minDuration?: number;
  /** Epoch microseconds: the trace's first span must start in [start, end]. */
  start?: number;
  end?: number;
  /** Default 20, newest first. */
  limit?: number;
}

export interface TraceStoreOptions {
  maxTraces?: number;
  maxSpans?: number;
  /** Request bodies larger than this get 413 (default 4 MiB). */
  maxBodyBytes?: number;
}

export interface TraceStoreStats {
  received: number;
  /** Spans refused: malformed, duplicate or over a trace's span bound. */
  rejected: number;
  evictedTraces: number;
}

const HEX = /^[0-9a-f]+$/;

function normId(id: unknown, len: number): string | undefined {
  if (typeof id !== 'string') return undefined;
  const v = id.toLowerCase();
  if (!HEX.test(v) || v.length > len || v.length === 0) return undefined;
  const padded = v.padStart(len, '0');
  return /^0+$/.test(padded) ? undefined : padded;
}

export class TraceStore {
  readonly maxTraces: number;
  readonly maxSpans: number;
  readonly maxBodyBytes: number;
  readonly stats: TraceStoreStats = { received: 0, rejected: 0, evictedTraces: 0 };
  /** Insertion order = update order (a trace is re-inserted when it grows). */
  private readonly traces = new Map<string, StoredSpan[]>();
  private spanCount = 0;

  constructor(options: TraceStoreOptions = {}) {
    this.maxTraces = Math.max(1, options.maxTraces ?? 1000);
    this.maxSpans = Math.max(1, options.maxSpans ?? 50_000);
    this.maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
  }

  get size(): { traces: number; spans: number } {
    return { traces: this.traces.size, spans: this.spanCount };
  }

  /** Adds one span; returns false when it is malformed or a duplicate. */
  add(traceIdRaw: string, span: StoredSpan): boolean {
    const traceId = normId(traceIdRaw, 32);
    const spanId = normId(span.spanId, 16);
    if (!traceId || !spanId || !Number.isFinite(span.startTime) || !Number.isFinite(span.duration)) {
      this.stats.rejected++;
      return false;
    }
    const clean: StoredSpan = { ...span, spanId, duration: Math.max(0, span.duration) };
    const parent = span.parentSpanId ? normId(span.parentSpanId, 16) : undefined;
    if (parent) clean.parentSpanId = parent;
    else delete clean.parentSpanId;
    let spans = this.traces.get(traceId);
    if (spans) {
      // Zipkin's shared spans (client and server halves with one id) are kept once each per kind.
      if (spans.some((s) => s.spanId === spanId && s.kind === clean.kind) || spans.length >= this.maxSpans) {
        this.stats.rejected++;
        return false;
      }
      this.traces.delete(traceId);
    } else spans = [];
    spans.push(clean);
    this.traces.set(traceId, spans);
    this.spanCount++;
    this.stats.received++;
    this.evict(traceId);
    return true;
  }

  private evict(keep: string): void {
    for (const [id, spans] of this.traces) {
      if (this.traces.size <= this.maxTraces && this.spanCount <= this.maxSpans) break;
      if (id === keep) continue;
      this.traces.delete(id);
      this.spanCount -= spans.length;
      this.stats.evictedTraces++;
    }
  }

  /** One trace by id (16 or 32 hex), spans ordered by start time. */
  get(traceId: string): StoredTrace | undefined {
    const id = normId(traceId, 32);
    const spans = id ? this.traces.get(id) : undefined;
    return id && spans ? { traceId: id, spans: [...spans].sort((a, b) => a.startTime - b.startTime) } : undefined;
  }

  /** Traces with a span matching every given criterion, newest first. */
  query(q: TraceQuery = {}): StoredTrace[] {
    const limit = Math.max(0, q.limit ?? 20);
    const out: StoredTrace[] = [];
    const tagEntries = Object.entries(q.tags ?? {});
    const service = q.service?.toLowerCase();
    const candidates = [...this.traces.entries()].map(([traceId, spans]) => ({ traceId, spans, start: Math.min(...spans.map((s) => s.startTime)) }));
    candidates.sort((a, b) => b.start - a.start);
    for (const c of candidates) {
      if (out.length >= limit) break;
      if (q.start !== undefined && c.start < q.start) continue;
      if (q.end !== undefined && c.start > q.end) continue;
      const hit = c.spans.some(
        (s) =>
          (service === undefined || serviceMatches(s.service, service)) &&
          (q.operation === undefined || s.name === q.operation) &&
          (q.minDuration === undefined || s.duration >= q.minDuration) &&
          tagEntries.every(([k, v]) => s.tags[k] === v),
      );
      if (hit) out.push({ traceId: c.traceId, spans: [...c.spans].sort((a, b) => a.startTime - b.startTime) });
    }
    return out;
  }

  /** The services that reported a span and that `asked` names (see `serviceMatches`), sorted. */
  servicesNamed(asked: string): string[] {
    return this.services().filter((s) => serviceMatches(s, asked.toLowerCase()));
  }

  /** Every service that reported a span, sorted. */
  services(): string[] {
    const set = new Set<string>();
    for (const spans of this.traces.values()) for (const s of spans) set.add(s.service);
    return [...set].sort();
  }

  // === ingestion ===

  /** Adds the spans of an OTLP/JSON `ExportTraceServiceRequest`; returns how many were accepted. */
  ingestOtlp(body: unknown): { accepted: number; rejected: number } {
    let accepted = 0;
    let rejected = 0;
    const resourceSpans = (body as { resourceSpans?: unknown })?.resourceSpans;
    if (!Array.isArray(resourceSpans)) return { accepted, rejected };
    for (const rs of resourceSpans) {
      const resAttrs = otlpAttributes((rs as { resource?: { attributes?: unknown } })?.resource?.attributes);
      const service = resAttrs['service.name'] ?? 'unknown';
      const scopes = (rs as { scopeSpans?: unknown; instrumentationLibrarySpans?: unknown })?.scopeSpans ?? (rs as { instrumentationLibrarySpans?: unknown })?.instrumentationLibrarySpans;
      if (!Array.isArray(scopes)) continue;
      for (const ss of scopes) {
        const spans = (ss as { spans?: unknown })?.spans;
        if (!Array.isArray(spans)) continue;
        for (const raw of spans) {
          const s = raw as Record<string, unknown>;
          const start = nanosToMicros(s.startTimeUnixNano);
          const end = nanosToMicros(s.endTimeUnixNano);
          const tags = otlpAttributes(s.attributes);
          const status = s.status as { code?: unknown; message?: unknown } | undefined;
          const code = typeof status?.code === 'number' ? status.code : typeof status?.code === 'string' ? status.code : undefined;
          if (code === 2 || code === 'STATUS_CODE_ERROR') tags['otel.status_code'] = 'ERROR';
          if (typeof status?.message === 'string' && status.message) tags['otel.status_description'] = status.message;
          const span: StoredSpan = {
            spanId: String(s.spanId ?? ''),
            parentSpanId: typeof s.parentSpanId === 'string' && s.parentSpanId ? s.parentSpanId : undefined,
            service,
            name: typeof s.name === 'string' ? s.name : '',
            startTime: start ?? NaN,
            duration: start !== undefined && end !== undefined ? end - start : NaN,
            tags,
            kind: otlpKind(s.kind),
          };
          if (this.add(String(s.traceId ?? ''), span)) accepted++;
          else rejected++;
        }
      }
    }
    return { accepted, rejected };
  }

  /** Adds Zipkin v2 JSON spans (`[{traceId, id, parentId, name, timestamp, duration, ...}]`). */
  ingestZipkin(body: unknown): { accepted: number; rejected: number } {
    let accepted = 0;
    let rejected = 0;
    if (!Array.isArray(body)) return { accepted, rejected };
    for (const raw of body) {
      const s = (raw ?? {}) as Record<string, unknown>;
      const tags: Record<string, string> = {};
      if (s.tags && typeof s.tags === 'object') for (const [k, v] of Object.entries(s.tags as object)) tags[k] = String(v);
      const remote = s.remoteEndpoint as { ipv4?: string; ipv6?: string; port?: number } | undefined;
      if (remote && (remote.ipv4 || remote.ipv6) && !tags['peer.address']) tags['peer.address'] = `${remote.ipv4 ?? remote.ipv6}${remote.port ? ':' + remote.port : ''}`;
      const span: StoredSpan = {
        spanId: String(s.id ?? ''),
        parentSpanId: typeof s.parentId === 'string' ? s.parentId : undefined,
        service: String((s.localEndpoint as { serviceName?: unknown } | undefined)?.serviceName ?? 'unknown'),
        name: typeof s.name === 'string' ? s.name : '',
        startTime: typeof s.timestamp === 'number' ? s.timestamp : NaN,
        duration: typeof s.duration === 'number' ? s.duration : 0,
        tags,
        kind: typeof s.kind === 'string' ? s.kind.toLowerCase() : undefined,
      };
      if (this.add(String(s.traceId ?? ''), span)) accepted++;
      else rejected++;
    }
    return { accepted, rejected };
  }

  /** `POST /v1/traces` handler (OTLP/HTTP with JSON encoding). Protobuf bodies get 415. */
  handleOtlp = (req: IncomingMessage, res: ServerResponse): void => {
    if (!isJson(req)) return reply(res, 415, { error: 'only application/json OTLP is accepted' });
    this.readJson(req, res, (body) => {
      const r = this.ingestOtlp(body);
      // OTLP/HTTP: a full success is an empty ExportTraceServiceResponse; rejects go in partialSuccess.
      reply(res, 200, r.rejected ? { partialSuccess: { rejectedSpans: r.rejected, errorMessage: 'malformed or duplicate spans' } } : {});
    });
  };

  /** `POST /api/v2/spans` handler (Zipkin v2 JSON). Zipkin answers 202 Accepted. */
  handleZipkin = (req: IncomingMessage, res: ServerResponse): void => {
    if (!isJson(req)) return reply(res, 415, { error: 'only application/json Zipkin v2 spans are accepted' });
    this.readJson(req, res, (body) => {
      if (!Array.isArray(body)) return reply(res, 400, { error: 'expected a JSON array of spans' });
      this.ingestZipkin(body);
      res.statusCode = 202;
      res.end();
    });
  };

  /**
   * Reads a JSON body within `maxBodyBytes`, as strict UTF-8 (core/http-body.ts): 413 over
   * the limit (before `100 Continue` when the size is declared), 400 with the byte offset of
   * invalid UTF-8 or with what is wrong with the JSON.
   */
  private readJson(req: IncomingMessage, res: ServerResponse, then: (body: unknown) => void): void {
    readJson(req, res, { maxBytes: this.maxBodyBytes }).then(then, (err: unknown) => {
      if (err instanceof ClientGoneError) return;
      if (err instanceof HttpBodyError) {
        reply(res, err.status, { error: err.message, ...err.detail });
        drainAfterRefusal(req);
        return;
      }
      reply(res, 500, { error: `internal error: ${(err as Error).message}` });
    });
  }
}

/**
 * Whether a span's service (a proxy reports `<canonical service>.<namespace>`, as Istio's
 * proxies do) is the one a user asked for: the name as stored; a short name without the
 * namespace (`reviews` for `reviews.default`, as istioctl and Jaeger users type it), which
 * matches it in every namespace; or the Kubernetes host name (`reviews.default.svc.cluster.local`).
 * `asked` is lower case.
 */
export function serviceMatches(service: string, asked: string): boolean {
  const stored = service.toLowerCase();
  if (stored === asked) return true;
  if (!asked.includes('.')) return stored.startsWith(asked + '.') && !stored.slice(asked.length + 1).includes('.');
  const svc = asked.indexOf('.svc.');
  return svc > 0 && stored === asked.slice(0, svc);
}

function isJson(req: IncomingMessage): boolean {
  return /^application\/json\b/i.test(String(req.headers['content-type'] ?? ''));
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

function nanosToMicros(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.floor(v / 1000);
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) return Number(BigInt(v) / 1000n);
  return undefined;
}

function otlpKind(k: unknown): string | undefined {
  const names = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
  if (typeof k === 'number') return names[k];
  if (typeof k === 'string') return k.replace(/^SPAN_KIND_/, '').toLowerCase();
  return undefined;
}

/** OTLP's `[{key, value: {stringValue|intValue|boolValue|doubleValue|...}}]` as strings. */
function otlpAttributes(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(list)) return out;
  for (const a of list) {
    const key = (a as { key?: unknown })?.key;
    const value = (a as { value?: Record<string, unknown> })?.value;
    if (typeof key !== 'string' || !value || typeof value !== 'object') continue;
    const v = value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue;
    if (v !== undefined && v !== null) out[key] = String(v);
    else if (value.arrayValue) out[key] = JSON.stringify(value.arrayValue);
  }
  return out;
}

// === query strings ===

/** `250us`, `5ms`, `1.5s`, `2m` or a bare number of microseconds -> microseconds; undefined if invalid. */
export function parseDurationMicros(v: string | null | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d+(?:\.\d+)?)(us|µs|ms|s|m)?$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 'us';
  return Math.round(n * (unit === 'ms' ? 1e3 : unit === 's' ? 1e6 : unit === 'm' ? 6e7 : 1));
}

/**
 * Builds a TraceQuery from URL parameters, Jaeger-style: `service`, `operation`,
 * `tags` (`k:v` pairs, repeatable, or a JSON object), `minDuration` (`5ms`), `start` / `end`
 * (epoch microseconds), `limit`. Unknown or malformed values are ignored, not thrown.
 */
export function traceQueryFromParams(params: URLSearchParams): TraceQuery {
  const q: TraceQuery = {};
  const service = params.get('service');
  if (service) q.service = service;
  const operation = params.get('operation');
  if (operation) q.operation = operation;
  const tags: Record<string, string> = {};
  for (const t of params.getAll('tags').concat(params.getAll('tag'))) {
    if (t.startsWith('{')) {
      try {
        for (const [k, v] of Object.entries(JSON.parse(t) as Record<string, unknown>)) tags[k] = String(v);
      } catch {
        // ignored: a malformed filter filters nothing
      }
      continue;
    }
    const i = t.indexOf(':');
    if (i > 0) tags[t.slice(0, i)] = t.slice(i + 1);
  }
  if (Object.keys(tags).length) q.tags = tags;
  const min = parseDurationMicros(params.get('minDuration'));
  if (min !== undefined) q.minDuration = min;
  for (const key of ['start', 'end', 'limit'] as const) {
    const v = params.get(key);
    if (v && /^\d+$/.test(v)) q[key] = Number(v);
  }
  return q;
}

// === timeline ===

/**
 * An indented text timeline for `sinew trace <id>`: one line per span, children under their
 * parent, with service, operation, offset from the trace start, duration and status.
 */
export function renderTraceTimeline(trace: StoredTrace): string {
  if (trace.spans.length === 0) return `trace ${trace.traceId}: no spans\n`;
  const t0 = Math.min(...trace.spans.map((s) => s.startTime));
  const tEnd = Math.max(...trace.spans.map((s) => s.startTime + s.duration));
  const ids = new Set(trace.spans.map((s) => s.spanId));
  const children = new Map<string, StoredSpan[]>();
  const roots: StoredSpan[] = [];
  for (const s of trace.spans) {
    // A span whose parent never arrived is shown at the top level rather than lost.
    if (s.parentSpanId && ids.has(s.parentSpanId) && s.parentSpanId !== s.spanId) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const rows: [string, string, string, string, string][] = [];
  const seen = new Set<StoredSpan>();
  const walk = (s: StoredSpan, depth: number) => {
    if (seen.has(s)) return;
    seen.add(s);
    rows.push(['  '.repeat(depth) + s.service, s.name, '+' + ms(s.startTime - t0), ms(s.duration), spanStatus(s)]);
    for (const c of (children.get(s.spanId) ?? []).sort((a, b) => a.startTime - b.startTime)) walk(c, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.startTime - b.startTime)) walk(r, 0);
  const header: [string, string, string, string, string] = ['SERVICE', 'OPERATION', 'OFFSET', 'DURATION', 'STATUS'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [`trace ${trace.traceId}  ${trace.spans.length} span${trace.spans.length === 1 ? '' : 's'}  ${ms(tEnd - t0)}`, ...all.map(fmt)].join('\n') + '\n';
}

function ms(micros: number): string {
  return `${(micros / 1000).toFixed(2)}ms`;
}

/** The HTTP status with the response flags when set; `ERROR` for an errored span without one. */
function spanStatus(s: StoredSpan): string {
  const code = s.tags['http.status_code'] ?? s.tags['http.response.status_code'];
  const flags = s.tags['response_flags'];
  const parts: string[] = [];
  if (code) parts.push(code);
  if (flags && flags !== '-') parts.push(flags);
  if (!parts.length) parts.push(s.tags['error'] === 'true' || s.tags['otel.status_code'] === 'ERROR' ? 'ERROR' : 'OK');
  return parts.join(' ');
}
