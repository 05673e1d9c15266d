/**
 * The control plane scrapes every proxy's Prometheus endpoint (the `metrics` address each
 * replica registers, Istio's 15090 `/stats/prometheus`) on an interval and keeps a bounded
 * window of the mesh's own standard metrics: `istio_requests_total`,
 * `istio_request_duration_milliseconds` and the `istio_tcp_*` counters. The console's graph,
 * overview and charts are computed from that window, as Kiali computes them from Prometheus.
 *
 * Timing comes from an injected Clock; `scrapeOnce()` runs one round on demand (tests drive it
 * with a manual clock). A target that does not answer within the timeout counts as failing
 * and keeps its previous samples.
 */
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import { SampleWindow, type ScrapedSeries, type SeriesFamily } from './sample-window.js';

export interface ScrapeTarget {
  /** The proxy's node id (stable across its restarts). */
  id: string;
  /** `host:port` of its metrics endpoint. */
  address: string;
}

export interface ScraperOptions {
  targets: () => readonly ScrapeTarget[];
  clock: Clock;
  /** Default 5 s. */
  intervalMs?: number;
  /** How long samples are kept: the longest graph window plus a margin (default 31 min). */
  retentionMs?: number;
  /** Default 2 s. */
  timeoutMs?: number;
  logger?: Logger;
}

/** The families the console reads, by their exposition names. */
const FAMILIES: Record<string, SeriesFamily> = {
  istio_requests_total: 'requests',
  istio_request_duration_milliseconds: 'duration',
  istio_tcp_sent_bytes_total: 'tcpSent',
  istio_tcp_received_bytes_total: 'tcpReceived',
  istio_tcp_connections_opened_total: 'tcpOpened',
};

/**
 * The labels the graph needs; the others (principals, clusters, canonical revisions) are left
 * out so that the window holds fewer, smaller series.
 */
export const KEPT_LABELS = new Set([
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_app',
  'source_version',
  'source_canonical_service',
  'destination_workload',
  'destination_workload_namespace',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
]);

export class MetricsScraper {
  readonly window: SampleWindow;
  readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly failing = new Set<string>();
  private lastAt: number | undefined;
  private lastTargets = 0;

  constructor(private readonly options: ScraperOptions) {
    this.intervalMs = options.intervalMs ?? 5000;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.window = new SampleWindow(options.retentionMs ?? 31 * 60_000);
    this.logger = options.logger ?? silentLogger;
  }

  /** Scrapes now, then every interval until `stop()`. */
  start(): void {
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      void this.scrapeOnce().finally(() => {
        if (!this.stopped) this.timer = this.options.clock.setTimeout(tick, this.intervalMs).unref();
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    await this.running;
  }

  status(): { targets: number; failing: number; lastAt?: number; intervalMs: number } {
    return { targets: this.lastTargets, failing: this.failing.size, lastAt: this.lastAt, intervalMs: this.intervalMs };
  }

  /** One round: every target in parallel, each sample stamped with the round's start time. */
  scrapeOnce(): Promise<void> {
    if (this.running) return this.running;
    const round = async () => {
      const at = this.options.clock.now();
      const targets = this.options.targets();
      const live = new Set(targets.map((t) => t.id));
      for (const id of this.window.targetIds()) if (!live.has(id)) this.window.forget(id);
      for (const id of this.failing) if (!live.has(id)) this.failing.delete(id);
      await Promise.all(
        targets.map(async (t) => {
          try {
            const res = await fetch(`http://${t.address}/stats/prometheus`, { signal: AbortSignal.timeout(this.timeoutMs) });
            if (res.status !== 200) throw new Error(`answered ${res.status}`);
            this.window.record(t.id, at, parseIstioMetrics(await res.text()));
            this.failing.delete(t.id);
          } catch (err) {
            if (!this.failing.has(t.id)) this.logger.warn('cannot scrape a proxy', { proxy: t.id, address: t.address, error: (err as Error).message });
            this.failing.add(t.id);
          }
        }),
      );
      this.lastAt = at;
      this.lastTargets = targets.length;
    };
    this.running = round().finally(() => (this.running = undefined));
    return this.running;
  }
}

// === the text exposition format ===

/**
 * Reads the console's families out of Prometheus' text exposition format (version 0.0.4):
 * `name{label="value",...} value [timestamp]`, label values with `\\`, `\"` and `\n` escapes.
 * Histogram `_bucket` lines of one series are gathered, with `_count`, into one vector
 * `[count, bucket...]`. Other families and comment lines are skipped; a malformed line is
 * skipped too (a scrape is never lost to one bad line).
 *
 * Written here rather than taken from npm: parse-prometheus-text-format 1.1.1 merges the
 * histogram series of different label sets into one and drops their labels.
 */
export function parseIstioMetrics(text: string): ScrapedSeries[] {
  const out: ScrapedSeries[] = [];
  const histograms = new Map<string, { labels: Record<string, string>; buckets: [number, number][]; count?: number }>();
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end);
    pos = end + 1;
    if (line.length === 0 || line.charCodeAt(0) === 35 /* # */) continue;
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    let base = name;
    let part: 'value' | 'bucket' | 'count' | 'sum' = 'value';
    if (!(name in FAMILIES)) {
      const m = /^(.*)_(bucket|count|sum)$/.exec(name);
      if (!m || FAMILIES[m[1]] !== 'duration') continue;
      base = m[1];
      part = m[2] as typeof part;
    }
    const parsed = parseLabelsAndValue(line, nameEnd);
    if (!parsed) continue;
    const { labels, le, value } = parsed;
    if (part === 'value') {
      out.push({ family: FAMILIES[base], labels, value: [value] });
      continue;
    }
    if (part === 'sum') continue;
    const key = JSON.stringify(labels);
    let h = histograms.get(key);
    if (!h) histograms.set(key, (h = { labels, buckets: [] }));
    if (part === 'count') h.count = value;
    else if (le !== undefined && le !== '+Inf') h.buckets.push([Number(le), value]);
  }
  for (const h of histograms.values()) {
    if (h.count === undefined) continue;
    h.buckets.sort((a, b) => a[0] - b[0]);
    out.push({ family: 'duration', labels: h.labels, bounds: h.buckets.map((b) => b[0]), value: [h.count, ...h.buckets.map((b) => b[1])] });
  }
  return out;
}

function parseLabelsAndValue(line: string, i: number): { labels: Record<string, string>; le?: string; value: number } | undefined {
  const labels: Record<string, string> = {};
  let le: string | undefined;
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const eq = line.indexOf('=', i);
      if (eq < 0 || line[eq + 1] !== '"') return undefined;
      const key = line.slice(i, eq).trim();
      let value = '';
      let j = eq + 2;
      for (;;) {
        const c = line[j];
        if (c === undefined) return undefined;
        if (c === '"') break;
        if (c === '\\') {
          const n = line[j + 1];
          value += n === 'n' ? '\n' : n;
          j += 2;
        } else {
          value += c;
          j++;
        }
      }
      i = j + 1;
      if (key === 'le') le = value;
      else if (KEPT_LABELS.has(key)) labels[key] = value;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = Number(rest[0]);
  if (rest[0] === undefined || rest[0] === '' || Number.isNaN(value)) return undefined;
  return { labels, le, value };
}
