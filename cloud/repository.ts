import { createHash } from 'node:crypto';
import os from 'node:os';
import { findModel, loadCatalog, type Catalog, type CatalogModel } from '../shared/catalog.js';
import { InferError, toInferError } from '../shared/errors.js';
import { loadModel, type LoadedModel } from '../shared/loaded-model.js';
import { SessionShare } from '../shared/ort/session-share.js';
import type { BatchingOptions } from '../shared/ort/batching-session.js';
import type { Logger } from '../shared/log.js';
import type { InferenceMetrics } from '../shared/metrics.js';
import type { OrtSession } from '../shared/ort/session.js';
import { RunQueue } from '../shared/run-queue.js';
import type { CloudConfig, PriorityLevels } from './config.js';
import { modelFingerprint } from './model-fingerprint.js';
import { checkVersionPolicy, pickVersion, type VersionPolicy } from './version-routing.js';
import type { Tenants } from './tenants.js';

/**
 * A KServe model name the server answers to: a whole pipeline, or one of its
 * raw ONNX graphs, in one version. `revision` changes whenever the files
 * behind the version do, so answers cached from an older load are not reused.
 */
export type ServedModel =
  | { kind: 'pipeline'; name: string; version: string; revision: string; loaded: LoadedModel; queue: RunQueue }
  | { kind: 'graph'; name: string; version: string; revision: string; loaded: LoadedModel; session: OrtSession; queue: RunQueue };

/** A served version held by one request from routing to answer; `release` once done, so a replaced version can close. */
export interface Lease {
  served: ServedModel;
  release(): void;
}

/** One load of one version: replaced whole by a reload, closed once the last request holding it is answered. */
interface Generation {
  readonly version: string;
  readonly loaded: LoadedModel;
  /** By served name: the model id first, then its graphs. */
  readonly served: ReadonlyMap<string, ServedModel>;
  leases: number;
  /** Set while retiring: called when the last lease is released. */
  idle?: () => void;
  closed?: Promise<void>;
}

interface LoadedEntry {
  /** Versions in policy order, the default first. */
  readonly generations: ReadonlyMap<string, Generation>;
  readonly policy: VersionPolicy;
  /** What the load read (modelFingerprint), for the poll mode. */
  readonly fingerprint: string;
  /** The last failed reload's reason while the versions loaded before keep serving. */
  lastFailure?: string;
}

/** RepositoryIndex states, Triton's names. */
export interface IndexEntry {
  name: string;
  version: string;
  state: 'READY' | 'UNAVAILABLE' | 'LOADING';
  reason: string;
}

/**
 * The models this server has loaded, by KServe name. A model's versions are
 * catalog variants (config `versions.<id>.variants`, else the one `variant`).
 * Models load, reload and unload while serving: a reload opens and warms
 * every version beside the old ones, then swaps them in one assignment;
 * requests already holding an old version finish on it, and it closes after
 * the last one. A failed load leaves what was serving untouched.
 */
export class ModelRepository {
  private readonly models = new Map<string, LoadedEntry>();
  /** Served name → the model id serving it (a graph two models share is served by the first loaded, then by the other once it is unloaded). */
  private readonly owners = new Map<string, string>();
  /** Models not loaded that the index reports with a reason (a failed first load, an unload). */
  private readonly notLoaded = new Map<string, Omit<IndexEntry, 'name' | 'version'>>();
  /** Replaced generations waiting for their last request, with the promise of their closing. */
  private readonly retiring = new Map<Generation, Promise<void>>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Every version of every model opens its graphs here, so a file two of them run is loaded once. */
  private readonly sessions: SessionShare;
  private listener?: (name: string, serving: boolean) => void;

  private constructor(
    private readonly config: CloudConfig,
    private readonly log: Logger,
    private readonly metrics: InferenceMetrics | undefined,
    private readonly tenants: Tenants | undefined,
    private catalogRead: Catalog,
  ) {
    this.sessions = new SessionShare({ providers: config.providers, intraOpThreads: config.intraOpThreads || os.availableParallelism() }, log);
  }

  /** `tenants` share each model's waiting line fairly; without it, waiting is first come, first served. */
  static async open(config: CloudConfig, log: Logger, metrics?: InferenceMetrics, tenants?: Tenants): Promise<ModelRepository> {
    const repository = new ModelRepository(config, log, metrics, tenants, loadCatalog(config.catalog || undefined));
    const ids = config.models.length > 0 ? config.models : repository.catalogRead.models.map((m) => m.id);
    checkBatching(config.batching, ids);
    checkPriorityLevels('limits', config.limits);
    for (const [id, policy] of Object.entries(config.versions)) {
      if (!ids.includes(id)) throw new Error(`config versions names model '${id}', which this server does not serve; use a catalog model id of: ${ids.join(', ')}`);
      checkVersionPolicy(id, policy);
    }
    try {
      for (const id of ids) await repository.load(id);
    } catch (err) {
      await repository.close();
      throw err;
    }
    return repository;
  }

