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
import type { TelemetrySettings } from '../api/proxy-config.js';
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
    path: e.originalPath || e.path || undefined,
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
 * Turns access logging on (STYLE.md 12): writes one line per request published on
 * `sinew:proxy:request` (only the events of `options.nodeId` when given). With no sink given, opens `settings.path` (or stdout). Returns the
 * function that turns it off (and closes a sink it opened). Disabled settings subscribe nothing.
 */
export function subscribeAccessLog(settings: TelemetrySettings['accessLog'], sink?: AccessLogSink, options: { nodeId?: string } = {}): () => Promise<void> {
  if (!settings?.enabled) return async () => undefined;
  const format: AccessLogFormat = settings.format === 'json' ? 'json' : 'text';
  const owned = !sink;
  const out = sink ?? AccessLogWriter.open(settings.path);
  const onRequest = (msg: unknown) => {
    if (foreignEvent(msg, options.nodeId)) return;
    try {
      out.write(formatAccessLog(msg as TelemetryRequestEvent, format));
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
