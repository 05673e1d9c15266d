/**
 * Access logs in Istio's default formats (meshConfig `accessLogEncoding: TEXT | JSON`).
 *
 * TEXT is Istio's default `accessLogFormat`, itself Envoy's default format plus
 * `%UPSTREAM_TRANSPORT_FAILURE_REASON%`, `%UPSTREAM_CLUSTER%` and friends:
 *   [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
 *   %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
 *   "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
 *   %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
 *   "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER%
 *   %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
 *   %REQUESTED_SERVER_NAME% %ROUTE_NAME%
 * A missing value prints `-` (Envoy's command operators do). JSON uses Istio's default
 * `accessLogEncoding: JSON` keys, with `null` for missing values as Envoy's JSON formatter does.
 *
 * Writing never blocks a request: lines are buffered up to a byte bound while the sink drains;
 * beyond it lines are dropped and counted (Envoy's access log flushes from a buffer off the
 * worker thread in the same spirit).
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { hostname } from 'node:os';
import type { AccessLogSettings } from '../api/proxy-config.js';
import { parseEnvoyFormat } from '../core/envoy-format.js';
import { foreignEvent, telemetryChannels, type TelemetryRequestEvent } from './events.js';

export type AccessLogFormat = 'text' | 'json';

/** Envoy's %START_TIME% default: `%Y-%m-%dT%H:%M:%E3SZ`. */
function startTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '-' : d.toISOString();
}

/**
 * Control characters (a CR/LF smuggled in a header) would let a client forge log lines; Envoy
 * rejects them in headers, and we escape whatever reaches the log.
 */
function clean(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\u0000-\u001f\u007f"\\]/g, (c) => (c === '"' ? '\\"' : c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** The fields of one line, keyed by Istio's JSON names; `undefined` = missing. */
export function accessLogFields(e: TelemetryRequestEvent): Record<string, string | number | undefined> {
  return {
    start_time: startTime(e.startTime),
    method: e.method || undefined,
    // %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%: the original path header as it is, else :path with its query.
    path: e.originalPath || (e.path || '') + (e.query ? `?${e.query}` : '') || undefined,
    protocol: e.protocol || undefined,
    response_code: e.status || 0,
    response_flags: e.flags || '-',
    response_code_details: e.details || undefined,
    connection_termination_details: e.connectionTerminationDetails,
    upstream_transport_failure_reason: e.upstreamTransportFailureReason,
    bytes_received: e.requestBytes,
    bytes_sent: e.responseBytes,
    // Envoy truncates both to whole milliseconds (std::chrono::duration_cast).
    duration: Math.max(0, Math.floor(e.durationMs)),
    upstream_service_time: e.upstreamMs === undefined ? undefined : Math.max(0, Math.floor(e.upstreamMs)),
    x_forwarded_for: e.xForwardedFor,
    user_agent: e.userAgent,
    request_id: e.requestId || undefined,
    authority: e.authority || undefined,
    upstream_host: e.upstreamHost,
    upstream_cluster: e.cluster,
    upstream_local_address: e.upstreamLocal,
    downstream_local_address: e.downstreamLocal,
    downstream_remote_address: e.downstreamPeer || undefined,
    requested_server_name: e.requestedServerName,
    route_name: e.route,
  };
}

/** One line in Istio's default TEXT format (no trailing newline). */
export function formatAccessLogText(e: TelemetryRequestEvent): string {
  const f = accessLogFields(e);
  const s = (k: string) => {
    const v = f[k];
    return v === undefined ? '-' : typeof v === 'number' ? String(v) : (clean(v) ?? '-');
  };
  return (
    `[${s('start_time')}] "${s('method')} ${s('path')} ${s('protocol')}" ${s('response_code')} ${s('response_flags')} ` +
    `${s('response_code_details')} ${s('connection_termination_details')} "${s('upstream_transport_failure_reason')}" ` +
    `${s('bytes_received')} ${s('bytes_sent')} ${s('duration')} ${s('upstream_service_time')} "${s('x_forwarded_for')}" ` +
    `"${s('user_agent')}" "${s('request_id')}" "${s('authority')}" "${s('upstream_host')}" ${s('upstream_cluster')} ` +
    `${s('upstream_local_address')} ${s('downstream_local_address')} ${s('downstream_remote_address')} ` +
    `${s('requested_server_name')} ${s('route_name')}`
  );
}

/** One line of Istio's JSON encoding (no trailing newline). */
export function formatAccessLogJson(e: TelemetryRequestEvent): string {
  const f = accessLogFields(e);
  const out: Record<string, string | number | null> = {};
  for (const [k, v] of Object.entries(f)) out[k] = v === undefined ? null : v;
  return JSON.stringify(out);
}

export function formatAccessLog(e: TelemetryRequestEvent, format: AccessLogFormat): string {
  return format === 'json' ? formatAccessLogJson(e) : formatAccessLogText(e);
}

// === Envoy's command operators ===

/** Istio's default TEXT format (pilot EnvoyTextLogFormat), which `formatAccessLogText` writes. */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% ' +
  '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON labels (pilot EnvoyJSONLogFormatIstio). */
export const ISTIO_JSON_LABELS: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
});