  /** Every served name, pipelines first, for listings and readiness. */
  names(): string[] {
    const pipelines = [...this.owners.entries()].filter(([name, id]) => name === id).map(([name]) => name);
    return [...pipelines, ...[...this.owners.keys()].filter((name) => !pipelines.includes(name))];
  }

  /** The versions that serve `name`, the default first. */
  versions(name: string): string[] {
    return this.candidates(name).map((g) => g.version);
  }

  /** The served model for a KServe name and optional version (empty: the default), or NOT_FOUND saying what exists. */
  resolve(name: string, version = ''): ServedModel {
    const candidates = this.candidates(name);
    const generation = version === '' ? candidates[0]! : candidates.find((g) => g.version === version);
    return (generation ?? noSuchVersion(name, version, candidates)).served.get(name)!;
  }

  /**
   * The version that answers one request, held until `release`: the one it
   * names, or else the A/B split's pick for `abKey` (version-routing.ts).
   */
  route(name: string, version: string, abKey: string | undefined): Lease {
    const candidates = this.candidates(name);
    const weights = this.models.get(this.owners.get(name)!)!.policy.weights;
    const chosen = version === '' ? pickVersion(candidates.map((g) => g.version), weights, abKey) : version;
    const held = candidates.find((g) => g.version === chosen) ?? noSuchVersion(name, version, candidates);
    held.leases++;
    let released = false;
    return {
      served: held.served.get(name)!,
      release: () => {
        if (released) return;
        released = true;
        if (--held.leases === 0) held.idle?.();
      },
    };
  }

  /** The version that gets a copy of `served`'s requests, if its model has one. */
  shadowOf(served: ServedModel): string | undefined {
    const shadow = this.models.get(this.owners.get(served.name) ?? '')?.policy.shadow;
    return shadow && shadow !== served.version && this.versions(served.name).includes(shadow) ? shadow : undefined;
  }

  /** Whether a served name (in a version; default: the default one) can run now: false while a session it needs restarts its worker after a crash. */
  serving(name: string, version = ''): boolean {
    const model = this.resolve(name, version);
    return model.kind === 'graph' ? model.session.serving() : model.loaded.serving();
  }

  /** Calls `listener` with every served name whose `serving` may have changed: a session went down or came back, a model loaded or unloaded. */
  watchServing(listener: (name: string, serving: boolean) => void): void {
    this.listener = listener;
  }

  /** Requests admitted and not yet answered, across all models and versions, replaced ones included. */
  inFlight(): number {
    const generations = [...[...this.models.values()].flatMap((e) => [...e.generations.values()]), ...this.retiring.keys()];
    let n = 0;
    for (const g of generations) for (const m of g.served.values()) n += m.queue.inFlight;
    return n;
  }

  /** Replaced versions not closed yet (requests still hold them). */
  get retiringCount(): number {
    return this.retiring.size;
  }

  /** Loaded model ids with what their load read, for the poll mode. */
  loadedModels(): { id: string; fingerprint: string; variants: string[] }[] {
    return [...this.models.entries()].map(([id, e]) => ({ id, fingerprint: e.fingerprint, variants: e.policy.variants }));
  }

  /** The repository index: every catalog model, one entry per loaded version, or one saying why it is not loaded. */
  index(readyOnly: boolean): IndexEntry[] {
    const entries: IndexEntry[] = [];
    for (const { id } of this.catalogRead.models) {
      const loaded = this.models.get(id);
      if (loaded) {
        const reason = loaded.lastFailure ? `serving the previous load; the last reload failed: ${loaded.lastFailure}` : '';
        for (const g of loaded.generations.values()) entries.push({ name: id, version: g.version, state: 'READY', reason });
      } else if (!readyOnly) {
        entries.push({ name: id, version: '', ...(this.notLoaded.get(id) ?? { state: 'UNAVAILABLE', reason: 'not loaded' }) });
      }
    }
    return entries;
  }

  /**
   * Loads a catalog model with all its versions, or reloads it when loaded
   * (re-reading the catalog). Throws with the reason when any version fails
   * to load or warm up; a loaded model then keeps serving what it served.
   */
  load(id: string): Promise<void> {
    return this.serialized(id, () => this.loadNow(id));
  }

