/**
 * Triton's dynamic batcher in front of one OrtSession, behind the same
 * `run(feeds)`, so handlers batch without knowing: runs that arrive while the
 * worker is busy, or within `maxQueueDelayUs` of each other, and whose inputs
 * agree on every dimension but the first (a shape bucket), are concatenated
 * along dim 0, run once, and the outputs are split back by rows.
 *
 * Semantics follow Triton's `dynamic_batching` (model_config.proto): a batch
 * holds at most `maxBatchSize` rows; a batch that reaches a preferred size
 * (or the largest that fits) goes at once; otherwise the oldest run waits at
 * most `maxQueueDelayUs` for company; at most `maxQueueSize` runs wait, more
 * are refused with RESOURCE_EXHAUSTED. One batch is at the worker at a time
 * (it runs one at a time anyway), so what arrives meanwhile forms the next.
 * A run that alone fills `maxBatchSize` rows (a 16-frame video chunk) runs alone.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { InferError } from '../errors.js';
import { elementCount, type NumericData, type Tensor } from '../tensor.js';
import type { OrtSession, RunResult } from './session.js';

export interface BatchingOptions {
  /** Most rows (summed leading dims) in one run. */
  maxBatchSize: number;
  /** How long the oldest waiting run may be held for a bigger batch; 0 batches only what queued while the worker was busy. */
  maxQueueDelayUs: number;
  /** Batch sizes (rows) that go at once when reached; empty: only maxBatchSize does. */
  preferredBatchSizes: number[];
  /** Runs waiting for the worker before RESOURCE_EXHAUSTED. */
  maxQueueSize: number;
}

/** Time for the batcher: real by default, a fake one in tests. */
export interface BatchClock {
  /** Milliseconds, as performance.now(). */
  now(): number;
  /** Calls `fire` after `ms`; the returned function cancels it. */
  setTimer(fire: () => void, ms: number): () => void;
}

export const realClock: BatchClock = {
  now: () => performance.now(),
  setTimer(fire, ms) {
    const timer = setTimeout(fire, ms);
    return () => clearTimeout(timer);
  },
};

/** What the runs of one request met at batching sessions: read by the server for the `batch_size` response parameter and queue time. */
export interface BatchRecord {
  /** Most requests that shared one run with this one (1: it ran alone). */
  batchSize: number;
  /** Time spent in batchers' queues, waiting for company or for the worker. */
  waitMs: number;
}

const records = new AsyncLocalStorage<BatchRecord>();

/** Runs `work` and collects what its session runs met at batching sessions (batchSize 1 where none batched). */
export async function recordBatches<T>(work: () => Promise<T>): Promise<{ value: T; batch: BatchRecord }> {
  const batch: BatchRecord = { batchSize: 1, waitMs: 0 };
  const value = await records.run(batch, work);
  return { value, batch };
}

/**
 * Why a graph cannot batch along dim 0, or undefined when it can: every
 * input and output must have a free leading dimension (the batch), since a
 * fixed one (1, or Silero VAD's state [2, batch, 128]) cannot be concatenated
 * and a scalar has no rows.
 */
export function whyNotBatchable(graph: Pick<OrtSession, 'inputs' | 'outputs'>): string | undefined {
  for (const meta of [...graph.inputs, ...graph.outputs]) {
    if (meta.type === 'bytes') return `'${meta.name}' is a string tensor`;
    if (meta.shape[0] !== -1) return `'${meta.name}' has shape ${JSON.stringify(meta.shape)}, without a free leading batch dimension`;
  }
  return undefined;
}

interface Waiting {
  feeds: Record<string, Tensor>;
  rows: number;
  bucket: string;
  enqueuedAt: number;
  record: BatchRecord | undefined;
  resolve(result: RunResult): void;
  reject(err: Error): void;
}

/** The dynamic batcher on its own, over any `run`; `batchingSession` puts it in front of a session. */
export class DynamicBatcher {
  private readonly waiting: Waiting[] = [];
  private busy = false;
  private cancelTimer: (() => void) | undefined;

  constructor(
    private readonly label: string,
    private readonly runBatch: (feeds: Record<string, Tensor>) => Promise<RunResult>,
    private readonly options: BatchingOptions,
    private readonly clock: BatchClock = realClock,
  ) {}

  /** Runs waiting for a batch, for tests and queue gauges. */
  get queued(): number {
    return this.waiting.length;
  }

