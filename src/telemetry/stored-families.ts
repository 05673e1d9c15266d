/**
 * Metric families whose series MeshMetrics keeps itself, rendered by prom-client's registry.
 *
 * Istio's request families carry 25 labels. prom-client's own Counter and Histogram validate
 * and hash every label on every `inc` / `observe` (about 10 µs a call, four calls a request),
 * and even with the series' key cached, its histograms keep bucket counts in objects keyed by
 * the bucket bound (`bucketValues[0.5]`), a number-to-property lookup per observation. Here a
 * series is one plain object found once per request (MeshMetrics' series cache) and recording
 * is `n += 1` on its fields. The registry still renders the exposition text: these families
 * answer `get()` in the shape prom-client's metrics do (MetricObjectWithValues), which its
 * Registry renders, merges and serves as JSON like any other metric.
 */
import type { Registry } from './prom-client-core.js';

/** One sample as prom-client's metrics return them from `get()`. */
interface Sample {
  metricName?: string;
  labels: Readonly<Record<string, string | number>>;
  /** Labels shared by several samples (prom-client's histograms put the series' labels here). */
  sharedLabels?: Readonly<Record<string, string>>;
  value: number;
}

/** What prom-client's metrics return from `get()` (its MetricObjectWithValues, typed as it is at runtime). */
export interface FamilySnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Sample[];
}

type RegisteredMetric = Parameters<Registry['registerMetric']>[0];

/** One histogram series' values: per-bucket (not cumulative) counts, sum and count. */
export interface HistogramCell {
  count: number;
  sum: number;
  /** buckets[i] counts observations in (bounds[i-1], bounds[i]]; above the last bound only count and sum grow. */
  readonly buckets: Float64Array;
}

export function newHistogramCell(bounds: readonly number[]): HistogramCell {
  return { count: 0, sum: 0, buckets: new Float64Array(bounds.length) };
}

/** Records one observation (the caller guarantees a finite value >= 0). */
export function observe(cell: HistogramCell, bounds: readonly number[], value: number): void {
  cell.count += 1;
  cell.sum += value;
  for (let i = 0; i < bounds.length; i++) {
    if (value <= bounds[i]) {
      cell.buckets[i] += 1;
      return;
    }
  }
}

/** What a family reads from each stored series. */
export interface StoredSeries {
  readonly labels: Readonly<Record<string, string>>;
}

interface FamilyOptions<S extends StoredSeries, V> {
  name: string;
  help: string;
  /** Every stored series, in creation order (read at scrape time only). */
  series: () => Iterable<S>;
  /** The series' value in this family, or undefined when the family has no sample for it. */
  read: (s: S) => V | undefined;
  /** Forgets the series' value in this family (Registry.resetMetrics). */
  clear: (s: S) => void;
}

/** What both kinds of family share: registration under a name, and reset. */
abstract class StoredFamily<S extends StoredSeries, V, O extends FamilyOptions<S, V> = FamilyOptions<S, V>> {
  readonly aggregator = 'sum' as const;
  readonly name: string;
  readonly help: string;

  constructor(
    protected readonly options: O,
    registry: Registry,
  ) {
    this.name = options.name;
    this.help = options.help;
    registry.registerMetric(this as unknown as RegisteredMetric);
  }

  /** Registry.resetMetrics(): this family's values start again from nothing. */
  reset(): void {
    for (const s of this.options.series()) this.options.clear(s);
  }
}

/**
 * A counter over stored series. A series without a value has no sample (a TCP connection
 * opened but not yet closed has no `..._closed_total` sample, as with prom-client's counters).
 */
export class StoredCounter<S extends StoredSeries> extends StoredFamily<S, number> {
  readonly type = 'counter' as const;

  async get(): Promise<FamilySnapshot> {
    const values: Sample[] = [];
    for (const s of this.options.series()) {
      const value = this.options.read(s);
      if (value !== undefined) values.push({ labels: s.labels, value });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

/** A histogram over stored series; a series without a cell has no sample. */
export class StoredHistogram<S extends StoredSeries> extends StoredFamily<S, HistogramCell, FamilyOptions<S, HistogramCell> & { bounds: readonly number[] }> {
  readonly type = 'histogram' as const;
  /** The `le` label of each bucket, as prom-client writes it, then `+Inf`. */
  private readonly leLabels: readonly { le: string | number }[];

  constructor(options: FamilyOptions<S, HistogramCell> & { bounds: readonly number[] }, registry: Registry) {
    super(options, registry);
    this.leLabels = [...options.bounds.map((le) => ({ le })), { le: '+Inf' }];
  }

  /**
   * The exposition the registry renders. The series' labels go in `sharedLabels`, the field
   * prom-client's Histogram uses for them: the registry formats each label set once per scrape
   * instead of once per bucket line.
   */
  async getForPromString(): Promise<FamilySnapshot> {
    return this.collect(false);
  }

  /** The same samples with the `le` label merged into each sample's labels (getMetricsAsJSON). */
  async get(): Promise<FamilySnapshot> {
    return this.collect(true);
  }

  private collect(splay: boolean): FamilySnapshot {
    const bucketName = `${this.name}_bucket`;
    const values: Sample[] = [];
    const sample = (metricName: string, extra: { le: string | number } | undefined, labels: Readonly<Record<string, string>>, value: number) => {
      if (splay) values.push({ metricName, labels: extra ? { ...labels, ...extra } : { ...labels }, value });
      else values.push({ metricName, labels: extra ?? {}, sharedLabels: labels, value });
    };
    for (const s of this.options.series()) {
      const cell = this.options.read(s);
      if (cell === undefined) continue;
      let cumulative = 0;
      for (let i = 0; i < cell.buckets.length; i++) {
        cumulative += cell.buckets[i];
        sample(bucketName, this.leLabels[i], s.labels, cumulative);
      }
      sample(bucketName, this.leLabels[cell.buckets.length], s.labels, cell.count);
      sample(`${this.name}_sum`, undefined, s.labels, cell.sum);
      sample(`${this.name}_count`, undefined, s.labels, cell.count);
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
