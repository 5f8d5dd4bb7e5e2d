import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { Tensor, TensorMeta } from '../tensor.js';
import { InferError } from '../errors.js';
import { detectProviderHost, selectProviders } from './providers.js';
import { RestartBudget } from './restart-budget.js';
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

/**
 * One ORT session on its own worker thread; `run` never blocks the caller's
 * event loop. A worker that dies (a crash, an exit, a termination) fails the
 * runs it held at once and is started again (restart-budget.ts); meanwhile
 * the session is not serving and runs fail at once with UNAVAILABLE.
 */
export interface OrtSession {
  readonly name: string;
  readonly provider: string;
  readonly inputs: TensorMeta[];
  readonly outputs: TensorMeta[];
  run(feeds: Record<string, Tensor>): Promise<RunResult>;
  /** Runs `steps` in order in one worker round trip, each fed the outputs `plan.carry` names from the step before (sequence.ts). */
  runSequence(steps: Record<string, Tensor>[], plan: SequencePlan): Promise<SequenceResult>;
  /** False while the worker is being restarted, and once closed. */
  serving(): boolean;
  /** `listener` hears every change of `serving()` (health reporting) until the returned function is called. */
  onServingChange(listener: (serving: boolean) => void): () => void;
  close(): Promise<void>;
}

interface Pending {
  resolve: (result: { outputs: unknown; computeUs: number }) => void;
  reject: (err: Error) => void;
}

type Loaded = Extract<FromWorker, { op: 'loaded' }>;

/** A started worker with its session loaded; `exited` settles when the thread is gone, however it went. */
interface RunningWorker {
  thread: Worker;
  exited: Promise<number>;
}

const workers = new WeakMap<OrtSession, () => Worker | undefined>();

/**
 * The thread behind a session now (undefined while it restarts or once
 * closed). For tests that end a real worker the way a crash does
 * (`terminate()`), and for diagnostics; runs go through the session.
 */
export function sessionWorker(session: OrtSession): Worker | undefined {
  return workers.get(session)?.();
}

/** `view` (a lease, session-share.ts) runs on `session`'s worker. */
export function showsWorkerOf(view: OrtSession, session: OrtSession): void {
  workers.set(view, () => sessionWorker(session));
}

async function startWorker(name: string, request: LoadRequest): Promise<{ worker: RunningWorker; loaded: Loaded }> {
  const thread = new Worker(new URL('./worker.js', import.meta.url), { workerData: request });
  const exited = new Promise<number>((resolve) => thread.once('exit', resolve));
  const loaded = await new Promise<Loaded>((resolve, reject) => {
    thread.once('error', reject);
    void exited.then((code) => reject(new InferError('FAILED_PRECONDITION', `model ${name}: the runtime worker exited (code ${code}) while loading ${request.modelPath}`)));
    thread.once('message', (message: FromWorker) => {
      if (message.op === 'loaded') resolve(message);
      else if (message.op === 'load-failed') reject(new InferError('FAILED_PRECONDITION', `model ${name}: ${request.modelPath} failed to load: ${message.message}`));
    });
  }).catch(async (err) => {
    await thread.terminate();
    throw err;
  });
  thread.removeAllListeners('error');
  return { worker: { thread, exited }, loaded };
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
  const first = await startWorker(name, request);
  for (const f of first.loaded.fallbacks) {
    log.warn({ model: name, provider: f.provider, reason: f.reason }, `execution provider ${f.provider} failed to start, falling back`);
  }
  log.info({ model: name, provider: first.loaded.provider, threads: options.intraOpThreads }, 'session ready');

  const pending = new Map<number, Pending>();
  const listeners = new Set<(serving: boolean) => void>();
  const budget = new RestartBudget();
  let current: RunningWorker | undefined;
  let restarting: Promise<void> | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let nextId = 0;
  let closed = false;

  const setServing = (worker: RunningWorker | undefined) => {
    const was = current !== undefined;
    current = worker;
    if (was !== (worker !== undefined)) for (const listener of listeners) listener(worker !== undefined);
  };
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const attach = (worker: RunningWorker) => {
    let crash: Error | undefined;
    worker.thread.on('message', (message: FromWorker) => {
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
    worker.thread.on('error', (err) => (crash = err));
    void worker.exited.then((code) => {
      if (current !== worker) return;
      setServing(undefined);
      if (closed) return failAll(new InferError('UNAVAILABLE', `model ${name}: session closed`));
      const why = crash ? `crashed (${crash.message})` : `exited (code ${code})`;
      failAll(new InferError(crash ? 'INTERNAL' : 'UNAVAILABLE', `model ${name}: the runtime worker ${why} during the run — retry; the worker is being restarted`));
      scheduleRestart(why);
    });
    setServing(worker);
  };
  const scheduleRestart = (why: string) => {
    const { delayMs, spent } = budget.next();
    log.error({ model: name, why, restartInMs: Math.round(delayMs), budgetSpent: spent }, 'runtime worker died: not serving until it is restarted');
    restartTimer = setTimeout(() => {
      restarting = startWorker(name, request).then(
        ({ worker }) => {
          restarting = undefined;
          if (closed) return void worker.thread.terminate();
          attach(worker);
          log.info({ model: name }, 'runtime worker restarted: serving again');
        },
        (err: Error) => {
          restarting = undefined;
          if (!closed) scheduleRestart(`restart failed: ${err.message}`);
        },
      );
    }, delayMs);
    restartTimer.unref();
  };
  const send = <T>(message: (id: number) => ToWorker): Promise<T> => {
    if (closed) return Promise.reject(new InferError('UNAVAILABLE', `model ${name}: session closed`));
    if (!current) return Promise.reject(new InferError('UNAVAILABLE', `model ${name}: the runtime worker is restarting after it died — retry shortly`));
    const { thread } = current;
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as Pending['resolve'], reject });
      thread.postMessage(message(id));
    });
  };
  attach(first.worker);

  const session: OrtSession = {
    name,
    provider: first.loaded.provider,
    inputs: first.loaded.inputs,
    outputs: first.loaded.outputs,
    run: (feeds) => send<RunResult>((id) => ({ op: 'run', id, feeds })),
    runSequence: (steps, plan) => send<SequenceResult>((id) => ({ op: 'run-sequence', id, steps, carry: plan.carry, keep: plan.keep })),
    serving: () => !closed && current !== undefined,
    onServingChange(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(restartTimer);
      await restarting;
      // An exit that already happened is remembered by `exited`, so this never waits for one that will not come.
      const worker = current;
      if (!worker) return;
      worker.thread.postMessage({ op: 'close' } satisfies ToWorker);
      await worker.exited;
    },
  };
  workers.set(session, () => current?.thread);
  return session;
}
