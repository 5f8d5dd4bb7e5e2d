/**
 * The building block of every estimator: the most recent samples of one
 * quantity (bounded by count and, optionally, by age), their mean, a high
 * percentile, and how long ago the newest one arrived. A recent window rather
 * than a lifetime average, so that a link or load change shows up within a few
 * samples; the high percentile is what deadline checks use.
 */
import { percentile, percentileOfSorted } from '../../shared/percentile.js';

/** Milliseconds on a monotonic clock; performance.now() unless a test fixes it. */
export type Clock = () => number;

export const monotonicClock: Clock = () => performance.now();

export interface WindowOptions {
  /** Samples kept; the oldest is dropped first. */
  maxSamples: number;
  /** Samples older than this no longer count (Infinity: only the count bounds the window). */
  maxAgeMs?: number;
  clock?: Clock;
}

export interface WindowSummary {
  mean: number;
  /** The `highPercentile` of the window (nearest rank). */
  high: number;
  count: number;
  /** Time since the newest sample. */
  ageMs: number;
}

/** The percentile deadline checks use: most tasks finish within it, a few outliers do not dominate. */
export const highPercentile = 0.9;

export class WindowStats {
  private readonly values: number[] = [];
  private readonly times: number[] = [];
  private lastAt = -Infinity;
  private readonly maxAgeMs: number;
  private readonly clock: Clock;

  constructor(private readonly options: WindowOptions) {
    this.maxAgeMs = options.maxAgeMs ?? Infinity;
    this.clock = options.clock ?? monotonicClock;
  }

  add(value: number): void {
    if (!Number.isFinite(value)) return;
    const now = this.clock();
    this.values.push(value);
    this.times.push(now);
    this.lastAt = now;
    if (this.values.length > this.options.maxSamples) {
      this.values.shift();
      this.times.shift();
    }
  }

  /** Samples still inside the window. */
  private current(): number[] {
    const oldest = this.clock() - this.maxAgeMs;
    while (this.times.length > 0 && this.times[0]! < oldest) {
      this.times.shift();
      this.values.shift();
    }
    return this.values;
  }

  /** The samples still inside the window, oldest first. */
  samples(): readonly number[] {
    return this.current();
  }

  get count(): number {
    return this.current().length;
  }

  /** Time since the newest sample, even one that has aged out (Infinity when there never was one). */
  ageMs(): number {
    return this.clock() - this.lastAt;
  }

  mean(): number | undefined {
    const values = this.current();
    return values.length === 0 ? undefined : values.reduce((sum, v) => sum + v, 0) / values.length;
  }

  percentile(p: number): number | undefined {
    const values = this.current();
    if (values.length === 0) return undefined;
    return percentile(values, p);
  }

  summary(): WindowSummary | undefined {
    const mean = this.mean();
    if (mean === undefined) return undefined;
    return { mean, high: this.percentile(highPercentile)!, count: this.count, ageMs: this.ageMs() };
  }
}

/** Mean and high percentile of samples pooled from several windows; `ageMs` is the freshest window's. */
export function pooledSummary(windows: readonly WindowStats[]): WindowSummary | undefined {
  const values = windows.flatMap((w) => w.samples()).sort((a, b) => a - b);
  if (values.length === 0) return undefined;
  return {
    mean: values.reduce((sum, v) => sum + v, 0) / values.length,
    high: percentileOfSorted(values, highPercentile),
    count: values.length,
    ageMs: Math.min(...windows.map((w) => w.ageMs())),
  };
}
