/**
 * Local service time per model variant (`model@variant`), as a function of
 * input size, learned from every local run and seeded by the timed warm-up
 * run at start. Samples are stored as if the device were idle and cool
 * (divided by the slowdown measured when they ran) and estimates are scaled
 * by the slowdown now, so a busy or throttled device is not mistaken for a
 * slow model, and vice versa. The queue ahead is the local runtime's items
 * waiting or running, each costing the recent mean item time.
 */
import type { SizeScaling } from '../../shared/handlers/handler.js';
import type { DeviceSlowdown } from './device-load.js';
import { ServiceTimeCurve } from './service-time-curve.js';
import { WindowStats, type Clock } from './window-stats.js';

export interface LocalEstimatorOptions {
  windowSize: number;
  slowdown: () => DeviceSlowdown;
  clock?: Clock;
}

export interface EdgeEstimate {
  queueMeanMs: number;
  computeMeanMs: number;
  computeHighMs: number;
  /** Items of this model waiting or running ahead of the task. */
  itemsAhead: number;
  slowdown: DeviceSlowdown;
  basis: 'measured' | 'scaled';
  ageMs: number;
}

interface VariantStats {
  curve: ServiceTimeCurve;
  /** Idle-device time of recent items of any size: what an item ahead in the queue costs. */
  recentItemMs: WindowStats;
}

export const localModelKey = (model: string, variant: string) => `${model}@${variant}`;

export class LocalEstimator {
  private readonly variants = new Map<string, VariantStats>();

  constructor(private readonly options: LocalEstimatorOptions) {}

  /** One item that ran locally: its size and the time inside the model. */
  record(key: string, size: number, computeMs: number): void {
    if (!(size > 0)) return;
    let stats = this.variants.get(key);
    if (!stats) {
      const { windowSize, clock } = this.options;
      stats = { curve: new ServiceTimeCurve(windowSize, clock), recentItemMs: new WindowStats({ maxSamples: windowSize, clock }) };
      this.variants.set(key, stats);
    }
    const idleMs = computeMs / this.options.slowdown().factor;
    stats.curve.record(size, idleMs);
    stats.recentItemMs.add(idleMs);
  }

  /** The task's items run one after another behind `itemsAhead`; undefined before the variant ever ran or when a size is unknown. */
  estimate(key: string, itemSizes: readonly number[], itemsAhead: number, scaling?: SizeScaling): EdgeEstimate | undefined {
    const stats = this.variants.get(key);
    if (!stats || itemSizes.some((size) => !(size > 0))) return undefined;
    const slowdown = this.options.slowdown();
    const items = itemSizes.map((size) => stats.curve.estimate(size, scaling)!);
    const sum = (pick: (e: (typeof items)[number]) => number) => items.reduce((total, e) => total + pick(e), 0);
    return {
      queueMeanMs: itemsAhead * (stats.recentItemMs.mean() ?? 0) * slowdown.factor,
      computeMeanMs: sum((e) => e.meanMs) * slowdown.factor,
      computeHighMs: sum((e) => e.highMs) * slowdown.factor,
      itemsAhead,
      slowdown,
      basis: items.every((e) => e.basis === 'measured') ? 'measured' : 'scaled',
      ageMs: Math.min(...items.map((e) => e.ageMs)),
    };
  }
}
