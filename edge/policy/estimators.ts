/**
 * Every estimator the placement policy reads, in one place, fed on one path:
 * the agent hands each task's outcome (what the local runtime and the offload
 * client measured) to `record`, and strategies read completion-time estimates
 * per path and payload-shaping option through the placement context.
 *
 *   edge  = local queue ahead + local service time(input size) × device slowdown
 *   cloud = shrink + RTT + uplink wait + bytes(option) × upload cost + cloud queue
 *           + cloud compute(sent size) + overdue
 *
 * The uplink wait is the time behind payloads already on their way out.
 * Overdue is evidence that arrives before any answer does: when an offload
 * in flight has been waiting longer than its own high estimate, the path is
 * slower than the windows say by at least that much (a link that just
 * slowed down, or stalled), so every new cloud estimate carries it, as
 * peak-EWMA load balancers count a request's pending time.
 *
 * Each is a mean (to rank paths) and a high estimate, the sum of the parts'
 * 90th percentiles (to check deadlines, erring on the safe side).
 */
import type { Catalog } from '../../shared/catalog.js';
import type { Logger } from '../../shared/log.js';
import type { EdgeConfig, PolicyConfig } from '../config.js';
import type { WarmupRun } from '../local-runtime.js';
import type { Task } from '../tasks.js';
import { CloudEstimator } from './cloud-estimator.js';
import { DeviceLoadSampler, type DeviceSlowdown } from './device-load.js';
import { measureInputSize, type InputSize } from './input-size.js';
import { LinkEstimator } from './link-estimator.js';
import { localModelKey, LocalEstimator, type EdgeEstimate } from './local-estimator.js';
import { defaultShaping, shapingOptionsOf, type ShapingOption } from '../offload/image-shaping.js';
import type { PlacementOutcome } from './outcome.js';
import { PayloadEstimator } from './payload-estimator.js';
import { monotonicClock, type Clock } from './window-stats.js';

/** What the estimators need from the running agent. */
export interface EstimatorHooks {
  /** A timed ServerLive round trip that fails after `timeoutMs` (default: the breaker's probe timeout). */
  probeRoundTripMs(timeoutMs?: number): Promise<number>;
  /** Items waiting or running on this task's local model, of `variant` (the light one or the reference the device holds). */
  localItemsAhead(task: Task, variant: string): number;
  slowdown(): DeviceSlowdown;
}

export interface EdgeCompletion {
  expectedMs: number;
  highMs: number;
  detail: EdgeEstimate;
}

export interface CloudCompletion {
  /** The image shaping applied; undefined for inputs sent as they are (text, audio). */
  option?: ShapingOption;
  /** 1 − the option's accuracy cost. */
  accuracy: number;
  payloadBytes: number;
  /** Mean of each part (ms); a part not yet measured is absent and named in `missing`. */
  parts: { prepareMs: number; rttMs?: number; waitMs: number; uploadMs?: number; queueMs?: number; computeMs?: number; overdueMs: number };
  expectedMs?: number;
  highMs?: number;
  missing: string[];
  /** 'measured': the cloud has computed inputs of the sizes sent; 'scaled': estimated from other sizes. */
  basis: 'measured' | 'scaled';
  /** Time since the cloud last answered this model. */
  ageMs: number;
}

/** What the running agent offers the estimators at start. */
export interface AgentSources extends Omit<EstimatorHooks, 'slowdown'> {
  /** Timed warm-up runs of the local variants: the first sample of each one's service time. */
  warmups: readonly WarmupRun[];
  /** Whether the cloud answered at start (then the RTT is measured once before the first task). */
  cloudReachable: boolean;
}

/** An offload on its way: when it left and the high estimate it was sent with. */
interface CloudTaskInFlight {
  startedAt: number;
  highMs: number;
}

export class PlacementEstimators {
  readonly link: LinkEstimator;
  readonly cloud: CloudEstimator;
  readonly local: LocalEstimator;
  readonly payload: PayloadEstimator;
  private readonly shapingByModel = new Map<string, ShapingOption[]>();
  /** The config's shaping, for images of models that declare no options. */
  private readonly configShaping: ShapingOption;
  private readonly unplannedByModel = new Map<string, ShapingOption>();
  private readonly inFlight = new Set<CloudTaskInFlight>();
  private readonly clock: Clock;
  private loadSampler: DeviceLoadSampler | undefined;

  /** The agent's estimators: device load sampled from systeminformation, local times seeded by warm-ups, the RTT measured once. */
  static async start(config: EdgeConfig, catalog: Catalog, sources: AgentSources, log: Logger): Promise<PlacementEstimators> {
    const loadSampler = await DeviceLoadSampler.start({
      intervalMs: config.policy.loadSampleMs,
      threads: config.intraOpThreads,
      throttleTemperatureC: config.policy.throttleTemperatureC,
      log,
    });
    const estimators = new PlacementEstimators(config.policy, catalog, config.offload, { ...sources, slowdown: () => loadSampler.current() });
    estimators.loadSampler = loadSampler;
    for (const warmup of sources.warmups) await estimators.recordWarmup(warmup);
    if (sources.cloudReachable) await estimators.refreshLink();
    return estimators;
  }