  /** Stops serving a model; resolves once requests in flight on it are answered and its sessions are closed. */
  unload(id: string): Promise<void> {
    return this.serialized(id, async () => {
      const entry = this.models.get(id);
      if (!entry) throw new InferError('NOT_FOUND', `model '${id}' is not loaded (loaded: ${[...this.models.keys()].join(', ') || 'none'})`);
      this.models.delete(id);
      const { gone, handedOver } = this.release(id);
      this.notLoaded.set(id, { state: 'UNAVAILABLE', reason: 'unloaded' });
      for (const name of gone) this.listener?.(name, false);
      for (const name of handedOver) this.listener?.(name, this.serving(name));
      this.log.info({ model: id }, 'model unloaded');
      await Promise.all([...entry.generations.values()].map((g) => this.retire(g, 'the model was unloaded')));
    });
  }

  async close(): Promise<void> {
    const generations = [...this.models.values()].flatMap((e) => [...e.generations.values()]);
    this.models.clear();
    this.owners.clear();
    // Whatever still holds a replaced version had its drain time already.
    for (const g of this.retiring.keys()) g.idle?.();
    await Promise.all([...generations.map((g) => closeGeneration(g, 'the server is shutting down')), ...this.retiring.values()]);
  }

  private candidates(name: string): Generation[] {
    const id = this.owners.get(name);
    if (id === undefined) {
      const why = this.notLoaded.get(name);
      const state = why ? ` (${why.reason}; RepositoryModelLoad loads it)` : '';
      throw new InferError('NOT_FOUND', `unknown model '${name}'${state}; this server serves: ${this.names().join(', ')}`);
    }
    return [...this.models.get(id)!.generations.values()].filter((g) => g.served.has(name));
  }

  private async loadNow(id: string): Promise<void> {
    const previous = this.models.get(id);
    const started = performance.now();
    if (!previous) this.notLoaded.set(id, { state: 'LOADING', reason: '' });
    let entry: LoadedEntry;
    try {
      const catalog = loadCatalog(this.config.catalog || undefined);
      const model = findModel(catalog, id);
      const policy = this.config.versions[id] ?? { variants: [model.variants[this.config.variant] ? this.config.variant : Object.keys(model.variants)[0]!], weights: {}, shadow: '' };
      const fingerprint = await modelFingerprint(catalog, id, policy.variants);
      entry = { generations: await this.openGenerations(model, policy), policy, fingerprint };
      this.catalogRead = catalog;
    } catch (err) {
      const e = toInferError(err);
      const code = e.code === 'INTERNAL' ? 'FAILED_PRECONDITION' : e.code;
      this.metrics?.modelLoads.inc({ model: id, outcome: 'failure' });
      if (previous) previous.lastFailure = e.message;
      else if (this.catalogRead.models.some((m) => m.id === id)) this.notLoaded.set(id, { state: 'UNAVAILABLE', reason: `load failed: ${e.message}` });
      else this.notLoaded.delete(id);
      this.log.warn({ model: id, err: e.message }, previous ? 'reload failed; the loaded versions keep serving' : 'load failed');
      throw new InferError(code, `model '${id}': ${previous ? 'reload failed, the loaded versions keep serving' : 'load failed'}: ${e.message}`, { cause: err });
    }
    const serves = new Set([...entry.generations.values()].flatMap((g) => [...g.served.keys()]));
    const dropped = previous ? this.release(id, serves) : { gone: [], handedOver: [] };
    this.models.set(id, entry);
    this.notLoaded.delete(id);
    // A graph another model already serves stays with it (the same file: models share a graph name only for the same sha256).
    const names = [...serves].filter((name) => (this.owners.get(name) ?? id) === id);
    for (const name of names) this.owners.set(name, id);
    this.metrics?.modelLoads.inc({ model: id, outcome: 'success' });
    this.log.info({ model: id, versions: entry.policy.variants, loadMs: Math.round(performance.now() - started), reload: Boolean(previous) }, 'model loaded');
    for (const name of [...names, ...dropped.handedOver]) this.listener?.(name, this.serving(name));
    for (const name of dropped.gone) this.listener?.(name, false);
    for (const g of previous?.generations.values() ?? []) void this.retire(g, `version ${g.version} was replaced by a reload`);
  }

