/**
 * The device's own models: the local variant of each configured task's model
 * (each modality's default task, and the image `encode` task), opened and
 * warmed up at start, one LoadedModel per model+variant (image and video
 * share the OCR model). Local runs of one model wait in its
 * run queue, so the wait is reported as queue time instead of hiding inside
 * compute, and a task whose deadline passes while waiting never runs.
 */
import { loadCatalog, type Catalog } from '../shared/catalog.js';
import { InferError, toInferError } from '../shared/errors.js';
import { loadModel, type LoadedModel } from '../shared/loaded-model.js';
import type { ModelHandler } from '../shared/handlers/handler.js';
import type { Logger } from '../shared/log.js';
import { RunQueue } from '../shared/run-queue.js';
import { allTaskSettings, type EdgeConfig } from './config.js';
import type { Task } from './tasks.js';

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
  model: string;
  /** The model's handler, which measures the input's size. */
  handler: ModelHandler;
  variant: string;
  input: Uint8Array;
  ms: number;
}

interface LocalModel {
  loaded: LoadedModel;
  queue: RunQueue;
  warmup: { input: Uint8Array; ms: number };
}

export class LocalRuntime {
  /** By task settings path (`image`, `image.encode`; Task.settingsPath). */
  private constructor(private readonly byPath: ReadonlyMap<string, LocalModel>) {}

  static async open(config: EdgeConfig, log: Logger, catalog: Catalog = loadCatalog()): Promise<LocalRuntime> {
    const byKey = new Map<string, LocalModel>();
    const byPath = new Map<string, LocalModel>();
    try {
      for (const { path, settings } of allTaskSettings(config.modalities)) {
        const { model: modelId, localVariant } = settings;
        if (!localVariant) continue;
        const key = `${modelId}@${localVariant}`;
        let local = byKey.get(key);
        if (!local) {
          const model = catalog.models.find((m) => m.id === modelId);
          if (!model) {
            // These tasks are refused with NOT_FOUND: without the model's handler the edge cannot check or place them.
            log.warn({ task: path, model: modelId }, `model ${modelId} is not in the catalog, so ${path} has no local variant on this device`);
            continue;
          }
          if (!model.variants[localVariant]) {
            throw new Error(
              `config modalities.${path}.localVariant is '${localVariant}', but model ${modelId} has variants ${Object.keys(model.variants).join(', ')} — pick one of them, or '' for no local variant`,
            );
          }
          local = await openLocalModel(await loadModel(model, localVariant, { providers: ['cpu'], intraOpThreads: config.intraOpThreads }, log));
          byKey.set(key, local);
        }
        byPath.set(path, local);
      }
    } catch (err) {
      await Promise.all([...byKey.values()].map((m) => m.loaded.close()));
      throw err;
    }
    return new LocalRuntime(byPath);
  }

  /** The variant this device runs for a task, or undefined when it has none. */
  variantFor(task: Pick<Task, 'settingsPath'>): string | undefined {
    return this.byPath.get(task.settingsPath)?.loaded.variant;
  }

  /** The local variant of each task settings path that has one (`image.encode` → `mobilenet-v2-int8`). */
  variants(): Record<string, string> {
    return Object.fromEntries([...this.byPath].map(([path, local]) => [path, local.loaded.variant]));
  }

  /** Items of this task's local model waiting or running (image and video share one). */
  itemsAhead(task: Pick<Task, 'settingsPath'>): number {
    return this.byPath.get(task.settingsPath)?.queue.itemsAhead ?? 0;
  }

  /** One timed warm-up run per local model, to seed its service-time estimate. */
  warmupRuns(): WarmupRun[] {
    return [...new Set(this.byPath.values())].map((local) => ({
      model: local.loaded.model.id,
      handler: local.loaded.handler,
      variant: local.loaded.variant,
      ...local.warmup,
    }));
  }

  /** Runs every item of a task, each through the model's run queue; multi-item errors name the item (video frame). */
  async run(task: Task): Promise<LocalAnswer> {
    const local = this.byPath.get(task.settingsPath);
    if (!local) throw new InferError('FAILED_PRECONDITION', `${task.settingsPath} has no local variant on this device (config modalities.${task.settingsPath}.localVariant)`);
    const answer: LocalAnswer = { itemResults: [], queueMs: 0, computeMs: 0, itemComputeMs: [] };
    for (const [index, item] of task.items.entries()) {
      const label = task.modality === 'video' ? `video frame ${index}` : task.modality;
      const runItem = async () => {
        try {
          return await local.loaded.run(item);
        } catch (err) {
          const e = toInferError(err);
          throw task.items.length > 1 ? new InferError(e.code, `${label}: ${e.message}`, { cause: err }) : e;
        }
      };
      const run = await local.queue.run(runItem, { at: task.deadlineAt, what: "the task's deadline" }, `${task.id} (${label})`);
      answer.itemResults.push(run.value.result);
      answer.queueMs += run.queueMs;
      answer.computeMs += run.computeMs;
      answer.itemComputeMs.push(run.computeMs);
    }
    return answer;
  }

  async close(): Promise<void> {
    const models = [...new Set(this.byPath.values())];
    for (const m of models) m.queue.close('the edge agent is shutting down');
    await Promise.all(models.map((m) => m.loaded.close()));
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
  const queue = new RunQueue({ label: `local model ${loaded.model.id}@${loaded.variant}`, concurrency: RUNS_PER_MODEL, maxWaiting: Infinity });
  return { loaded, queue, warmup: { input, ms: performance.now() - started } };
}
