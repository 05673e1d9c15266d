/**
 * Trace-context propagation: B3 multi-header, B3 single (`b3`) and W3C Trace Context
 * (`traceparent` / `tracestate`), the formats Istio's proxies understand
 * (istio.io "Distributed tracing overview": applications forward x-b3-* or traceparent).
 *
 * Every parser takes untrusted headers and returns `undefined` for anything invalid; nothing
 * here throws. Ids are kept as lower-case hex; 64-bit B3 trace ids are left-padded to 128 bits
 * (what OpenTelemetry's B3 propagator does) so one trace id works in both formats.
 */
import { addFieldLines } from '../core/header-lines.js';

/** What crosses process boundaries about the current trace. */
export interface TraceContext {
  /** 32 lower-case hex characters, not all zero. */
  traceId: string;
  /** 16 lower-case hex characters, not all zero: the caller's span. */
  spanId: string;
  /** B3's `x-b3-parentspanid`: the caller's parent, informational only. */
  parentSpanId?: string;
  /** The caller's decision; `undefined` = deferred (B3 allows leaving it to the receiver). */
  sampled?: boolean;
  /** B3 debug flag (`x-b3-flags: 1` / `b3: ...-d`): implies sampled. */
  debug?: boolean;
  /** W3C tracestate, passed through unchanged when valid. */
  traceState?: string;
}

/** An extracted context, or only a sampling decision (B3 `x-b3-sampled: 0` alone is valid). */
export type Extracted = { context: TraceContext; format: 'w3c' | 'b3-single' | 'b3-multi' } | { decision: boolean; format: 'b3-single' | 'b3-multi' };

export type HeaderBag = Record<string, string | string[] | undefined>;

/** Every header this module reads or writes (the proxy strips them before setting fresh ones). */
export const TRACE_HEADERS = [
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
] as const;

/** Whether any trace-context header is present (most requests that start a trace carry none). */
export function hasTraceHeaders(headers: HeaderBag): boolean {
  for (let i = 0; i < TRACE_HEADERS.length; i++) if (headers[TRACE_HEADERS[i]] !== undefined) return true;
  return false;
}

const HEX16 = /^[0-9a-f]{16}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const ZERO16 = '0000000000000000';
const ZERO32 = ZERO16 + ZERO16;

function one(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  // Repeated trace headers are ambiguous; take the first like Envoy's header map lookups.
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s.trim() : undefined;
}

function traceId(id: string): string | undefined {
  // B3 ids are "encoded as 16 or 32 lower-hex characters" (openzipkin/b3-propagation).
  if (HEX32.test(id)) return id === ZERO32 ? undefined : id;
  if (HEX16.test(id)) return id === ZERO16 ? undefined : ZERO16 + id;
  return undefined;
}

function spanId(id: string): string | undefined {
  return HEX16.test(id) && id !== ZERO16 ? id : undefined;
}

// === W3C Trace Context ===

/**
 * Parses `traceparent` per W3C Trace Context Level 1 §3.2: `version-traceid-parentid-flags`,
 * lower-case hex only, version `ff` forbidden, version `00` exactly 55 characters, a later
 * version at least that long with a `-` after the flags (future fields ignored), all-zero ids invalid.
 */
export function parseTraceparent(value: string | undefined, tracestate?: string): TraceContext | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!/^[0-9a-f]{2}$/.test(version) || version === 'ff') return undefined;
  if (version === '00' ? v.length !== 55 : v.length > 55 && v[55] !== '-') return undefined;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const tid = v.slice(3, 35);
  const sid = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX32.test(tid) || tid === ZERO32 || !HEX16.test(sid) || sid === ZERO16 || !/^[0-9a-f]{2}$/.test(flags)) return undefined;
  const ctx: TraceContext = { traceId: tid, spanId: sid, sampled: (parseInt(flags, 16) & 1) === 1 };
  const state = parseTracestate(tracestate);
  if (state) ctx.traceState = state;
  return ctx;
}

const TS_KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
const TS_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * Validates `tracestate` (W3C §3.3): at most 32 list members `key=value`, keys unique.
 * An invalid tracestate is discarded whole (§3.3.1.1 lets a vendor drop what it cannot parse).
 */
export function parseTracestate(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.length > 512) return undefined;
  const members = value.split(',').map((m) => m.trim()).filter((m) => m.length > 0);
  if (members.length === 0 || members.length > 32) return undefined;
  const keys = new Set<string>();
  for (const m of members) {
    const eq = m.indexOf('=');
    if (eq <= 0) return undefined;
    const k = m.slice(0, eq);
    const val = m.slice(eq + 1);
    if (!TS_KEY.test(k) || !TS_VALUE.test(val) || keys.has(k)) return undefined;
    keys.add(k);
  }
  return members.join(',');
}

