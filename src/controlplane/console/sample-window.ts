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

export interface Series {
  readonly family: SeriesFamily;
  readonly labels: Readonly<Record<string, string>>;
  /** Histogram upper bounds (without +Inf), for `duration`. */
  readonly bounds?: readonly number[];
  /** Sample times (ms since epoch), ascending. */
  readonly times: number[];
  readonly values: number[][];
  /**
   * True when the series appeared after its target's first scrape: it then started at zero
   * between two scrapes, and its first sample is all increase. A series present at the first
   * scrape has an unknown past, and its first sample is only a baseline.
   */
  readonly fromZero: boolean;
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
      const key = seriesKey(s.family, s.labels);
      let series = target.series.get(key);
      if (!series) {
        series = { family: s.family, labels: s.labels, bounds: s.bounds, times: [], values: [], fromZero: !first };
        target.series.set(key, series);
      }
      series.times.push(at);
      series.values.push(s.value);
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
      for (const s of t.series.values()) samples += s.times.length;
    }
    return { targets: this.targets.size, series, samples };
  }

  private prune(target: Target, now: number): void {
    const cutoff = now - this.retentionMs;
    for (const [key, s] of target.series) {
      // Keep the last sample before the cutoff: it is the baseline of the oldest window.
      const keepFrom = upperBound(s.times, cutoff) - 1;
      if (keepFrom > 0) {
        s.times.splice(0, keepFrom);
        s.values.splice(0, keepFrom);
      }
      // A series not scraped for a whole retention (its peer went away) goes.
      if (s.times[s.times.length - 1] < cutoff) target.series.delete(key);
    }
  }
}

const seriesKey = (family: string, labels: Record<string, string>) => family + JSON.stringify(labels);

/** A zero vector of any width (`ZERO[j]` is undefined, read as 0). */
const ZERO: readonly number[] = [];

/** Index of the first element greater than `x` (times are ascending). */
export function upperBound(times: readonly number[], x: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * How much a counter (or every element of a histogram vector) grew over (from, to]: undefined
 * when the series has no sample in that interval. Element 0 decides resets.
 */
export function increase(s: Series, from: number, to: number): number[] | undefined {
  const end = upperBound(s.times, to) - 1;
  if (end < 0) return undefined;
  const before = upperBound(s.times, from) - 1;
  if (before === end) return undefined; // nothing new in the interval
  let prev: readonly number[];
  let i: number;
  if (before >= 0) {
    prev = s.values[before];
    i = before + 1;
  } else if (s.fromZero) {
    prev = ZERO;
    i = 0;
  } else {
    prev = s.values[0];
    i = 1;
  }
  // Between resets the increase is the last value minus the segment's base; only element 0
  // is compared sample by sample, the vectors are subtracted once per segment.
  const width = s.values[end].length;
  const acc = new Array<number>(width).fill(0);
  let base: readonly number[] = prev;
  for (; i <= end; i++) {
    const cur = s.values[i];
    if (cur[0] < (prev[0] ?? 0)) {
      // A reset: close the segment at `prev`; the new value counts from zero.
      for (let j = 0; j < width; j++) acc[j] += Math.max(0, (prev[j] ?? 0) - (base[j] ?? 0));
      base = ZERO;
    }
    prev = cur;
  }
  for (let j = 0; j < width; j++) acc[j] += Math.max(0, prev[j] - (base[j] ?? 0));
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
