/**
 * `sinew traces` lists recent traces from the control plane's collector; `sinew trace <id>`
 * prints one as an indented timeline. Spans reach the collector from every proxy of a mesh
 * started by `sinew up` (which samples 100 %). `--service` takes the name spans carry
 * (`reviews.default`), the short name (`reviews`, in any namespace) or the host name
 * (`reviews.default.svc.cluster.local`), as the collector's query matches them.
 */
import type { StoredSpan, StoredTrace } from '../telemetry/trace-store.js';
import { renderTraceTimeline } from '../telemetry/trace-store.js';
import { SinewError } from '../core/errors.js';
import { callControlPlane, connectControlPlane } from './client.js';
import type { ConnectOptions } from './config-commands.js';
import { table, type Io } from './output.js';

export interface TracesOptions extends ConnectOptions {
  service?: string;
  limit?: number;
  output: string;
}

/** The JSON shape of `sinew traces -o json`: the fields scripts need, in a fixed order. */
function spanJson(s: StoredSpan) {
  return { spanId: s.spanId, parentSpanId: s.parentSpanId, service: s.service, name: s.name, startTime: s.startTime, duration: s.duration, tags: s.tags };
}

export async function runTraces(options: TracesOptions, io: Io): Promise<number> {
  const cp = await connectControlPlane(options);
  const params = new URLSearchParams();
  if (options.service) params.set('service', options.service);
  params.set('limit', String(options.limit ?? 20));
  const res = await callControlPlane(cp, `/api/v1/traces?${params}`);
  if (res.status !== 200) throw new SinewError('SNW_ERR_TRACES', `the control plane answered ${res.status} to a trace query`);
  const traces = res.body as StoredTrace[];
  if (options.output === 'json') {
    io.out(JSON.stringify(traces.map((t) => ({ traceId: t.traceId, spans: t.spans.map(spanJson) })), null, 2) + '\n');
    return 0;
  }
  if (traces.length === 0) {
    // Spans reach the control plane in batches, within about a second of a request (DEFAULT_BATCH_DELAY_MS).
    const wait = 'spans reach the control plane within about a second of a request';
    if (!options.service) {
      io.out(`no traces yet; send some requests through the mesh (${wait})\n`);
      return 0;
    }
    const known = await callControlPlane(cp, '/api/v1/services');
    const services = known.status === 200 && Array.isArray(known.body) ? (known.body as string[]) : [];
    io.out(`no traces for service ${options.service} yet (${wait})\n`);
    if (services.length) io.out(`services with traces: ${services.join(', ')}\n`);
    return 0;
  }
  const rows = traces.map((t) => {
    const { root, start, end } = summary(t);
    return [t.traceId, root ? `${root.service} ${root.name}` : '-', String(t.spans.length), `${((end - start) / 1000).toFixed(2)}ms`, new Date(start / 1000).toISOString()];
  });
  io.out(table(['TRACE ID', 'ROOT', 'SPANS', 'DURATION', 'START'], rows));
  return 0;
}

export async function runTrace(options: ConnectOptions & { id: string; output: string }, io: Io): Promise<number> {
  const cp = await connectControlPlane(options);
  const res = await callControlPlane(cp, `/api/v1/traces/${encodeURIComponent(options.id)}`);
  if (res.status === 404) {
    io.err(`✘ no trace ${options.id} at the control plane; "sinew traces" lists the recent ones\n`);
    return 1;
  }
  if (res.status !== 200) throw new SinewError('SNW_ERR_TRACES', `the control plane answered ${res.status} to a trace query`);
  const trace = res.body as StoredTrace;
  if (options.output === 'json') io.out(JSON.stringify({ traceId: trace.traceId, spans: trace.spans.map(spanJson) }, null, 2) + '\n');
  else io.out(renderTraceTimeline(trace));
  return 0;
}

/** The root span (no parent in the trace; the earliest if several) and the trace's time span, in microseconds. */
function summary(t: StoredTrace): { root: StoredSpan | undefined; start: number; end: number } {
  const ids = new Set(t.spans.map((s) => s.spanId));
  const roots = t.spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  const root = (roots.length ? roots : t.spans).reduce<StoredSpan | undefined>((a, s) => (!a || s.startTime < a.startTime ? s : a), undefined);
  const start = Math.min(...t.spans.map((s) => s.startTime));
  const end = Math.max(...t.spans.map((s) => s.startTime + s.duration));
  return { root, start, end };
}