export function formatTraceparent(ctx: { traceId: string; spanId: string; sampled?: boolean }): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${ctx.sampled ? '01' : '00'}`;
}

// === B3 ===

function b3Sampled(v: string | undefined): boolean | undefined | null {
  if (v === undefined || v === '') return undefined;
  // '1'/'0' per the spec; 'true'/'false' are what older Zipkin clients sent.
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return null; // invalid
}

/** Parses the multi-header form (`x-b3-traceid`, `x-b3-spanid`, ...). */
export function parseB3Multi(headers: HeaderBag): Extracted | undefined {
  const tid = one(headers, 'x-b3-traceid');
  const sid = one(headers, 'x-b3-spanid');
  const sampled = b3Sampled(one(headers, 'x-b3-sampled')?.toLowerCase());
  if (sampled === null) return undefined;
  const flags = one(headers, 'x-b3-flags');
  const debug = flags === '1';
  if (tid === undefined && sid === undefined) {
    // A decision without ids ("x-b3-sampled: 0" alone) is valid B3: sampling only.
    if (debug) return { decision: true, format: 'b3-multi' };
    return sampled === undefined ? undefined : { decision: sampled, format: 'b3-multi' };
  }
  if (tid === undefined || sid === undefined) return undefined;
  const t = traceId(tid);
  const s = spanId(sid);
  if (!t || !s) return undefined;
  const ctx: TraceContext = { traceId: t, spanId: s };
  const parent = one(headers, 'x-b3-parentspanid');
  if (parent !== undefined && parent !== '') {
    const p = spanId(parent);
    if (!p) return undefined;
    ctx.parentSpanId = p;
  }
  if (debug) {
    ctx.debug = true;
    ctx.sampled = true;
  } else if (sampled !== undefined) ctx.sampled = sampled;
  return { context: ctx, format: 'b3-multi' };
}

/** Parses the single-header form `b3: {traceid}-{spanid}[-{sampled}[-{parentspanid}]]` or `b3: {sampled}`. */
export function parseB3Single(value: string | undefined): Extracted | undefined {
  if (value === undefined || value === '') return undefined;
  const v = value.trim();
  if (v === '0' || v === '1' || v === 'd') return { decision: v !== '0', format: 'b3-single' };
  const parts = v.split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const t = traceId(parts[0]);
  const s = spanId(parts[1]);
  if (!t || !s) return undefined;
  const ctx: TraceContext = { traceId: t, spanId: s };
  if (parts.length >= 3) {
    const flag = parts[2];
    if (flag === 'd') {
      ctx.debug = true;
      ctx.sampled = true;
    } else if (flag === '1' || flag === '0') ctx.sampled = flag === '1';
    else return undefined;
  }
  if (parts.length === 4) {
    const p = spanId(parts[3]);
    if (!p) return undefined;
    ctx.parentSpanId = p;
  }
  return { context: ctx, format: 'b3-single' };
}

/**
 * Extracts the incoming trace context. Precedence: a valid `traceparent` (W3C), then `b3`
 * (the B3 spec says the single header wins over the multi-header form), then `x-b3-*`.
 * An invalid header of one format falls through to the next; none valid -> `undefined`.
 */
export function extractTraceContext(headers: HeaderBag): Extracted | undefined {
  const traceparent = one(headers, 'traceparent');
  const w3c = traceparent === undefined ? undefined : parseTraceparent(traceparent, one(headers, 'tracestate'));
  if (w3c) return { context: w3c, format: 'w3c' };
  const single = parseB3Single(one(headers, 'b3'));
  if (single) return single;
  return parseB3Multi(headers);
}

/**
 * The headers that carry `ctx` to the next hop, as HTTP/1.1 field lines (`name: value\r\n`
 * each, see src/core/header-lines.ts): B3 multi-header, as Envoy's Zipkin tracer sends for
 * Istio, and W3C `traceparent` / `tracestate`, so that applications using either keep
 * propagating. The single `b3` header is added when `b3Single` says the trace arrived in it:
 * an application that reads only that form sent it, and one that never did has no use for a
 * fifth header. `ctx.spanId` is the span the receiver should parent to.
 *
 * Every value is valid as it stands: ids are lower-case hex (generated, or checked by the
 * parsers above) and a trace state passed `parseTracestate`.
 */
export function traceContextLines(ctx: TraceContext, b3Single = false): string {
  const flag = ctx.debug ? 'd' : ctx.sampled === true ? '1' : '0';
  let lines = 'x-b3-traceid: ' + ctx.traceId + '\r\nx-b3-spanid: ' + ctx.spanId + '\r\n';
  if (ctx.parentSpanId) lines += 'x-b3-parentspanid: ' + ctx.parentSpanId + '\r\n';
  // "Debug implies an accept decision, so don't also send the X-B3-Sampled header" (B3 spec).
  lines += ctx.debug ? 'x-b3-flags: 1\r\n' : 'x-b3-sampled: ' + flag + '\r\n';
  if (b3Single) lines += 'b3: ' + ctx.traceId + '-' + ctx.spanId + '-' + flag + (ctx.parentSpanId ? '-' + ctx.parentSpanId : '') + '\r\n';
  lines += 'traceparent: ' + formatTraceparent(ctx) + '\r\n';
  if (ctx.traceState) lines += 'tracestate: ' + ctx.traceState + '\r\n';
  return lines;
}

/** The headers of `traceContextLines`, set on `target` (or a new object) and returned. */
export function injectTraceContext<H extends HeaderBag = Record<string, string>>(ctx: TraceContext, target?: H, b3Single = false): H {
  return addFieldLines((target ?? {}) as H, traceContextLines(ctx, b3Single));
}
