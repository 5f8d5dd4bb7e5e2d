import os from 'node:os';
import { findModel, loadCatalog, type Catalog } from '../shared/catalog.js';
import { InferError } from '../shared/errors.js';
import { loadModel, type LoadedModel } from '../shared/loaded-model.js';
import type { BatchingOptions } from '../shared/ort/batching-session.js';
import type { Logger } from '../shared/log.js';
import type { OrtSession } from '../shared/ort/session.js';
import { RunQueue } from '../shared/run-queue.js';
import type { CloudConfig, PriorityLevels } from './config.js';
import type { Tenants } from './tenants.js';

/** A KServe model name the server answers to: a whole pipeline, or one of its raw ONNX graphs. */
export type ServedModel =
  | { kind: 'pipeline'; name: string; version: string; loaded: LoadedModel; queue: RunQueue }
  | { kind: 'graph'; name: string; version: string; loaded: LoadedModel; session: OrtSession; queue: RunQueue };

/** The models this server has loaded, by KServe name; versions are catalog variant names. */
export class ModelRepository {
  private constructor(
    readonly catalog: Catalog,
    private readonly served: Map<string, ServedModel>,
    private readonly loaded: LoadedModel[],
  ) {}

  /** `tenants` share each model's waiting line fairly; without it, waiting is first come, first served. */
  static async open(config: CloudConfig, log: Logger, tenants?: Tenants): Promise<ModelRepository> {
    const catalog = loadCatalog(config.catalog || undefined);
    const ids = config.models.length > 0 ? config.models : catalog.models.map((m) => m.id);
    const intraOpThreads = config.intraOpThreads || os.availableParallelism();
    const served = new Map<string, ServedModel>();
    const loaded: LoadedModel[] = [];
    checkBatching(config.batching, ids);
    checkPriorityLevels('limits', config.limits);
    // A batched model lets twice a batch of requests in at once, so one batch
    // can form in pre-processing while the worker runs the other; its
    // maxQueueSize bounds those waiting to get in.
    const queue = (name: string, batching: BatchingOptions | undefined, levels: PriorityLevels) =>
      new RunQueue({
        label: `model ${name}`,
        concurrency: batching ? Math.max(config.limits.concurrencyPerModel, 2 * batching.maxBatchSize) : config.limits.concurrencyPerModel,
        maxWaiting: batching ? batching.maxQueueSize : config.limits.maxQueuePerModel,
        fullHint: batching ? 'retry later or raise batching.maxQueueSize' : 'retry later or raise limits.maxQueuePerModel',
        ...(tenants ? { tenants } : {}),
        priorityLevels: levels.priorityLevels,
        defaultPriorityLevel: levels.defaultPriorityLevel,
      });
    try {
      for (const id of ids) {
        const model = findModel(catalog, id);
        const variant = model.variants[config.variant] ? config.variant : Object.keys(model.variants)[0]!;
        const batching = config.batching[id];
        const levels = batching ?? config.limits;
        const lm = await loadModel(model, variant, { providers: config.providers, intraOpThreads }, log, batching);
        loaded.push(lm);
        served.set(id, { kind: 'pipeline', name: id, version: variant, loaded: lm, queue: queue(id, lm.batchedGraphs.length > 0 ? batching : undefined, levels) });
        for (const [graph, session] of lm.sessions) {
          // A graph two models share (the catalog allows it for the same file) is served under its name once, by the first.
          if (!served.has(graph)) {
            const graphBatching = lm.batchedGraphs.includes(graph) ? batching : undefined;
            served.set(graph, { kind: 'graph', name: graph, version: variant, loaded: lm, session, queue: queue(graph, graphBatching, levels) });
          }
        }
      }
    } catch (err) {
      await Promise.all(loaded.map((m) => m.close()));
      throw err;
    }
    return new ModelRepository(catalog, served, loaded);
  }

  /** Every served name, pipelines first, for listings and readiness. */
  names(): string[] {
    return [...this.served.keys()];
  }

  /** The served model for a KServe name and optional version, or NOT_FOUND saying what exists. */
  resolve(name: string, version = ''): ServedModel {
    const model = this.served.get(name);
    if (!model) {
      throw new InferError('NOT_FOUND', `unknown model '${name}'; this server serves: ${this.names().join(', ')}`);
    }
    if (version !== '' && version !== model.version) {
      throw new InferError('NOT_FOUND', `model '${name}' has no version '${version}' here (serving version '${model.version}'); leave model_version empty for the default`);
    }
    return model;
  }

  /** Whether a served name can run now: false while a session it needs restarts its worker after a crash. */
  serving(name: string): boolean {
    const model = this.resolve(name);
    return model.kind === 'graph' ? model.session.serving() : model.loaded.serving();
  }

  /** Calls `listener` with every served name whose `serving` may have changed (a session behind it went down or came back). */
  watchServing(listener: (name: string, serving: boolean) => void): void {
    for (const lm of this.loaded) {
      const names = [...this.served.values()].filter((m) => m.loaded === lm).map((m) => m.name);
      for (const session of lm.sessions.values()) session.onServingChange(() => names.forEach((name) => listener(name, this.serving(name))));
    }
  }

  /** Requests admitted and not yet answered, across all models. */
  inFlight(): number {
    let n = 0;
    for (const m of this.served.values()) n += m.queue.inFlight;
    return n;
  }

  async close(): Promise<void> {
    for (const m of this.served.values()) m.queue.close('the server is shutting down');
    await Promise.all(this.loaded.map((m) => m.close()));
  }
}

/** Batching settings must name served models, with preferred sizes a batch can reach, and a default priority among their levels. */
function checkBatching(batching: CloudConfig['batching'], ids: readonly string[]): void {
  for (const [id, options] of Object.entries(batching)) {
    if (!ids.includes(id)) throw new Error(`config batching names model '${id}', which this server does not serve; use a catalog model id of: ${ids.join(', ')}`);
    const tooBig = options.preferredBatchSizes.filter((n) => n > options.maxBatchSize);
    if (tooBig.length > 0) {
      throw new Error(`config batching.${id}.preferredBatchSizes ${JSON.stringify(tooBig)} exceed maxBatchSize ${options.maxBatchSize}; a batch never grows past maxBatchSize`);
    }
    checkPriorityLevels(`batching.${id}`, options);
  }
}

/** Triton's rule: with levels, the default is one of them (1 … priorityLevels). */
function checkPriorityLevels(setting: string, options: PriorityLevels): void {
  const { priorityLevels, defaultPriorityLevel } = options;
  if (priorityLevels > 0 && (defaultPriorityLevel < 1 || defaultPriorityLevel > priorityLevels)) {
    throw new Error(`config ${setting}.defaultPriorityLevel ${defaultPriorityLevel} is not one of its ${priorityLevels} priorityLevels; set it to 1 … ${priorityLevels} (1 is served first)`);
  }
}
