/**
 * A bounded window of scraped samples: the part of Prometheus the console needs, kept in the
 * control plane's memory. Each scrape target (one proxy) holds its series; each series keeps
 * the samples of the last `retentionMs` (plus one older sample as the baseline of the window's
 * first increase), so memory is bounded by series x scrapes per retention.
 *
 * A sample is a vector: one number for a counter, `[count, bucket_1, ..., bucket_n]` for a
 * histogram (cumulative buckets, Prometheus' `le`). Increases follow Prometheus' counter
 * rules: a value lower than the one before is a reset (the proxy restarted), and the new value
 * counts from zero. Unlike Prometheus' `increase()`, nothing is extrapolated: the increase over
 * [from, to] is the exact difference between the last samples at or before each end, so a
 * window's rates add up to the requests that were counted.
 */

export type SeriesFamily = 'requests' | 'duration' | 'tcpSent' | 'tcpReceived' | 'tcpOpened';

/**
 * One series' samples, kept in two typed arrays (times, and `width` values per sample) that
 * grow by doubling: a window of 500 services holds some 700 000 samples, and as one small
 * array each they made every garbage collection walk them all.
 */
export class Series {
  private t = new Float64Array(8);
  private v: Float64Array;
  private n = 0;

  constructor(
    readonly family: SeriesFamily,
    readonly labels: Readonly<Record<string, string>>,
    /** Histogram upper bounds (without +Inf), for `duration`. */
    readonly bounds: readonly number[] | undefined,
    /**
     * True when the series appeared after its target's first scrape: it then started at zero
     * between two scrapes, and its first sample is all increase. A series present at the first
     * scrape has an unknown past, and its first sample is only a baseline.
     */
    readonly fromZero: boolean,
    /** Numbers per sample: 1 for a counter, 1 + buckets for a histogram (`[count, buckets...]`). */
    readonly width: number,
  ) {
    this.v = new Float64Array(8 * width);
  }

  get length(): number {
    return this.n;
  }

  time(i: number): number {
    return this.t[i];
  }

  /** Element `j` of sample `i` (0 = the count). */
  value(i: number, j: number): number {
    return this.v[i * this.width + j];
  }

  /** Sample times, oldest first (a copy). */
  get times(): number[] {
    return Array.from(this.t.subarray(0, this.n));
  }

  push(at: number, value: readonly number[]): void {
    if (this.n === this.t.length) {
      const t = new Float64Array(this.t.length * 2);
      t.set(this.t);
      this.t = t;
      const v = new Float64Array(this.v.length * 2);
      v.set(this.v);
      this.v = v;
    }
    this.t[this.n] = at;
    const base = this.n * this.width;
    for (let j = 0; j < this.width; j++) this.v[base + j] = value[j] ?? 0;
    this.n++;
  }

  /** Drops the `k` oldest samples. */
  dropOldest(k: number): void {
    if (k <= 0) return;
    this.t.copyWithin(0, k, this.n);
    this.v.copyWithin(0, k * this.width, this.n * this.width);
    this.n -= k;
  }

  /**
   * Thins the samples older than `olderThan` to one per `stepMs`, keeping both sides of every
   * counter reset, so that an increase between any two kept samples is still exact.
   */
  thin(olderThan: number, stepMs: number): void {
    const end = this.upperBound(olderThan);
    if (end < 3) return;
    const w = this.width;
    let kept = 0;
    let lastKeptTime = -Infinity;
    for (let i = 0; i < this.n; i++) {
      const reset = i > 0 && this.v[i * w] < this.v[(i - 1) * w];
      const beforeReset = i + 1 < this.n && this.v[(i + 1) * w] < this.v[i * w];
      const keep = i >= end - 1 || i === 0 || reset || beforeReset || this.t[i] - lastKeptTime >= stepMs;
      if (!keep) continue;
      if (kept !== i) {
        this.t[kept] = this.t[i];
        this.v.copyWithin(kept * w, i * w, (i + 1) * w);
      }
      lastKeptTime = this.t[i];
      kept++;
    }
    this.n = kept;
  }

