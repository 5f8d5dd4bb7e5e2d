import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { Tensor, TensorMeta } from '../tensor.js';
import { InferError } from '../errors.js';
import { detectProviderHost, selectProviders } from './providers.js';
import { runErrorAdvice } from './run-error.js';
import type { FromWorker, LoadRequest, ToWorker } from './protocol.js';
import type { SequencePlan, SequenceResult } from './sequence.js';

export interface SessionOptions {
  /** Requested execution providers in order of preference, e.g. ['cuda', 'cpu']. */
  providers: string[];
  intraOpThreads: number;
  interOpThreads?: number;
}

export interface RunResult {
  outputs: Record<string, Tensor>;
  /** Time inside session.run on the worker. */
  computeUs: number;
}

/** One ORT session on its own worker thread; `run` never blocks the caller's event loop. */
export interface OrtSession {
  readonly name: string;
  readonly provider: string;
  readonly inputs: TensorMeta[];
  readonly outputs: TensorMeta[];
  run(feeds: Record<string, Tensor>): Promise<RunResult>;
  /** Runs `steps` in order in one worker round trip, each fed the outputs `plan.carry` names from the step before (sequence.ts). */
  runSequence(steps: Record<string, Tensor>[], plan: SequencePlan): Promise<SequenceResult>;
  close(): Promise<void>;
}

interface Pending {
  resolve: (result: { outputs: unknown; computeUs: number }) => void;
  reject: (err: Error) => void;
}

export async function openSession(name: string, modelPath: string, options: SessionOptions, log: Logger): Promise<OrtSession> {
  const selection = selectProviders(options.providers, detectProviderHost());
  for (const s of selection.skipped) {
    log.warn({ model: name, provider: s.provider, reason: s.reason }, `execution provider ${s.provider} unavailable, falling back`);
  }
  const request: LoadRequest = {
    modelPath,
    providers: selection.providers,
    intraOpThreads: options.intraOpThreads,
    interOpThreads: options.interOpThreads ?? 1,
  };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: request });
  const loaded = await new Promise<Extract<FromWorker, { op: 'loaded' }>>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (message: FromWorker) => {
      if (message.op === 'loaded') resolve(message);
      else if (message.op === 'load-failed') reject(new InferError('FAILED_PRECONDITION', `model ${name}: ${modelPath} failed to load: ${message.message}`));
    });
  }).catch(async (err) => {
    await worker.terminate();
    throw err;
  });
  for (const f of loaded.fallbacks) {
    log.warn({ model: name, provider: f.provider, reason: f.reason }, `execution provider ${f.provider} failed to start, falling back`);
  }
  log.info({ model: name, provider: loaded.provider, threads: options.intraOpThreads }, 'session ready');

  const pending = new Map<number, Pending>();
  let nextId = 0;
  let closed = false;
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.on('message', (message: FromWorker) => {
    if (message.op !== 'result' && message.op !== 'sequence-result' && message.op !== 'error') return;
    const p = pending.get(message.id);
    if (!p) return;
    pending.delete(message.id);
    if (message.op !== 'error') p.resolve({ outputs: message.outputs, computeUs: message.computeUs });
    else {
      const advice = runErrorAdvice[message.code];
      p.reject(new InferError(message.code, `model ${name}: ${message.message.trim()}${advice ? ` — ${advice}` : ''}`));
    }
  });
  const send = <T>(message: (id: number) => ToWorker): Promise<T> => {
    if (closed) return Promise.reject(new InferError('UNAVAILABLE', `model ${name}: session closed`));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as Pending['resolve'], reject });
      worker.postMessage(message(id));
    });
  };
  worker.on('error', (err) => failAll(new InferError('INTERNAL', `model ${name}: runtime worker crashed: ${err.message}`)));
  worker.on('exit', () => failAll(new InferError('UNAVAILABLE', `model ${name}: session closed`)));

  return {
    name,
    provider: loaded.provider,
    inputs: loaded.inputs,
    outputs: loaded.outputs,
    run: (feeds) => send<RunResult>((id) => ({ op: 'run', id, feeds })),
    runSequence: (steps, plan) => send<SequenceResult>((id) => ({ op: 'run-sequence', id, steps, carry: plan.carry, keep: plan.keep })),
    async close() {
      if (closed) return;
      closed = true;
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ op: 'close' });
      await exited;
    },
  };
}