type OperatorValue = string | number | undefined;
type Getter = (e: TelemetryRequestEvent) => OperatorValue;

const GRPC_STATUS_NAMES = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated'];

const withoutPort = (a: string | undefined) => (a === undefined ? undefined : a.startsWith('[') ? a.slice(1, a.indexOf(']')) : a.includes(':') && a.indexOf(':') === a.lastIndexOf(':') ? a.slice(0, a.indexOf(':')) : a);
const portOf = (a: string | undefined) => {
  const m = a === undefined ? null : /:(\d+)$/.exec(a);
  return m ? Number(m[1]) : undefined;
};

/** A request header as Envoy's %REQ(...)% reads it: pseudo-headers from the request, others from its headers. */
function requestHeader(e: TelemetryRequestEvent, name: string, withQuery = true): OperatorValue {
  switch (name) {
    case ':method':
      return e.method || undefined;
    case ':path':
      return (e.path || '') + (withQuery && e.query ? `?${e.query}` : '') || undefined;
    case ':authority':
    case 'host':
      return e.authority || undefined;
    case 'x-envoy-original-path':
      return e.originalPath;
  }
  const v = e.requestHeaders?.[name];
  if (v !== undefined) return Array.isArray(v) ? v.join(',') : v || undefined;
  if (name === 'user-agent') return e.userAgent;
  if (name === 'x-forwarded-for') return e.xForwardedFor;
  if (name === 'x-request-id') return e.requestId || undefined;
  return undefined;
}

/** `%REQ(A?B)%`: A, else B. */
function headerGetter(argument: string, read: (e: TelemetryRequestEvent, name: string) => OperatorValue): Getter {
  const [main, alternative] = argument.toLowerCase().split('?');
  return alternative === undefined ? (e) => read(e, main) : (e) => read(e, main) ?? read(e, alternative);
}

function responseHeader(e: TelemetryRequestEvent, name: string): OperatorValue {
  if (name === 'x-envoy-upstream-service-time') return e.upstreamMs === undefined ? undefined : String(Math.max(0, Math.floor(e.upstreamMs)));
  if (name === ':status') return e.status ? String(e.status) : undefined;
  return undefined;
}

/** Envoy's START_TIME with a strftime format (UTC), plus its %s, %f and %[1-9]f / %E[1-9]S. */
function formatStartTime(ms: number, format: string): string {
  const d = new Date(ms);
  const p2 = (n: number) => String(n).padStart(2, '0');
  const fraction = (digits: number) => String(d.getUTCMilliseconds()).padStart(3, '0').padEnd(9, '0').slice(0, digits);
  return format.replace(/%(E?)([1-9]?)([a-zA-Z%])/g, (all, e: string, digits: string, c: string) => {
    if (e && c === 'S') return `${p2(d.getUTCSeconds())}.${fraction(Number(digits || 9))}`;
    switch (c) {
      case 'Y': return String(d.getUTCFullYear());
      case 'm': return p2(d.getUTCMonth() + 1);
      case 'd': return p2(d.getUTCDate());
      case 'H': return p2(d.getUTCHours());
      case 'M': return p2(d.getUTCMinutes());
      case 'S': return p2(d.getUTCSeconds());
      case 's': return String(Math.floor(ms / 1000));
      case 'f': return fraction(Number(digits || 9));
      case 'z': return '+0000';
      case 'Z': return 'UTC';
      case 'j': return String(Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1).padStart(3, '0');
      case '%': return '%';
      default: return all;
    }
  });
}

