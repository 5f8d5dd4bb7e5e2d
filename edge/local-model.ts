/**
 * One local model on the device: a loaded catalog variant, the run queue its
 * tasks wait in, and the timed warm-up run that seeds its service-time
 * estimate. The local runtime opens the light variants at start; a task's
 * reference variant (edge/local-reference.ts) is opened the same way, later.
 */
import type { LoadedModel } from '../shared/loaded-model.js';
import { RunQueue } from '../shared/run-queue.js';

/** One session chain computes one input at a time on its worker; more would only queue there. */
const RUNS_PER_MODEL = 1;

export interface LocalModel {
  loaded: LoadedModel;
  queue: RunQueue;
  warmup: { input: Uint8Array; ms: number };
}

/** Times one more warm-up run: the start-up run pays one-off costs, this one seeds the service-time estimate. */
export async function openLocalModel(loaded: LoadedModel): Promise<LocalModel> {
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
