/**
 * The cloud tier's queue and compute time per model, learned from the
 * `queue_us` / `compute_us` parameters of its answers, with no extra calls.
 * Compute follows the size of what was sent (a shrunk image costs less), so
 * it is a service-time curve; queue time follows the cloud's load, not the
 * input, so it is one recent window that forgets an old regime. A timeout
 * also counts as queue time, but only for `timeoutMemoryMs`: it says the
 * path was slow then (often the link, not the cloud), and must not keep the
 * cloud looking slow long after the link has recovered, when few answers
 * come back to outvote it.
 */
import type { SizeScaling } from '../../shared/handlers/handler.js';
import { ServiceTimeCurve, type CurveEstimate } from './service-time-curve.js';
import { pooledSummary, WindowStats, type Clock, type WindowSummary } from './window-stats.js';

export interface CloudEstimatorOptions {
  windowSize: number;
  /** Queue samples older than this are forgotten. */
  maxAgeMs: number;
  /** Timeouts older than this are forgotten. */
  timeoutMemoryMs: number;
  clock?: Clock;
}

interface ModelStats {
  queue: WindowStats;
  timeouts: WindowStats;
  compute: ServiceTimeCurve;
}

export class CloudEstimator {
  private readonly models = new Map<string, ModelStats>();

  constructor(private readonly options: CloudEstimatorOptions) {}

  private statsOf(model: string): ModelStats {
    let stats = this.models.get(model);
    if (!stats) {
      const { windowSize, maxAgeMs, timeoutMemoryMs, clock } = this.options;
      stats = {
        queue: new WindowStats({ maxSamples: windowSize, maxAgeMs, clock }),
        timeouts: new WindowStats({ maxSamples: windowSize, maxAgeMs: timeoutMemoryMs, clock }),
        compute: new ServiceTimeCurve(windowSize, clock),
      };
      this.models.set(model, stats);
    }
    return stats;
  }

  /** One answered item: the server's own times, and the size of the input it received. */
  recordAnswer(model: string, sentSize: number, queueMs: number, computeMs: number): void {
    const stats = this.statsOf(model);
    stats.queue.add(queueMs);
    stats.compute.record(sentSize, computeMs);
  }

  /**
   * A task the cloud did not answer within its budget. All we know is that it
   * took longer; that counts as queue time, so the cloud looks as slow as it
   * was, until answers say otherwise or `timeoutMemoryMs` has passed.
   */
  recordTimeout(model: string, waitedMs: number): void {
    this.statsOf(model).timeouts.add(waitedMs);
  }

  queueEstimate(model: string): WindowSummary | undefined {
    const stats = this.models.get(model);
    return stats && pooledSummary([stats.queue, stats.timeouts]);
  }

  computeEstimate(model: string, sentSize: number, scaling?: SizeScaling): CurveEstimate | undefined {
    return this.models.get(model)?.compute.estimate(sentSize, scaling);
  }

  /** Time since the cloud last answered this model (Infinity: never). */
  answerAgeMs(model: string): number {
    return this.models.get(model)?.compute.ageMs() ?? Infinity;
  }
}
