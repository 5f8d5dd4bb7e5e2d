/**
 * The device's own models: the local variant of each configured task's model
 * (each modality's default task, and the image `encode` task), opened and
 * warmed up at start, one LoadedModel per model+variant; and, for tasks with
 * `localReference`, the model's reference variant, opened on first need
 * (edge/local-reference.ts). Local runs of one model wait in its run queue,
 * so the wait is reported as queue time instead of hiding inside compute,
 * and a task whose deadline passes while waiting never runs.
 */
import { loadCatalog, type Catalog, type CatalogModel } from '../shared/catalog.js';
import { InferError } from '../shared/errors.js';
import { SessionShare } from '../shared/ort/session-share.js';
import { loadModel } from '../shared/loaded-model.js';
import type { ModelHandler } from '../shared/handlers/handler.js';
import type { Logger } from '../shared/log.js';
import { allTaskSettings, type EdgeConfig, type TaskSettings } from './config.js';
import { encodeChunk } from '../shared/handlers/video-encoder.js';
import { openLocalModel, type LocalModel } from './local-model.js';
import { LocalReference, systemAvailableMemory, type AvailableMemory } from './local-reference.js';
import { referenceVariant, type ChunkWork, type Task } from './tasks.js';

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

/** Hears the compute time of every local run (the agent's metrics). */
export type LocalRunObserver = (model: string, variant: string, computeMs: number) => void;

interface ReferenceListener {
  hear: (warmup: WarmupRun) => void;
}

export interface LocalRuntimeOptions {
  observeRun?: LocalRunObserver;
  /** What a reference variant's load checks the memory with; default: systeminformation's available memory. */
  availableMemory?: AvailableMemory;
}

export class LocalRuntime {
  /** By task settings path (`image`, `image.encode`; Task.settingsPath). */
  private constructor(
    private readonly byPath: ReadonlyMap<string, LocalModel>,
    /** By task settings path, for the tasks with `localReference`. */
    private readonly references: ReadonlyMap<string, LocalReference>,
    private readonly referenceLoaded: ReferenceListener,
    private readonly observeRun: LocalRunObserver,
  ) {}

  static async open(config: EdgeConfig, log: Logger, catalog: Catalog = loadCatalog(), options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
    const byKey = new Map<string, LocalModel>();
    const byPath = new Map<string, LocalModel>();
    const references = new Map<string, LocalReference>();
    const referencesByModel = new Map<string, LocalReference>();
    // Image and video run the same MobileNetV2 file: one session holds it for both.
    const sessions = new SessionShare({ providers: ['cpu'], intraOpThreads: config.intraOpThreads }, log);
    // A reference loads later, when a task needs it: the listener is set by then (onReferenceLoaded).
    const referenceLoaded: ReferenceListener = { hear: () => undefined };
    try {
      for (const { path, settings } of allTaskSettings(config.modalities)) {
        const model = catalog.models.find((m) => m.id === settings.model);
        if (model && settings.localReference) {
          checkLocalReference(path, settings, model);
          let reference = referencesByModel.get(model.id);
          if (!reference) {
            reference = new LocalReference({
              model,
              variant: referenceVariant,
              sessions,
              reserveBytes: config.memoryReserveMB * 1e6,
              availableMemory: options.availableMemory ?? systemAvailableMemory,
              loaded: (local) => referenceLoaded.hear(warmupRun(local)),
              log,
            });
            referencesByModel.set(model.id, reference);
          }
          references.set(path, reference);
        }
        const { model: modelId, localVariant } = settings;
        if (!localVariant) continue;
        const key = `${modelId}@${localVariant}`;
        let local = byKey.get(key);
        if (!local) {
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
          local = await openLocalModel(await loadModel(model, localVariant, sessions, log));
          byKey.set(key, local);
        }
        byPath.set(path, local);
      }
    } catch (err) {
      await Promise.all([...byKey.values()].map((m) => m.loaded.close()));
      throw err;
    }
    return new LocalRuntime(byPath, references, referenceLoaded, options.observeRun ?? (() => undefined));
  }