  /** A local variant's timed warm-up run: the first sample of its service time (at start, or when a reference variant is loaded later). */
  async recordWarmup(warmup: WarmupRun): Promise<void> {
    const size = await measureInputSize(warmup.handler, [warmup.input]);
    this.local.record(localModelKey(warmup.model, warmup.variant), size.items[0]!.amount, warmup.ms);
  }

  /** Stops sampling the device load. */
  close(): void {
    this.loadSampler?.stop();
  }

  constructor(
    policy: PolicyConfig,
    catalog: Catalog,
    offload: Pick<EdgeConfig['offload'], 'imageMaxSide' | 'jpegQuality'>,
    private readonly hooks: EstimatorHooks,
    clock?: Clock,
  ) {
    const window = policy.estimateWindow;
    this.clock = clock ?? monotonicClock;
    this.link = new LinkEstimator({
      minBandwidthPayloadBytes: policy.minBandwidthPayloadBytes,
      windowSize: window,
      maxAgeMs: policy.estimateMaxAgeMs,
      probeIdleMs: policy.probeIdleMs,
      uplinkHalfLifeMs: policy.uplinkHalfLifeMs,
      clock,
    });
    this.cloud = new CloudEstimator({ windowSize: window, maxAgeMs: policy.estimateMaxAgeMs, timeoutMemoryMs: policy.staleAfterMs, clock });
    this.local = new LocalEstimator({ windowSize: window, slowdown: () => hooks.slowdown(), clock });
    this.payload = new PayloadEstimator(window, clock);
    this.configShaping = defaultShaping(offload);
    for (const model of catalog.models) {
      this.shapingByModel.set(model.id, shapingOptionsOf(model));
      this.unplannedByModel.set(model.id, defaultShaping(offload, model));
    }
  }

  /** The options the model allows for an image; the config's offload settings when the catalog declares none. */
  shapingOptions(task: Task): ShapingOption[] {
    if (task.modality !== 'image' && task.modality !== 'video') return [];
    const declared = this.shapingByModel.get(task.model) ?? [];
    return declared.length > 0 ? declared : [this.configShaping];
  }

  /** How an image of this task is shaped when its strategy chose no option (defaultShaping); undefined for text and audio. */
  unplannedShaping(task: Task): ShapingOption | undefined {
    if (task.modality !== 'image' && task.modality !== 'video') return undefined;
    return this.unplannedByModel.get(task.model) ?? this.configShaping;
  }

  /** Probes the link in the background when its RTT estimate is stale. */
  refreshLink(): Promise<void> | undefined {
    return this.link.refreshIfStale(() => this.hooks.probeRoundTripMs());
  }

  edge(task: Task, size: InputSize, variant: string): EdgeCompletion | undefined {
    const detail = this.local.estimate(
      localModelKey(task.model, variant),
      size.items.map((item) => item.amount),
      this.hooks.localItemsAhead(task, variant),
      task.handler.sizeScaling,
    );
    if (!detail) return undefined;
    return { expectedMs: detail.queueMeanMs + detail.computeMeanMs, highMs: detail.queueMeanMs + detail.computeHighMs, detail };
  }

  /** One estimate per shaping option (one, unshaped, for text and audio). */
  cloudOptions(task: Task, size: InputSize): CloudCompletion[] {
    const options = this.shapingOptions(task);
    return options.length > 0 ? options.map((option) => this.cloudCompletion(task, size, option)) : [this.cloudCompletion(task, size, undefined)];
  }

  /**
   * A task is being offloaded with `shaping` (undefined: its unplanned
   * shaping) and the decision's high estimate (undefined: the estimators'
   * own). Books its bytes on the uplink and watches it for being overdue;
   * returns the shaping to upload with, `settled` to be called once it is
   * answered or has failed, and `uplinkWaitMs` (the wait predicted behind
   * earlier payloads) to report with its outcome, so that the wait is not
   * learnt as RTT or bandwidth.
   */
  cloudTaskStarted(task: Task, size: InputSize, shaping: ShapingOption | undefined, highMs?: number): { shaping: ShapingOption | undefined; uplinkWaitMs: number; settled: () => void } {
    const option = shaping ?? this.unplannedShaping(task);
    const uplinkWaitMs = this.link.uploadWaitMs();
    const place = this.link.reserveUpload(this.sentItems(size, option).reduce((sum, item) => sum + (item?.bytes ?? 0), 0));
    const expectedHighMs = highMs ?? this.cloudCompletion(task, size, option).highMs;
    const entry = { startedAt: this.clock(), highMs: expectedHighMs ?? Infinity };
    this.inFlight.add(entry);
    return {
      shaping: option,
      uplinkWaitMs,
      settled: () => {
        this.inFlight.delete(entry);
        this.link.uploadDelivered(place);
      },
    };
  }

