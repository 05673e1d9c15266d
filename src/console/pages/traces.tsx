/** Trace search (Jaeger's: service, operation, tags, minimum duration, time) and one trace as a timeline. */
import { useState } from 'preact/hooks';
import type { Trace, TraceSpan } from '../../api/console.js';
import { consoleApi } from '../api.js';
import { useJson } from '../hooks.js';
import { href } from '../router.js';

const millis = (micros: number) => `${(micros / 1000).toFixed(2)} ms`;
const rootOf = (t: Trace) => t.spans.find((s) => !s.parentSpanId || !t.spans.some((p) => p.spanId === s.parentSpanId)) ?? t.spans[0];
const spanOf = (t: Trace) => {
  const start = Math.min(...t.spans.map((s) => s.startTime));
  const end = Math.max(...t.spans.map((s) => s.startTime + s.duration));
  return { start, duration: end - start };
};
const failed = (s: TraceSpan) => s.tags['error'] === 'true' || s.tags['otel.status_code'] === 'ERROR';

export function TracesPage({ params }: { params: URLSearchParams }) {
  const services = useJson<string[]>(consoleApi('trace-services'));
  const [form, setForm] = useState(() => ({
    service: params.get('service') ?? '',
    operation: params.get('operation') ?? '',
    tags: params.get('tags') ?? '',
    minDuration: params.get('minDuration') ?? '',
    lookback: params.get('lookback') ?? '',
    limit: params.get('limit') ?? '20',
  }));
  const edge = { from: params.get('from') ?? '', to: params.get('to') ?? '', host: params.get('host') ?? '' };
  const query = new URLSearchParams();
  for (const key of ['service', 'operation', 'minDuration', 'limit'] as const) if (params.get(key)) query.set(key, params.get(key)!);
  for (const t of (params.get('tags') ?? '').split(/\s+/).filter(Boolean)) query.append('tag', t);
  if (params.get('lookback')) query.set('start', String((Date.now() - Number(params.get('lookback')) * 60_000) * 1000));
  for (const [k, v] of Object.entries(edge)) if (v) query.set(k, v);
  const results = useJson<Trace[]>(consoleApi(`traces?${query}`), 10_000);
  const submit = (e: Event) => {
    e.preventDefault();
    location.hash = href('traces', { ...form, ...edge });
  };
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <>
      <h1>Traces</h1>
      {(edge.from || edge.to || edge.host) && (
        <p role="status">
          Traces of the edge {edge.from || 'any caller'} → {edge.host || edge.to || 'any'} {edge.to && edge.host ? `(${edge.to})` : ''}{' '}
          <a href={href('traces')}>clear</a>
        </p>
      )}
      <form class="toolbar" onSubmit={submit} aria-label="Search traces">
        <label>
          Service
          <select value={form.service} onChange={set('service')}>
            <option value="">any</option>
            {(services.data ?? []).map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Operation
          <input value={form.operation} onInput={set('operation')} />
        </label>
        <label>
          Tags (k:v, space separated)
          <input value={form.tags} onInput={set('tags')} placeholder="http.status_code:503" />
        </label>
        <label>
          Min duration
          <input value={form.minDuration} onInput={set('minDuration')} placeholder="5ms" size={6} />
        </label>
        <label>
          Lookback
          <select value={form.lookback} onChange={set('lookback')}>
            <option value="">all kept</option>
            <option value="5">last 5 min</option>
            <option value="60">last hour</option>
          </select>
        </label>
        <label>
          Limit
          <input type="number" min={1} max={500} value={form.limit} onInput={set('limit')} size={4} />
        </label>
        <button type="submit">Search</button>
      </form>
      {results.error && <p class="errors" role="alert">{results.error}</p>}
      {results.data && <TraceTable traces={results.data} />}
    </>
  );
}

