/**
 * The device's own models: the local variant of each configured modality's
 * model, opened and warmed up at start, one LoadedModel per model+variant
 * (image and video share the OCR model). Local runs of one model wait for a
 * free slot, so the wait is reported as queue time instead of hiding inside
 * compute, and a task whose deadline passes while waiting never runs.
 */
import { loadCatalog, type Catalog } from '../shared/catalog.js';
import { InferError, toInferError } from '../shared/errors.js';
import { loadModel, type LoadedModel } from '../shared/loaded-model.js';
import type { ModelHandler } from '../shared/handlers/handler.js';
import type { Logger } from '../shared/log.js';
import type { EdgeConfig } from './config.js';
import type { Modality } from './request.js';
import { modalities, type Task } from './tasks.js';

/** One session chain computes one input at a time on its worker; more would only queue there. */
const RUNS_PER_MODEL = 1;

export interface LocalAnswer {
  /** One result per task item, in item order. */
  itemResults: Record<string, unknown>[];
  /** Time spent waiting for a free slot. */
  queueMs: number;
  /** Time inside the model (pre-processing, inference, post-processing). */
  computeMs: number;
  /** computeMs of each item, in item order: what the local service-time estimator learns from. */
  itemComputeMs: number[];
}

/** A timed warm-up run at start: the first sample of a variant's service time. */
export interface WarmupRun {
  modality: Modality;
  model: string;
  /** The model's handler, which measures the input's size. */
  handler: ModelHandler;
  variant: string;
  input: Uint8Array;
  ms: number;
}

/** Bounded concurrency with FIFO waiting; a waiter whose deadline passes leaves the queue with DEADLINE_EXCEEDED. */
class RunSlots {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  /** Items ahead of a new arrival; a running one counts half, being on average half done. */
  get itemsAhead(): number {
    return this.busy / 2 + this.waiting.length;
  }

  acquire(deadlineAt: number, what: string): Promise<void> {
    if (this.busy < this.size) {
      this.busy++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        this.busy++;
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(grant), 1);
        reject(new InferError('DEADLINE_EXCEEDED', `${what}: the deadline passed while waiting for the local model, busy with earlier requests`));
      }, Math.max(0, deadlineAt - performance.now()));
      this.waiting.push(grant);
    });
  }

  release(): void {
    this.busy--;
    this.waiting.shift()?.();
  }
}

interface LocalModel {
  loaded: LoadedModel;
  slots: RunSlots;
  warmup: { input: Uint8Array; ms: number };
}

export class LocalRuntime {
  private constructor(private readonly byModality: ReadonlyMap<Modality, LocalModel>) {}

  static async open(config: EdgeConfig, log: Logger, catalog: Catalog = loadCatalog()): Promise<LocalRuntime> {
    const byKey = new Map<string, LocalModel>();
    const byModality = new Map<Modality, LocalModel>();
    try {
      for (const modality of modalities) {
        const { model: modelId, localVariant } = config.modalities[modality];
        if (!localVariant) continue;
        const key = `${modelId}@${localVariant}`;
        let local = byKey.get(key);
        if (!local) {
          const model = catalog.models.find((m) => m.id === modelId);
          if (!model) {
            // Tasks of this modality are refused with NOT_FOUND: without the model's handler the edge cannot check or place them.
            log.warn({ modality, model: modelId }, `model ${modelId} is not in the catalog, so ${modality} has no local variant on this device`);
            continue;
          }
          if (!model.variants[localVariant]) {
            throw new Error(
              `config modalities.${modality}.localVariant is '${localVariant}', but model ${modelId} has variants ${Object.keys(model.variants).join(', ')} — pick one of them, or '' for no local variant`,
            );
          }
          local = await openLocalModel(await loadModel(model, localVariant, { providers: ['cpu'], intraOpThreads: config.intraOpThreads }, log));
          byKey.set(key, local);
        }
        byModality.set(modality, local);
      }
    } catch (err) {
      await Promise.all([...byKey.values()].map((m) => m.loaded.close()));
      throw err;
    }
    return new LocalRuntime(byModality);
  }

  /** The variant this device runs for a modality, or undefined when it has none. */
  variantFor(modality: Modality): string | undefined {
    return this.byModality.get(modality)?.loaded.variant;
  }

  /** Items of this modality's local model waiting or running (image and video share one). */
  itemsAhead(modality: Modality): number {
    return this.byModality.get(modality)?.slots.itemsAhead ?? 0;
  }

  /** One timed warm-up run per modality's local model, to seed its service-time estimate. */
  warmupRuns(): WarmupRun[] {
    return [...this.byModality].map(([modality, local]) => ({
      modality,
      model: local.loaded.model.id,
      handler: local.loaded.handler,
      variant: local.loaded.variant,
      ...local.warmup,
    }));
  }

  /** Runs every item of a task, one slot at a time; multi-item errors name the item (video frame). */
  async run(task: Task): Promise<LocalAnswer> {
    const local = this.byModality.get(task.modality);
    if (!local) throw new InferError('FAILED_PRECONDITION', `${task.modality} has no local variant on this device (config modalities.${task.modality}.localVariant)`);
    const answer: LocalAnswer = { itemResults: [], queueMs: 0, computeMs: 0, itemComputeMs: [] };
    for (const [index, item] of task.items.entries()) {
      const label = task.modality === 'video' ? `video frame ${index}` : task.modality;
      const waitStarted = performance.now();
      await local.slots.acquire(task.deadlineAt, `${task.id} (${label})`);
      const started = performance.now();
      answer.queueMs += started - waitStarted;
      try {
        const output = await local.loaded.run(item);
        answer.itemResults.push(output.result);
      } catch (err) {
        const e = toInferError(err);
        throw task.items.length > 1 ? new InferError(e.code, `${label}: ${e.message}`, { cause: err }) : e;
      } finally {
        local.slots.release();
        const ms = performance.now() - started;
        answer.computeMs += ms;
        answer.itemComputeMs.push(ms);
      }
    }
    return answer;
  }

  async close(): Promise<void> {
    await Promise.all([...new Set(this.byModality.values())].map((m) => m.loaded.close()));
  }
}

/** Times one more warm-up run: the start-up run pays one-off costs, this one seeds the service-time estimate. */
async function openLocalModel(loaded: LoadedModel): Promise<LocalModel> {
  let input: Uint8Array;
  let started: number;
  try {
    input = await loaded.handler.warmupInput();
    started = performance.now();
    await loaded.run(input);
  } catch (err) {
    await loaded.close();
    throw err;
  }
  return { loaded, slots: new RunSlots(RUNS_PER_MODEL), warmup: { input, ms: performance.now() - started } };
}