/** The value of one command operator (see src/core/envoy-format.ts for the grammar). */
function operatorGetter(name: string, argument: string | undefined): Getter {
  switch (name) {
    case 'START_TIME':
      return argument ? (e) => formatStartTime(e.startTime, argument) : (e) => startTime(e.startTime);
    case 'REQ':
    case 'REQUEST_HEADER':
      return headerGetter(argument!, (e, n) => requestHeader(e, n));
    case 'REQ_WITHOUT_QUERY':
      return headerGetter(argument!, (e, n) => {
        const v = requestHeader(e, n, false);
        return typeof v === 'string' ? v.split('?')[0] : v;
      });
    case 'RESP':
    case 'RESPONSE_HEADER':
      return headerGetter(argument!, responseHeader);
    case 'PROTOCOL': return (e) => e.protocol || undefined;
    case 'RESPONSE_CODE': return (e) => e.status || 0;
    case 'RESPONSE_FLAGS': return (e) => e.flags || '-';
    case 'RESPONSE_CODE_DETAILS': return (e) => e.details || undefined;
    case 'CONNECTION_TERMINATION_DETAILS': return (e) => e.connectionTerminationDetails;
    case 'UPSTREAM_TRANSPORT_FAILURE_REASON': return (e) => e.upstreamTransportFailureReason;
    case 'BYTES_RECEIVED': return (e) => e.requestBytes;
    case 'BYTES_SENT': return (e) => e.responseBytes;
    // Envoy truncates durations to whole milliseconds (std::chrono::duration_cast).
    case 'DURATION': return (e) => Math.max(0, Math.floor(e.durationMs));
    case 'UPSTREAM_HOST': return (e) => e.upstreamHost;
    case 'UPSTREAM_CLUSTER':
    case 'UPSTREAM_CLUSTER_RAW': return (e) => e.cluster;
    case 'UPSTREAM_LOCAL_ADDRESS': return (e) => e.upstreamLocal;
    case 'DOWNSTREAM_LOCAL_ADDRESS': return (e) => e.downstreamLocal;
    case 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT': return (e) => withoutPort(e.downstreamLocal);
    case 'DOWNSTREAM_LOCAL_PORT': return (e) => portOf(e.downstreamLocal);
    case 'DOWNSTREAM_REMOTE_ADDRESS':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS': return (e) => e.downstreamPeer || undefined;
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT': return (e) => withoutPort(e.downstreamPeer || undefined);
    case 'DOWNSTREAM_REMOTE_PORT': return (e) => portOf(e.downstreamPeer);
    case 'REQUESTED_SERVER_NAME': return (e) => e.requestedServerName;
    case 'DOWNSTREAM_PEER_URI_SAN': return (e) => e.downstreamPeerUriSan;
    // Envoy's %DYNAMIC_METADATA(namespace:key)%: one value a filter recorded (the RBAC filter's dry-run result, AUDIT's hint).
    case 'DYNAMIC_METADATA': return (e) => (argument === undefined ? undefined : e.dynamicMetadata?.[argument]);
    case 'UPSTREAM_PEER_URI_SAN': return (e) => e.upstreamPeerUriSan;
    case 'UPSTREAM_LOCAL_URI_SAN': return (e) => e.upstreamLocalUriSan;
    case 'ROUTE_NAME': return (e) => e.route;
    case 'UPSTREAM_REQUEST_ATTEMPT_COUNT': return (e) => e.attempts;
    case 'GRPC_STATUS': return (e) => (e.grpcStatus === undefined ? undefined : (GRPC_STATUS_NAMES[Number(e.grpcStatus)] ?? e.grpcStatus));
    case 'GRPC_STATUS_NUMBER': return (e) => (e.grpcStatus === undefined ? undefined : Number(e.grpcStatus));
    case 'HOSTNAME': return () => hostname();
    case 'STREAM_ID': return (e) => e.requestId || undefined;
    default: return () => undefined; // EMPTY_OPERATORS: Envoy's unset value
  }
}

