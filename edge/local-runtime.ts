/**
 * The device's own models: the local variant of each configured task's model
 * (each modality's default task, and the image `encode` task), opened and
 * warmed up at start, one LoadedModel per model+variant. Local runs of one model wait in its
 * run queue, so the wait is reported as queue time instead of hiding inside
 * compute, and a task whose deadline passes while waiting never runs.
 */
import { loadCatalog, type Catalog } from '../shared/catalog.js';
import { InferError } from '../shared/errors.js';
import { loadModel, type LoadedModel } from '../shared/loaded-model.js';
import type { ModelHandler } from '../shared/handlers/handler.js';
import type { Logger } from '../shared/log.js';
import { RunQueue } from '../shared/run-queue.js';
import { allTaskSettings, type EdgeConfig } from './config.js';
import { encodeChunk } from '../shared/handlers/video-encoder.js';
import type { ChunkWork, Task } from './tasks.js';

/** One session chain computes one input at a time on its worker; more would only queue there. */
const RUNS_PER_MODEL = 1;

export interface LocalAnswer {
  result: Record<string, unknown>;
  /** Time spent waiting for a free slot. */
  queueMs: number;
  /** Time inside the model (pre-processing, inference, post-processing). */
  computeMs: number;
  /** computeMs per input item (a video chunk's frames share its time): what the local service-time estimator learns from. */
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

/** Hears the compute time of every local run (the agent's metrics). */
export type LocalRunObserver = (model: string, variant: string, computeMs: number) => void;

export class LocalRuntime {
  /** By task settings path (`image`, `image.encode`; Task.settingsPath). */
  private constructor(
    private readonly byPath: ReadonlyMap<string, LocalModel>,
    private readonly observeRun: LocalRunObserver,
  ) {}

  static async open(config: EdgeConfig, log: Logger, catalog: Catalog = loadCatalog(), observeRun: LocalRunObserver = () => undefined): Promise<LocalRuntime> {
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
    return new LocalRuntime(byPath, observeRun);
  }

  /** The variant this device runs for a task, or undefined when it has none. */
  variantFor(task: Pick<Task, 'settingsPath'>): string | undefined {
    return this.byPath.get(task.settingsPath)?.loaded.variant;
  }

  /** The local variant of each task settings path that has one (`image.encode` → `mobilenet-v2-int8`). */
  variants(): Record<string, string> {
    return Object.fromEntries([...this.byPath].map(([path, local]) => [path, local.loaded.variant]));
  }

  /** Runs of this task's local model waiting or running (a video chunk counts as one). */
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

  /** Runs the task's input through its local model, after what is already waiting for it. */
  async run(task: Task): Promise<LocalAnswer> {
    const local = this.localModel(task);
    const run = await local.queue.run(() => local.loaded.run(task.items[0]!), { at: task.deadlineAt, what: "the task's deadline" }, task.id);
    this.observeRun(local.loaded.model.id, local.loaded.variant, run.computeMs);
    return { result: run.value.result, queueMs: run.queueMs, computeMs: run.computeMs, itemComputeMs: [run.computeMs] };
  }

  /**
   * Encodes a video chunk's decoded frames (no JPEG round trip), once the
   * chunk before has settled: when the edge encoded that one with the same
   * graph, its last frame is what this chunk's first is compared with.
   */
  async runChunk(task: Task, chunk: ChunkWork): Promise<LocalAnswer> {
    const local = this.localModel(task);
    chunk.runsOnEdge();
    const previous = await chunk.previousOnEdge();
    const graph = local.loaded.context.graphs[0];
    const run = await local.queue.run(
      () => encodeChunk(local.loaded.context, chunk.frames, chunk.index, previous?.graph === graph ? previous.embedding : undefined, chunk.weights),
      { at: task.deadlineAt, what: "the chunk's deadline" },
      task.id,
    );
    chunk.lastOnEdge = { graph: run.value.result.model, embedding: run.value.last };
    this.observeRun(local.loaded.model.id, local.loaded.variant, run.computeMs);
    const perFrameMs = run.computeMs / chunk.frames.length;
    return { result: { ...run.value.result }, queueMs: run.queueMs, computeMs: run.computeMs, itemComputeMs: chunk.frames.map(() => perFrameMs) };
  }

  private localModel(task: Task): LocalModel {
    const local = this.byPath.get(task.settingsPath);
    if (!local) throw new InferError('FAILED_PRECONDITION', `${task.settingsPath} has no local variant on this device (config modalities.${task.settingsPath}.localVariant)`);
    return local;
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