  /** The variant this device runs for a task, or undefined when it has none. */
  variantFor(task: Pick<Task, 'settingsPath'>): string | undefined {
    return this.byPath.get(task.settingsPath)?.loaded.variant;
  }

  /** The local variant of each task settings path that has one (`image.encode` → `mobilenet-v2-int8`). */
  variants(): Record<string, string> {
    return Object.fromEntries([...this.byPath].map(([path, local]) => [path, local.loaded.variant]));
  }

  /** The reference variant this device may hold for a task (config `localReference`), loaded or not. */
  reference(task: Pick<Task, 'settingsPath'>): LocalReference | undefined {
    return this.references.get(task.settingsPath);
  }

  /** Hears the timed warm-up run of each reference variant as it is loaded (the estimators' first sample of it). */
  onReferenceLoaded(listener: (warmup: WarmupRun) => void): void {
    this.referenceLoaded.hear = listener;
  }

  /** Runs of the task's local model (`variant`, default the light one) waiting or running (a video chunk counts as one). */
  itemsAhead(task: Pick<Task, 'settingsPath'>, variant?: string): number {
    return this.modelFor(task, variant)?.queue.itemsAhead ?? 0;
  }

  /** One timed warm-up run per local model, to seed its service-time estimate. */
  warmupRuns(): WarmupRun[] {
    return [...new Set(this.byPath.values())].map(warmupRun);
  }

  /** Runs the task's input through its local model (`variant`, default the light one), after what is already waiting for it. */
  async run(task: Task, variant?: string): Promise<LocalAnswer> {
    const local = this.localModel(task, variant);
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

  private modelFor(task: Pick<Task, 'settingsPath'>, variant: string | undefined): LocalModel | undefined {
    const light = this.byPath.get(task.settingsPath);
    if (variant === undefined || variant === light?.loaded.variant) return light;
    const reference = this.references.get(task.settingsPath);
    return reference?.variant === variant ? reference.held() : undefined;
  }

  private localModel(task: Task, variant?: string): LocalModel {
    const local = this.modelFor(task, variant);
    if (local) return local;
    if (variant === undefined) throw new InferError('FAILED_PRECONDITION', `${task.settingsPath} has no local variant on this device (config modalities.${task.settingsPath}.localVariant)`);
    throw new InferError('FAILED_PRECONDITION', `${task.settingsPath}: this device does not hold its ${variant} variant now (config modalities.${task.settingsPath}.localReference)`);
  }

  async close(): Promise<void> {
    const models = [...new Set(this.byPath.values())];
    for (const m of models) m.queue.close('the edge agent is shutting down');
    await Promise.all([...models.map((m) => m.loaded.close()), ...[...new Set(this.references.values())].map((r) => r.close())]);
  }
}

function warmupRun(local: LocalModel): WarmupRun {
  return { model: local.loaded.model.id, handler: local.loaded.handler, variant: local.loaded.variant, ...local.warmup };
}

/**
 * `localReference` holds the catalog model's reference variant beside a
 * lighter local one: refused where there is no such pair.
 */
function checkLocalReference(path: string, settings: TaskSettings, model: CatalogModel): void {
  const setting = `config modalities.${path}.localReference`;
  // A video's chunks are placed one by one against per-sequence state in the cloud; the quality floor does not hold them back.
  if (model.modality === 'video') throw new Error(`${setting} is true, but video tasks do not use a reference held on the device — remove the setting`);
  if (!model.variants[referenceVariant]) {
    throw new Error(`${setting} is true, but model ${model.id} has no reference variant '${referenceVariant}' in the catalog (it has ${Object.keys(model.variants).join(', ')}) — remove the setting`);
  }
  if (!settings.localVariant || settings.localVariant === referenceVariant) {
    throw new Error(
      `${setting} is true, but its localVariant is '${settings.localVariant}', ${settings.localVariant ? 'already the reference' : 'no light variant'}: there is no lighter variant for the reference to stand in for — remove the setting${settings.localVariant ? '' : `, or set localVariant to ${referenceVariant} to hold the reference from the start`}`,
    );
  }
}