/** One compiled format string: its text and operators, evaluated per request. */
function compileFormatString(format: string): { text(e: TelemetryRequestEvent): string; typed(e: TelemetryRequestEvent): string | number | null } {
  const parts = parseEnvoyFormat(format).map((seg) => {
    if (seg.kind === 'text') return { text: seg.text } as const;
    const get = operatorGetter(seg.name, seg.argument);
    const max = seg.maxLength;
    return { get, max } as const;
  });
  const render = (p: (typeof parts)[number], e: TelemetryRequestEvent) => {
    if ('text' in p) return p.text;
    const v = p.get(e);
    let out = v === undefined || v === '' ? '-' : typeof v === 'number' ? String(v) : (clean(v) ?? '-');
    if (p.max !== undefined && out.length > p.max) out = out.slice(0, p.max);
    return out;
  };
  return {
    text: (e) => {
      let out = '';
      for (const p of parts) out += render(p, e);
      return out;
    },
    // A value that is exactly one operator keeps its type in JSON; an unset one is null (Envoy's json_format).
    typed: (e) => {
      if (parts.length === 1 && !('text' in parts[0])) {
        const p = parts[0];
        const v = p.get(e);
        if (v === undefined || v === '') return null;
        if (typeof v === 'number') return v;
        return p.max !== undefined ? v.slice(0, p.max) : v;
      }
      let out = '';
      for (const p of parts) out += render(p, e);
      return out;
    },
  };
}

type JsonValue = string | number | null | { [k: string]: JsonValue };

function compileLabels(labels: Readonly<Record<string, unknown>>, omitEmpty: boolean): (e: TelemetryRequestEvent) => { [k: string]: JsonValue } {
  const fields = Object.entries(labels).map(([key, value]) => {
    if (typeof value === 'string') {
      const f = compileFormatString(value);
      return { key, get: (e: TelemetryRequestEvent): JsonValue => f.typed(e) };
    }
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const nested = compileLabels(value as Record<string, unknown>, omitEmpty);
      return { key, get: (e: TelemetryRequestEvent): JsonValue => nested(e) };
    }
    return { key, get: (): JsonValue => (value as JsonValue) ?? null };
  });
  return (e) => {
    const out: { [k: string]: JsonValue } = {};
    for (const f of fields) {
      const v = f.get(e);
      if (omitEmpty && (v === null || v === '')) continue;
      out[f.key] = v;
    }
    return out;
  };
}

/**
 * The line writer of one access log: Istio's default text (a fast path, the same output as
 * ISTIO_TEXT_FORMAT through the generic formatter), an Envoy format string, or JSON labels
 * (Istio's default ones unless given). Throws EnvoyFormatError on a format Envoy would refuse.
 */
export function compileAccessLogFormat(settings: Pick<AccessLogSettings, 'format' | 'text' | 'labels' | 'omitEmptyValues'>): (e: TelemetryRequestEvent) => string {
  if (settings.format === 'json') {
    const labels = settings.labels && Object.keys(settings.labels).length ? settings.labels : ISTIO_JSON_LABELS;
    const build = compileLabels(labels, settings.omitEmptyValues === true);
    return (e) => JSON.stringify(build(e));
  }
  if (settings.text === undefined && !settings.omitEmptyValues) return formatAccessLogText;
  // The writer ends every line with a newline: the format's own final one is not repeated.
  const text = settings.text ?? ISTIO_TEXT_FORMAT;
  const f = compileFormatString(text.endsWith('\n') ? text.slice(0, -1) : text);
  return f.text;
}

// === writer ===

export interface AccessLogWriterOptions {
  /** Bytes held while the sink is busy before lines are dropped (default 1 MiB). */
  maxBufferBytes?: number;
  /** Closes the stream on `close()` (true for files we opened, false for stdout). */
  ownsStream?: boolean;
}

