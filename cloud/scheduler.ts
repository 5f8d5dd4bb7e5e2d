import { InferError } from '../shared/errors.js';

export interface Timed<T> {
  value: T;
  queueUs: number;
  computeUs: number;
}

/**
 * Per-model admission: at most `concurrency` requests compute at once, at most
 * `maxQueue` wait (FIFO); anything beyond is refused at once rather than
 * queued without bound. Measures the queue and compute time it reports back
 * to the edge in response parameters.
 */
export class ModelScheduler {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly modelName: string,
    private readonly concurrency: number,
    private readonly maxQueue: number,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  get inFlight(): number {
    return this.running + this.waiting.length;
  }

  async run<T>(work: () => Promise<T>, deadlineMs?: number): Promise<Timed<T>> {
    const enqueued = performance.now();
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueue) {
        throw new InferError('RESOURCE_EXHAUSTED', `model ${this.modelName}: queue is full (${this.maxQueue} waiting); retry later or raise limits.maxQueuePerModel`);
      }
      await new Promise<void>((start) => this.waiting.push(start));
    }
    this.running++;
    const started = performance.now();
    try {
      if (deadlineMs !== undefined && started - enqueued > deadlineMs) {
        throw new InferError('DEADLINE_EXCEEDED', `model ${this.modelName}: waited ${Math.round(started - enqueued)} ms in the queue, past the request's deadline_ms ${deadlineMs}`);
      }
      const value = await work();
      return { value, queueUs: Math.round((started - enqueued) * 1000), computeUs: Math.round((performance.now() - started) * 1000) };
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}
