/**
 * Admission for one model, on the edge and in the cloud: at most
 * `concurrency` runs at once, at most `maxWaiting` waiting (FIFO), anything
 * beyond refused at once with RESOURCE_EXHAUSTED rather than queued without
 * bound. A waiting run whose deadline passes leaves the queue at that moment
 * with DEADLINE_EXCEEDED: nobody wants its answer any more, and the runs
 * behind it move up. The wait is measured apart from the work, so it is
 * reported as queue time instead of hiding inside compute.
 */
import { InferError } from './errors.js';

export interface RunQueueOptions {
  /** What the queue serves, for messages: `model image-ocr`. */
  label: string;
  concurrency: number;
  /** Infinity where something upstream already bounds the load. */
  maxWaiting: number;
  /** What to do about a full queue, appended to RESOURCE_EXHAUSTED: `retry later or raise limits.maxQueuePerModel`. */
  fullHint?: string;
}

export interface RunDeadline {
  /** performance.now() time after which the run is not worth starting. */
  at: number;
  /** Which deadline it is, for the message: `the request's deadline_ms 200`. */
  what: string;
}

export interface TimedRun<T> {
  value: T;
  /** Time spent waiting for a free slot. */
  queueMs: number;
  /** Time inside `work`. */
  computeMs: number;
}

interface Waiter {
  start(): void;
  refuse(err: InferError): void;
}

export class RunQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private closedReason: string | undefined;

  constructor(private readonly options: RunQueueOptions) {}

  /** Runs admitted and not yet finished, waiting or running. */
  get inFlight(): number {
    return this.running + this.waiting.length;
  }

  /** Runs ahead of a new arrival; a running one counts half, being on average half done. */
  get itemsAhead(): number {
    return this.running / 2 + this.waiting.length;
  }

  /**
   * Runs `work` once a slot is free. `subject` names what waits in messages
   * (a task and its item); without it the queue's label does. An aborted
   * `signal` (the caller went away) takes a waiting run out of the queue
   * with CANCELLED: it never runs.
   */
  async run<T>(work: () => Promise<T>, deadline?: RunDeadline, subject = this.options.label, signal?: AbortSignal): Promise<TimedRun<T>> {
    const enqueued = performance.now();
    await this.admit(enqueued, deadline, subject, signal);
    const started = performance.now();
    try {
      const value = await work();
      return { value, queueMs: started - enqueued, computeMs: performance.now() - started };
    } finally {
      this.running--;
      this.waiting.shift()?.start();
    }
  }

  /** Refuses new runs and those still waiting with UNAVAILABLE; running ones finish. For shutting down. */
  close(reason: string): void {
    this.closedReason = reason;
    for (const waiter of this.waiting.splice(0)) waiter.refuse(this.closedError(reason));
  }

  private admit(enqueued: number, deadline: RunDeadline | undefined, subject: string, signal: AbortSignal | undefined): Promise<void> {
    const { label, concurrency, maxWaiting, fullHint } = this.options;
    if (this.closedReason !== undefined) return Promise.reject(this.closedError(this.closedReason));
    if (signal?.aborted) return Promise.reject(cancelledError(subject));
    if (this.running < concurrency) {
      this.running++;
      return Promise.resolve();
    }
    if (this.waiting.length >= maxWaiting) {
      return Promise.reject(new InferError('RESOURCE_EXHAUSTED', `${label}: queue is full (${maxWaiting} waiting)${fullHint ? `; ${fullHint}` : ''}`));
    }
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        waiter.refuse(cancelledError(subject));
      };
      const waiter: Waiter = {
        start: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', leave);
          this.running++;
          resolve();
        },
        refuse: (err) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', leave);
          reject(err);
        },
      };
      signal?.addEventListener('abort', leave, { once: true });
      if (deadline) {
        timer = setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          const waitedMs = Math.round(performance.now() - enqueued);
          const where = subject === label ? 'in the queue' : `in the queue of ${label}`;
          waiter.refuse(new InferError('DEADLINE_EXCEEDED', `${subject}: waited ${waitedMs} ms ${where}, busy with earlier requests, until ${deadline.what} passed`));
        }, Math.max(0, deadline.at - performance.now()));
      }
      this.waiting.push(waiter);
    });
  }

  private closedError(reason: string): InferError {
    return new InferError('UNAVAILABLE', `${this.options.label}: ${reason}`);
  }
}

function cancelledError(subject: string): InferError {
  return new InferError('CANCELLED', `${subject}: the caller cancelled it before it ran; not run`);
}