  /** How far past its high estimate the most overdue offload in flight is (0: none is). */
  overdueMs(): number {
    const now = this.clock();
    let overdue = 0;
    for (const task of this.inFlight) overdue = Math.max(overdue, now - task.startedAt - task.highMs);
    return overdue;
  }

  /** What crosses the link per item, and its size in the model's unit (pixels after resizing, for images); undefined where unknown. */
  private sentItems(size: InputSize, option: ShapingOption | undefined) {
    return size.items.map((item) => {
      if (!option) return { bytes: item.bytes, size: item.amount, prepareMs: 0 };
      const shaped = this.payload.shape(item, option);
      return shaped && { bytes: shaped.bytes, size: shaped.pixels, prepareMs: shaped.prepareMs };
    });
  }

  private cloudCompletion(task: Task, size: InputSize, option: ShapingOption | undefined): CloudCompletion {
    const missing: string[] = [];
    const sent = this.sentItems(size, option);
    if (sent.some((item) => !item || !(item.size > 0))) missing.push('input size');
    const shaped = sent.filter((item) => item !== undefined);
    const payloadBytes = shaped.reduce((sum, item) => sum + item.bytes, 0);
    const prepareMs = shaped.reduce((sum, item) => sum + item.prepareMs, 0);
    const rtt = this.link.rttEstimate();
    if (!rtt) missing.push('round-trip time');
    const upload = this.link.uploadEstimate(payloadBytes);
    if (!upload) missing.push('uplink bandwidth');
    // Small payloads wait behind big ones too: the link is one FIFO.
    const waitMs = this.link.uploadWaitMs();
    const overdueMs = this.overdueMs();
    const computes = shaped.map((item) => this.cloud.computeEstimate(task.model, item.size, task.handler.sizeScaling));
    if (computes.length === 0 || computes.some((c) => c === undefined)) missing.push('cloud compute');
    // No recent queue sample while compute is known: the cloud has been idle for this model.
    const queue = this.cloud.queueEstimate(task.model) ?? { mean: 0, high: 0 };
    const compute = missing.includes('cloud compute')
      ? undefined
      : computes.reduce((sum, c) => ({ mean: sum.mean + c!.meanMs, high: sum.high + c!.highMs }), { mean: 0, high: 0 });
    const completion: CloudCompletion = {
      option,
      accuracy: 1 - (option?.accuracyCost ?? 0),
      payloadBytes,
      parts: { prepareMs, rttMs: rtt?.mean, waitMs, uploadMs: upload?.meanMs, queueMs: compute ? queue.mean : undefined, computeMs: compute?.mean, overdueMs },
      missing,
      basis: computes.every((c) => c?.basis === 'measured') ? 'measured' : 'scaled',
      ageMs: this.cloud.answerAgeMs(task.model),
    };
    if (missing.length === 0) {
      completion.expectedMs = prepareMs + rtt!.mean + waitMs + upload!.meanMs + queue.mean + compute!.mean + overdueMs;
      completion.highMs = prepareMs + rtt!.high + waitMs + upload!.highMs + queue.high + compute!.high + overdueMs;
    }
    return completion;
  }

  /** Learns from what a task measured; `localVariant` is the one that ran it, if the edge did. */
  record(task: Task, outcome: PlacementOutcome, localVariant: string | undefined): void {
    const items = outcome.inputSize.items;
    if (outcome.localItemComputeMs && localVariant) {
      const key = localModelKey(task.model, localVariant);
      outcome.localItemComputeMs.forEach((ms, i) => this.local.record(key, items[i]?.amount ?? Number.NaN, ms));
    }
    const answer = outcome.cloudAnswer;
    if (answer) {
      const shaped = answer.shaped;
      this.link.recordRoundTrip(answer.sentBytes, Math.max(0, answer.linkMs - (outcome.uplinkWaitMs ?? 0)));
      // A video chunk's frames share one request: each is a sample of its share of the compute.
      for (const item of items.slice(0, answer.items)) {
        const inputPixels = item.amount;
        this.cloud.recordAnswer(task.model, shaped && !shaped.keptOriginal ? shaped.outputPixels : inputPixels, answer.queueMs, answer.computeMs / answer.items);
        if (shaped && shaped.outputPixels > 0) this.payload.record(shaped, inputPixels);
      }
    }
    if (outcome.cloudTimeoutMs !== undefined) this.cloud.recordTimeout(task.model, outcome.cloudTimeoutMs);
  }
}