export interface AccessLogSink {
  write(line: string): void;
  close(): Promise<void>;
  readonly stats: { written: number; dropped: number };
}

/** A non-blocking line writer over any Writable (stdout, a file stream). */
export class AccessLogWriter implements AccessLogSink {
  readonly stats = { written: 0, dropped: 0 };
  private readonly queue: string[] = [];
  private queuedBytes = 0;
  private waiting = false;
  private closed = false;
  private broken = false;
  private readonly maxBufferBytes: number;
  private readonly ownsStream: boolean;

  constructor(
    private readonly stream: Writable,
    options: AccessLogWriterOptions = {},
  ) {
    this.maxBufferBytes = options.maxBufferBytes ?? 1024 * 1024;
    this.ownsStream = options.ownsStream ?? false;
    // A sink that fails (disk full, closed pipe) must not crash the proxy; lines are dropped.
    stream.on('error', () => {
      this.broken = true;
    });
  }

  /** Opens `path` for appending (or stdout when absent). */
  static open(path: string | undefined, options: AccessLogWriterOptions = {}): AccessLogWriter {
    if (!path || path === '/dev/stdout') return new AccessLogWriter(process.stdout, { ...options, ownsStream: false });
    return new AccessLogWriter(fs.createWriteStream(path, { flags: 'a' }), { ...options, ownsStream: true });
  }

  /** Queues one line; never blocks or throws. */
  write(line: string): void {
    if (this.closed || this.broken) {
      this.stats.dropped++;
      return;
    }
    const data = line + '\n';
    if (this.waiting) {
      if (this.queuedBytes + data.length > this.maxBufferBytes) {
        this.stats.dropped++;
        return;
      }
      this.queue.push(data);
      this.queuedBytes += data.length;
      return;
    }
    this.stats.written++;
    if (!this.stream.write(data)) this.waitForDrain();
  }

  private waitForDrain(): void {
    this.waiting = true;
    this.stream.once('drain', this.onDrain);
  }

  private onDrain = (): void => {
    this.waiting = false;
    while (this.queue.length) {
      const data = this.queue.shift()!;
      this.queuedBytes -= data.length;
      this.stats.written++;
      if (!this.stream.write(data)) return this.waitForDrain();
    }
  };

  /** Stops accepting lines, flushes what was accepted and closes an owned stream. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // onDrain was registered first, so it has run (and maybe re-armed `waiting`) when we wake.
    while (this.waiting && !this.broken) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off('drain', done);
          this.stream.off('close', done);
          resolve();
        };
        this.stream.once('drain', done);
        this.stream.once('close', done);
      });
      if (this.stream.destroyed) break;
    }
    if (this.ownsStream && !this.broken) await new Promise<void>((resolve) => this.stream.end(resolve));
  }
}

/**
 * Turns one access log on (STYLE.md 12): writes a line per request published on
 * `sinew:proxy:request` (only the events of `options.nodeId` when given, only those of its
 * `directions` when it has some). With no sink given, opens `settings.path` (or stdout).
 * Returns the function that turns it off (and closes a sink it opened). Disabled settings
 * subscribe nothing. The format is compiled first: a bad one throws before anything opens.
 */
export function subscribeAccessLog(settings: AccessLogSettings | undefined, sink?: AccessLogSink, options: { nodeId?: string } = {}): () => Promise<void> {
  if (!settings?.enabled) return async () => undefined;
  const format = compileAccessLogFormat(settings);
  const directions = settings.directions?.length ? new Set<string>(settings.directions) : undefined;
  const owned = !sink;
  const out = sink ?? AccessLogWriter.open(settings.path);
  const onRequest = (msg: unknown) => {
    if (foreignEvent(msg, options.nodeId)) return;
    const event = msg as TelemetryRequestEvent;
    if (directions && !directions.has(event.direction)) return;
    try {
      out.write(format(event));
    } catch {
      out.stats.dropped++;
    }
  };
  telemetryChannels.request.subscribe(onRequest);
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    telemetryChannels.request.unsubscribe(onRequest);
    if (owned) await out.close();
  };
}