  /** Every version of `model` loaded and warmed up, or none (those opened are closed again). */
  private async openGenerations(model: CatalogModel, policy: VersionPolicy): Promise<Map<string, Generation>> {
    const batching = this.config.batching[model.id];
    // Triton's priority levels: the model's batching settings, else the server's limits.
    const levels: PriorityLevels = batching ?? this.config.limits;
    const generations = new Map<string, Generation>();
    try {
      for (const variant of policy.variants) {
        const loaded = await loadModel(model, variant, this.sessions, this.log, batching);
        const revision = createHash('sha256')
          .update(Object.values(model.variants[variant]!.graphs).map((ref) => ref.sha256).join(','))
          .digest('hex')
          .slice(0, 16);
        const served = new Map<string, ServedModel>();
        const generation: Generation = { version: variant, loaded, served, leases: 0 };
        generations.set(variant, generation);
        served.set(model.id, { kind: 'pipeline', name: model.id, version: variant, revision, loaded, queue: this.queue(model.id, loaded.batchedGraphs.length > 0 ? batching : undefined, levels) });
        for (const [graph, session] of loaded.sessions) {
          const graphBatching = loaded.batchedGraphs.includes(graph) ? batching : undefined;
          served.set(graph, { kind: 'graph', name: graph, version: variant, revision, loaded, session, queue: this.queue(graph, graphBatching, levels) });
        }
        for (const session of loaded.sessions.values()) {
          session.onServingChange(() => {
            if (this.models.get(model.id)?.generations.get(variant) !== generation) return;
            for (const name of served.keys()) this.listener?.(name, this.serving(name));
          });
        }
      }
    } catch (err) {
      await Promise.all([...generations.values()].map((g) => closeGeneration(g, 'its load failed')));
      throw err;
    }
    return generations;
  }

  // A batched model lets twice a batch of requests in at once, so one batch
  // can form in pre-processing while the worker runs the other; its
  // maxQueueSize bounds those waiting to get in.
  private queue(name: string, batching: BatchingOptions | undefined, levels: PriorityLevels): RunQueue {
    const { limits } = this.config;
    return new RunQueue({
      label: `model ${name}`,
      concurrency: batching ? Math.max(limits.concurrencyPerModel, 2 * batching.maxBatchSize) : limits.concurrencyPerModel,
      maxWaiting: batching ? batching.maxQueueSize : limits.maxQueuePerModel,
      fullHint: batching ? 'retry later or raise batching.maxQueueSize' : 'retry later or raise limits.maxQueuePerModel',
      ...(this.tenants ? { tenants: this.tenants } : {}),
      priorityLevels: levels.priorityLevels,
      defaultPriorityLevel: levels.defaultPriorityLevel,
    });
  }

  /**
   * Gives up the names `id` serves, but those in `keep`: a graph another
   * loaded model also runs is handed over to it (KServe clients keep
   * calling it by name); the others are gone.
   */
  private release(id: string, keep: ReadonlySet<string> = new Set()): { gone: string[]; handedOver: string[] } {
    const gone: string[] = [];
    const handedOver: string[] = [];
    for (const [name, owner] of [...this.owners]) {
      if (owner !== id || keep.has(name)) continue;
      const heir = [...this.models].find(([other, e]) => other !== id && [...e.generations.values()].some((g) => g.served.has(name)));
      if (heir) {
        this.owners.set(name, heir[0]);
        handedOver.push(name);
      } else {
        this.owners.delete(name);
        gone.push(name);
      }
    }
    return { gone, handedOver };
  }

  /** Closes a replaced generation once no request holds it, or after drainTimeoutMs whatever holds it. */
  private retire(generation: Generation, why: string): Promise<void> {
    const done = (async () => {
      if (generation.leases > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.log.warn({ version: generation.version, leases: generation.leases }, 'replaced version still busy after drainTimeoutMs; closing it');
            resolve();
          }, this.config.drainTimeoutMs);
          generation.idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await closeGeneration(generation, why);
    })();
    this.retiring.set(generation, done);
    return done.finally(() => this.retiring.delete(generation));
  }

  /** Runs `work` after the load or unload of `id` before it, so two never interleave. */
  private serialized<T>(id: string, work: () => Promise<T>): Promise<T> {
    const before = this.locks.get(id) ?? Promise.resolve();
    const result = before.then(work, work);
    const settled = result.catch(() => undefined);
    this.locks.set(id, settled);
    void settled.then(() => this.locks.get(id) === settled && this.locks.delete(id));
    return result;
  }
}

function noSuchVersion(name: string, version: string, candidates: readonly Generation[]): never {
  const serving = candidates.map((g) => `'${g.version}'`).join(', ');
  throw new InferError('NOT_FOUND', `model '${name}' has no version '${version}' here (serving version${candidates.length > 1 ? 's' : ''} ${serving}); leave model_version empty for the default`);
}

function closeGeneration(generation: Generation, why: string): Promise<void> {
  generation.closed ??= (async () => {
    for (const m of generation.served.values()) m.queue.close(why);
    await generation.loaded.close();
  })();
  return generation.closed;
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