  /** Index of the first sample later than `x` (times ascend). */
  upperBound(x: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.t[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export interface ScrapedSeries {
  family: SeriesFamily;
  labels: Record<string, string>;
  bounds?: readonly number[];
  value: number[];
}

interface Target {
  firstAt: number;
  lastAt: number;
  series: Map<string, Series>;
}

/**
 * Samples newer than this are all kept (the 1 and 5 minute windows and the charts' steps are
 * exact); older ones are thinned to one per THIN_STEP_MS, which the 30 minute window's rate
 * does not notice, and which keeps a 500-service window to about a third of the memory.
 */
export const FULL_RESOLUTION_MS = 6 * 60_000;
export const THIN_STEP_MS = 30_000;

export class SampleWindow {
  private readonly targets = new Map<string, Target>();

  constructor(readonly retentionMs: number) {}

  /** Records one scrape of `target` taken at `at`. */
  record(targetId: string, at: number, scraped: readonly ScrapedSeries[]): void {
    let target = this.targets.get(targetId);
    const first = !target;
    if (!target) {
      target = { firstAt: at, lastAt: at, series: new Map() };
      this.targets.set(targetId, target);
    }
    if (at < target.lastAt) return; // out of order: an older scrape finished late
    target.lastAt = at;
    for (const s of scraped) {
      // The width is part of the identity: a histogram whose buckets changed is a new series.
      const key = s.family + s.value.length + JSON.stringify(s.labels);
      let series = target.series.get(key);
      if (!series) {
        series = new Series(s.family, s.labels, s.bounds, !first, s.value.length);
        target.series.set(key, series);
      }
      series.push(at, s.value);
    }
    this.prune(target, at);
  }

  /** Forgets a target that is gone (its proxy left the mesh). */
  forget(targetId: string): void {
    this.targets.delete(targetId);
  }

  targetIds(): string[] {
    return [...this.targets.keys()];
  }

  /** Every series of every target. */
  *series(family?: SeriesFamily): Iterable<Series> {
    for (const t of this.targets.values()) for (const s of t.series.values()) if (!family || s.family === family) yield s;
  }

  /** Samples and series held, for the console's own status. */
  size(): { targets: number; series: number; samples: number } {
    let series = 0;
    let samples = 0;
    for (const t of this.targets.values()) {
      series += t.series.size;
      for (const s of t.series.values()) samples += s.length;
    }
    return { targets: this.targets.size, series, samples };
  }

  private prune(target: Target, now: number): void {
    const cutoff = now - this.retentionMs;
    for (const [key, s] of target.series) {
      // Keep the last sample before the cutoff: it is the baseline of the oldest window.
      s.dropOldest(s.upperBound(cutoff) - 1);
      s.thin(now - FULL_RESOLUTION_MS, THIN_STEP_MS);
      // A series not scraped for a whole retention (its peer went away) goes.
      if (s.time(s.length - 1) < cutoff) target.series.delete(key);
    }
  }
}

/**
 * How much a counter (or every element of a histogram vector) grew over (from, to]: undefined
 * when the series has no sample in that interval. Element 0 decides resets.
 */
export function increase(s: Series, from: number, to: number): number[] | undefined {
  const end = s.upperBound(to) - 1;
  if (end < 0) return undefined;
  const before = s.upperBound(from) - 1;
  if (before === end) return undefined; // nothing new in the interval
  const width = s.width;
  // `base` and `prev` are sample indexes; -1 stands for zero (a series born between scrapes, or after a reset).
  let base: number;
  let i: number;
  if (before >= 0) {
    base = before;
    i = before + 1;
  } else if (s.fromZero) {
    base = -1;
    i = 0;
  } else {
    base = 0;
    i = 1;
  }
  const at = (k: number, j: number) => (k < 0 ? 0 : s.value(k, j));
  // Between resets the increase is the last value minus the segment's base: only the count is
  // compared sample by sample, whole vectors are subtracted once per segment.
  const acc = new Array<number>(width).fill(0);
  let prev = base;
  for (; i <= end; i++) {
    if (s.value(i, 0) < at(prev, 0)) {
      // A reset: close the segment at `prev`; the new value counts from zero.
      for (let j = 0; j < width; j++) acc[j] += Math.max(0, at(prev, j) - at(base, j));
      base = -1;
    }
    prev = i;
  }
  for (let j = 0; j < width; j++) acc[j] += Math.max(0, at(prev, j) - at(base, j));
  return acc;
}

/**
 * Prometheus' `histogram_quantile`: the q-quantile of cumulative bucket counts with upper
 * bounds `bounds` (the +Inf bucket is `total`), interpolating linearly inside the bucket.
 * Undefined without observations. A quantile in the +Inf bucket is the highest finite bound.
 */
export function histogramQuantile(q: number, bounds: readonly number[], cumulative: readonly number[], total: number): number | undefined {
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < bounds.length; i++) {
    const count = cumulative[i];
    if (count >= rank) {
      const inBucket = count - lowerCount;
      if (inBucket <= 0) return bounds[i];
      return lowerBound + (bounds[i] - lowerBound) * ((rank - lowerCount) / inBucket);
    }
    lowerBound = bounds[i];
    lowerCount = count;
  }
  return bounds[bounds.length - 1];
}
