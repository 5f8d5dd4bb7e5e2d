/**
 * Service time as a function of input size (pixels, audio seconds, text
 * bytes), learned online. Sizes fall into half-octave buckets (each √2
 * wider than the last, so 1280 and 1600 pixel images differ), each a recent
 * window of times, so a model whose cost is far from linear in its input (OCR
 * resizes to a fixed detection size, then pays per text line) is still
 * estimated from inputs like this one. A size with no bucket of its own is
 * interpolated between its neighbours on a log-log scale; beyond the largest
 * size seen it is scaled up in proportion (or, for a model whose cost does not
 * grow with its input's size, costs as much as the largest), and below the
 * smallest it costs as much as the smallest: both err on the slow side until
 * a real run corrects them.
 */
import type { SizeScaling } from '../../shared/handlers/handler.js';
import { WindowStats, type Clock } from './window-stats.js';

export interface CurveEstimate {
  meanMs: number;
  highMs: number;
  /** 'measured': inputs of this size have run; 'scaled': estimated from other sizes. */
  basis: 'measured' | 'scaled';
  /** Time since the newest sample of any size. */
  ageMs: number;
}

interface Bucket {
  times: WindowStats;
  sizes: WindowStats;
}

const bucketOf = (size: number) => Math.floor(2 * Math.log2(Math.max(size, 1)));

export class ServiceTimeCurve {
  private readonly buckets = new Map<number, Bucket>();
  private readonly newest: WindowStats;

  constructor(
    private readonly samplesPerBucket: number,
    private readonly clock?: Clock,
  ) {
    this.newest = new WindowStats({ maxSamples: 1, clock });
  }

  record(size: number, ms: number): void {
    if (!(size > 0) || !(ms >= 0)) return;
    const key = bucketOf(size);
    let bucket = this.buckets.get(key);
    if (!bucket) {
      const options = { maxSamples: this.samplesPerBucket, clock: this.clock };
      bucket = { times: new WindowStats(options), sizes: new WindowStats(options) };
      this.buckets.set(key, bucket);
    }
    bucket.times.add(ms);
    bucket.sizes.add(size);
    this.newest.add(ms);
  }

  /** Time since the newest sample of any size (Infinity: none yet). */
  ageMs(): number {
    return this.newest.ageMs();
  }

  estimate(size: number, scaling: SizeScaling = 'linear'): CurveEstimate | undefined {
    if (this.buckets.size === 0) return undefined;
    const ageMs = this.ageMs();
    const key = bucketOf(size);
    const own = this.buckets.get(key)?.times.summary();
    if (own) return { meanMs: own.mean, highMs: own.high, basis: 'measured', ageMs };
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    const below = keys.filter((k) => k < key).at(-1);
    const above = keys.find((k) => k > key);
    const point = (k: number) => {
      const bucket = this.buckets.get(k)!;
      const times = bucket.times.summary()!;
      return { size: bucket.sizes.mean()!, mean: times.mean, high: times.high };
    };
    if (below !== undefined && above !== undefined) {
      const lo = point(below);
      const hi = point(above);
      const t = (Math.log(size) - Math.log(lo.size)) / (Math.log(hi.size) - Math.log(lo.size));
      const logLerp = (a: number, b: number) => Math.exp(Math.log(Math.max(a, 1e-3)) + t * (Math.log(Math.max(b, 1e-3)) - Math.log(Math.max(a, 1e-3))));
      return { meanMs: logLerp(lo.mean, hi.mean), highMs: logLerp(lo.high, hi.high), basis: 'scaled', ageMs };
    }
    if (below !== undefined) {
      const lo = point(below);
      const ratio = scaling === 'flat' ? 1 : size / lo.size;
      return { meanMs: lo.mean * ratio, highMs: lo.high * ratio, basis: 'scaled', ageMs };
    }
    const hi = point(above!);
    return { meanMs: hi.mean, highMs: hi.high, basis: 'scaled', ageMs };
  }
}
