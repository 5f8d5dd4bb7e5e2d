/**
 * A task's reference variant held on the device (config
 * `modalities.<m>.localReference`), for the tasks whose quality floor rules
 * the light local variant out. It is not opened at start: InceptionV3 is a
 * 90 MB file and takes ~270 MB of memory once its session runs, so it is
 * opened on the first task that needs it, and only when the device has that
 * much memory available with `reserveBytes` to spare. A refused or failed
 * load is remembered for `retryAfterMs`: tasks meanwhile are placed without
 * it (and told why) instead of trying again each time.
 */
import { stat } from 'node:fs/promises';
import si from 'systeminformation';
import { resolveSource, type CatalogModel } from '../shared/catalog.js';
import type { SessionShare } from '../shared/ort/session-share.js';
import { loadModel } from '../shared/loaded-model.js';
import type { Logger } from '../shared/log.js';
import { openLocalModel, type LocalModel } from './local-model.js';

/** Bytes of memory the device can give a new process's worth of allocations now (MemAvailable: free plus reclaimable cache). */
export type AvailableMemory = () => Promise<number>;

export const systemAvailableMemory: AvailableMemory = async () => (await si.mem()).available;

/**
 * ORT's memory for a CPU session, per byte of its graph files: InceptionV3
 * (89.6 MB) took 274 MB of available memory once loaded and run once,
 * MobileNetV2 INT8 too little to measure beside its worker thread.
 */
const MEMORY_PER_FILE_BYTE = 3;

/** How long a refused or failed load stands before a task that needs the reference tries again. */
export const REFERENCE_RETRY_MS = 60_000;

const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;

export interface LocalReferenceOptions {
  model: CatalogModel;
  /** The reference variant (the catalog's fp32, which the cloud serves). */
  variant: string;
  /** Where the reference's sessions open (the device's other local models' share). */
  sessions: SessionShare;
  /** Memory that must stay available after loading: config memoryReserveMB. */
  reserveBytes: number;
  availableMemory: AvailableMemory;
  /** Hears each successful load, with its timed warm-up run. */
  loaded: (local: LocalModel) => void;
  log: Logger;
  retryAfterMs?: number;
  clock?: () => number;
}

type State = { kind: 'unloaded' } | { kind: 'loading'; done: Promise<LocalModel | undefined> } | { kind: 'held'; local: LocalModel } | { kind: 'refused'; why: string; at: number };

export class LocalReference {
  private state: State = { kind: 'unloaded' };
  private closed = false;

  constructor(private readonly options: LocalReferenceOptions) {}

  get variant(): string {
    return this.options.variant;
  }

  /** The reference, once loaded. */
  held(): LocalModel | undefined {
    return this.state.kind === 'held' ? this.state.local : undefined;
  }

  /** Why the device does not hold it: a refusal that still stands, or a load under way; undefined when it is held or may be loaded. */
  unavailable(): string | undefined {
    if (this.state.kind === 'loading') return `this device is still loading it`;
    if (this.state.kind !== 'refused' || this.retryDue()) return undefined;
    return this.state.why;
  }

  /** Loads it unless it is held, loading, or refused within the retry time; never rejects (the refusal is logged and remembered). */
  load(): Promise<LocalModel | undefined> {
    switch (this.state.kind) {
      case 'held':
        return Promise.resolve(this.state.local);
      case 'loading':
        return this.state.done;
      case 'refused':
        if (!this.retryDue()) return Promise.resolve(undefined);
    }
    const done = this.open().then(
      (local) => {
        this.state = { kind: 'held', local };
        try {
          this.options.loaded(local);
        } catch (err) {
          this.options.log.warn({ model: this.options.model.id, variant: this.options.variant, err: String(err) }, 'a listener failed on the reference variant loading');
        }
        return local;
      },
      (err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        const { model, variant, log } = this.options;
        log.warn({ model: model.id, variant, why }, `the reference variant is not held on this device; tasks that need it are placed without it`);
        this.state = { kind: 'refused', why, at: this.now() };
        return undefined;
      },
    );
    this.state = { kind: 'loading', done };
    return done;
  }

  async close(): Promise<void> {
    this.closed = true;
    const local = this.state.kind === 'loading' ? await this.state.done : this.held();
    if (!local) return;
    local.queue.close('the edge agent is shutting down');
    await local.loaded.close();
  }

  /** Checks the memory, then opens and times the reference; throws why it cannot. */
  private async open(): Promise<LocalModel> {
    const { model, variant, reserveBytes, sessions, log } = this.options;
    const retry = `tried again after ${Math.round((this.options.retryAfterMs ?? REFERENCE_RETRY_MS) / 1000)} s`;
    const what = `${model.id}'s reference variant ${variant}`;
    let neededBytes = reserveBytes;
    let availableBytes: number;
    try {
      for (const ref of Object.values(model.variants[variant]!.graphs)) neededBytes += MEMORY_PER_FILE_BYTE * (await stat(resolveSource(ref.source))).size;
      availableBytes = await this.options.availableMemory();
    } catch (err) {
      throw new Error(`${what} cannot be sized for loading (${err instanceof Error ? err.message : String(err)}); ${retry}`, { cause: err });
    }
    if (availableBytes < neededBytes) {
      throw new Error(
        `this device has ${mb(availableBytes)} of memory available, and loading ${what} needs ${mb(neededBytes)} (${mb(neededBytes - reserveBytes)} for the model, ${mb(reserveBytes)} to keep spare: config memoryReserveMB); ${retry}`,
      );
    }
    if (this.closed) throw new Error('the edge agent is shutting down');
    log.info({ model: model.id, variant, availableBytes, neededBytes }, 'loading the reference variant for a task whose quality floor rules out the light one');
    try {
      return await openLocalModel(await loadModel(model, variant, sessions, log));
    } catch (err) {
      throw new Error(`loading ${what} failed (${err instanceof Error ? err.message : String(err)}); ${retry}`, { cause: err });
    }
  }

  private retryDue(): boolean {
    return this.state.kind === 'refused' && this.now() - this.state.at >= (this.options.retryAfterMs ?? REFERENCE_RETRY_MS);
  }

  private now(): number {
    return this.options.clock ? this.options.clock() : performance.now();
  }
}