  async run(feeds: Record<string, Tensor>): Promise<RunResult> {
    const { rows, bucket } = bucketOf(this.label, feeds);
    if (this.waiting.length >= this.options.maxQueueSize) {
      throw new InferError('RESOURCE_EXHAUSTED', `${this.label}: batch queue is full (${this.options.maxQueueSize} waiting); retry later or raise the model's batching.maxQueueSize`);
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ feeds, rows, bucket, enqueuedAt: this.clock.now(), record: records.getStore(), resolve, reject });
      this.schedule();
    });
  }

  /** Sends the next batch when the worker is free and the batch is ready; otherwise waits for whichever comes first: company or the delay. */
  private schedule(): void {
    if (this.busy || this.waiting.length === 0) return;
    const { maxBatchSize, maxQueueDelayUs, preferredBatchSizes } = this.options;
    const head = this.waiting[0]!;
    // Fill from the oldest run's bucket, in arrival order, up to maxBatchSize rows.
    const members: Waiting[] = [];
    let rows = 0;
    let preferredCount = 0;
    let full = false;
    for (const w of this.waiting) {
      if (w.bucket !== head.bucket) continue;
      if (members.length > 0 && rows + w.rows > maxBatchSize) {
        full = true;
        break;
      }
      members.push(w);
      rows += w.rows;
      if (preferredBatchSizes.includes(rows)) preferredCount = members.length;
      if (rows >= maxBatchSize) {
        full = true;
        break;
      }
    }
    const waitedMs = this.clock.now() - head.enqueuedAt;
    if (full || waitedMs * 1000 >= maxQueueDelayUs) return this.dispatch(members);
    // Triton sends the largest preferred size it can form without waiting.
    if (preferredCount > 0) return this.dispatch(members.slice(0, preferredCount));
    this.cancelTimer ??= this.clock.setTimer(
      () => {
        this.cancelTimer = undefined;
        this.schedule();
      },
      maxQueueDelayUs / 1000 - waitedMs,
    );
  }

  private dispatch(members: Waiting[]): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.busy = true;
    const now = this.clock.now();
    for (const m of members) {
      this.waiting.splice(this.waiting.indexOf(m), 1);
      if (m.record) {
        m.record.batchSize = Math.max(m.record.batchSize, members.length);
        m.record.waitMs += now - m.enqueuedAt;
      }
    }
    const feeds = members.length === 1 ? members[0]!.feeds : concatenate(members.map((m) => m.feeds));
    this.runBatch(feeds)
      .then(
        (result) => {
          if (members.length === 1) return members[0]!.resolve(result);
          const parts = split(this.label, result.outputs, members.map((m) => m.rows));
          members.forEach((m, i) => m.resolve({ outputs: parts[i]!, computeUs: result.computeUs }));
        },
        (err: Error) => members.forEach((m) => m.reject(err)),
      )
      .catch((err: Error) => members.forEach((m) => m.reject(err)))
      .finally(() => {
        this.busy = false;
        this.schedule();
      });
  }
}

/** The session with `run` going through a dynamic batcher; everything else (runSequence, health, close) is the session's. */
export function batchingSession(session: OrtSession, options: BatchingOptions, clock: BatchClock = realClock): OrtSession {
  const batcher = new DynamicBatcher(`model ${session.name}`, (feeds) => session.run(feeds), options, clock);
  return { ...session, run: (feeds) => batcher.run(feeds) };
}

/** Rows (the shared leading dim) and shape bucket of one run's feeds; INVALID_ARGUMENT when they cannot be batched as sent. */
function bucketOf(label: string, feeds: Record<string, Tensor>): { rows: number; bucket: string } {
  let rows: number | undefined;
  const parts: string[] = [];
  for (const name of Object.keys(feeds).sort()) {
    const t = feeds[name]!;
    if (t.type === 'bytes' || t.dims.length === 0) throw new InferError('INVALID_ARGUMENT', `${label}: input '${name}' (${t.type} ${JSON.stringify(t.dims)}) has no batch dimension`);
    if (t.data.length !== elementCount(t.dims)) {
      throw new InferError('INVALID_ARGUMENT', `${label}: input '${name}' has ${t.data.length} elements for shape ${JSON.stringify(t.dims)} (${elementCount(t.dims)} expected)`);
    }
    if (rows !== undefined && t.dims[0] !== rows) {
      throw new InferError('INVALID_ARGUMENT', `${label}: inputs disagree on the batch dimension (${rows} against '${name}' ${JSON.stringify(t.dims)}); every input's first dimension is the batch`);
    }
    rows = t.dims[0]!;
    parts.push(`${name}:${t.type}:${t.dims.slice(1).join('x')}`);
  }
  if (rows === undefined) throw new InferError('INVALID_ARGUMENT', `${label}: a run needs at least one input`);
  return { rows, bucket: parts.join('|') };
}

function concatenate(runs: Record<string, Tensor>[]): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const name of Object.keys(runs[0]!)) {
    const tensors = runs.map((r) => r[name]!);
    const first = tensors[0]!;
    const total = tensors.reduce((n, t) => n + t.data.length, 0);
    const data = new (first.data.constructor as new (n: number) => NumericData)(total);
    let offset = 0;
    for (const t of tensors) {
      (data as Float32Array).set(t.data as Float32Array, offset);
      offset += t.data.length;
    }
    out[name] = { type: first.type, dims: [tensors.reduce((n, t) => n + t.dims[0]!, 0), ...first.dims.slice(1)], data };
  }
  return out;
}

function split(label: string, outputs: Record<string, Tensor>, rows: number[]): Record<string, Tensor>[] {
  const total = rows.reduce((a, b) => a + b, 0);
  const parts: Record<string, Tensor>[] = rows.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    if (t.type === 'bytes' || t.dims[0] !== total) {
      throw new InferError(
        'INTERNAL',
        `${label}: output '${name}' has shape ${JSON.stringify(t.dims)} for a batch of ${total} rows; batching needs outputs indexed by the batch dimension — turn batching off for this model`,
      );
    }
    const rowSize = t.data.length / total;
    let row = 0;
    rows.forEach((n, i) => {
      parts[i]![name] = { type: t.type, dims: [n, ...t.dims.slice(1)], data: (t.data as Float32Array).slice(row * rowSize, (row + n) * rowSize) };
      row += n;
    });
  }
  return parts;
}