export function TraceTable({ traces }: { traces: Trace[] }) {
  if (traces.length === 0) return <p class="muted">No traces match.</p>;
  return (
    <table aria-label="Traces">
      <thead>
        <tr><th>Trace</th><th>Root</th><th>Spans</th><th>Services</th><th>Duration</th><th>Started</th></tr>
      </thead>
      <tbody>
        {traces.map((t) => {
          const root = rootOf(t);
          const { start, duration } = spanOf(t);
          return (
            <tr>
              <td><a href={`#/traces/${t.traceId}`}>{t.traceId.slice(0, 12)}</a></td>
              <td>{root.service} {root.name}</td>
              <td>{t.spans.length}{t.spans.some(failed) ? ' (errors)' : ''}</td>
              <td>{new Set(t.spans.map((s) => s.service)).size}</td>
              <td>{millis(duration)}</td>
              <td>{new Date(start / 1000).toLocaleTimeString()}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function TracePage({ id }: { id: string }) {
  const { data, error } = useJson<Trace>(consoleApi(`traces/${encodeURIComponent(id)}`));
  const [open, setOpen] = useState<string | undefined>();
  if (error) return <p class="errors" role="alert">{error}</p>;
  if (!data) return <p>Loading…</p>;
  const { start, duration } = spanOf(data);
  const children = new Map<string, TraceSpan[]>();
  const ids = new Set(data.spans.map((s) => s.spanId));
  const roots: TraceSpan[] = [];
  for (const s of data.spans) {
    if (s.parentSpanId && ids.has(s.parentSpanId)) children.set(s.parentSpanId, [...(children.get(s.parentSpanId) ?? []), s]);
    else roots.push(s);
  }
  const rows: { span: TraceSpan; depth: number }[] = [];
  const seen = new Set<TraceSpan>();
  const walk = (s: TraceSpan, depth: number) => {
    if (seen.has(s)) return;
    seen.add(s);
    rows.push({ span: s, depth });
    for (const c of (children.get(s.spanId) ?? []).sort((a, b) => a.startTime - b.startTime)) walk(c, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.startTime - b.startTime)) walk(r, 0);
  const services = [...new Set(data.spans.map((s) => s.service))];
  return (
    <>
      <h1>Trace {data.traceId}</h1>
      <p>
        {data.spans.length} spans · {services.length} services ({services.join(', ')}) · {millis(duration)}
      </p>
      <div role="list" aria-label="Spans">
        {rows.map(({ span, depth }) => (
          <div role="listitem" class="timeline-row" data-service={span.service}>
            <button type="button" style={`padding-left:${depth * 14}px`} aria-expanded={open === span.spanId} onClick={() => setOpen(open === span.spanId ? undefined : span.spanId)}>
              <strong>{span.service}</strong> {span.name} {span.kind ? `(${span.kind})` : ''}
            </button>
            <div class="timeline-track" aria-hidden="true">
              <div
                class={`timeline-bar${failed(span) ? ' error' : ''}`}
                style={`left:${duration ? ((span.startTime - start) / duration) * 100 : 0}%;width:${duration ? (span.duration / duration) * 100 : 100}%`}
              />
            </div>
            <span>{millis(span.duration)}</span>
            {open === span.spanId && (
              <div style="grid-column: 1 / -1">
                <table aria-label={`Span ${span.spanId}`}>
                  <tbody>
                    <tr><th>Span id</th><td>{span.spanId}</td></tr>
                    <tr><th>Parent</th><td>{span.parentSpanId ?? '-'}</td></tr>
                    <tr><th>Reported by</th><td>{span.tags['node_id'] ?? span.service}</td></tr>
                    <tr><th>Flags</th><td>{span.tags['response_flags'] ?? '-'}</td></tr>
                    <tr><th>Start</th><td>+{millis(span.startTime - start)}</td></tr>
                    {Object.entries(span.tags).sort().map(([k, v]) => (
                      <tr><th>{k}</th><td>{v}</td></tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        ))}
      </div>
    </>
  );
}
