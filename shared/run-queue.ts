/**
 * Admission for one model, on the edge and in the cloud: at most
 * `concurrency` runs at once, at most `maxWaiting` waiting, anything
 * beyond refused at once with RESOURCE_EXHAUSTED rather than queued without
 * bound. A waiting run whose deadline passes leaves the queue at that moment
 * with DEADLINE_EXCEEDED: nobody wants its answer any more, and the runs
 * behind it move up. The wait is measured apart from the work, so it is
 * reported as queue time instead of hiding inside compute.
 *
 * Waiting runs are served by priority level, then fairly across tenants
 * (fair-queue.ts); without tickets every run is one tenant's at one level,
 * which is arrival order. A tenant over its `maxQueuedOf` is refused, and a
 * full queue makes room for a tenant with fewer waiting by refusing the
 * newest run of the tenant with the most, so a flood fills only its own share.
 */
import { InferError } from './errors.js';
import { FairQueue } from './fair-queue.js';

export interface RunQueueOptions {
  /** What the queue serves, for messages: `model image-ocr`. */
  label: string;
  concurrency: number;
  /** Infinity where something upstream already bounds the load. */
  maxWaiting: number;
  /** What to do about a full queue, appended to RESOURCE_EXHAUSTED: `retry later or raise limits.maxQueuePerModel`. */
  fullHint?: string;
  /** Tenants' shares of the waiting line, and how many of a tenant's runs may wait; absent: weight 1, no per-tenant bound. */
  tenants?: { weightOf(tenant: string): number; maxQueuedOf(tenant: string): number };
  /** Triton's priority_levels (0: one level) and default_priority_level, which a ticket's priority 0 or out of range gets. */
  priorityLevels?: number;
  defaultPriorityLevel?: number;
}

/** Who a run is for: its tenant's share of the waiting line and its priority (Triton's: 1 highest, 0 the default). */
export interface QueueTicket {
  tenant: string;
  priority?: number;
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
  tenant: string;
  priority: number;
  start(): void;
  refuse(err: InferError): void;
}

/** Weight of the latest run in the average run time that retry hints come from. */
const runTimeSmoothing = 0.2;

export class RunQueue {
  private running = 0;
  private readonly waiting: FairQueue<Waiter>;
  private closedReason: string | undefined;
  private averageRunMs = 0;
  /** performance.now() at the start of each running run. */
  private readonly startedAt: number[] = [];

  constructor(private readonly options: RunQueueOptions) {
    this.waiting = new FairQueue(options.tenants ? (tenant) => options.tenants!.weightOf(tenant) : undefined);
  }

  /** Runs admitted and not yet finished, waiting or running. */
  get inFlight(): number {
    return this.running + this.waiting.size;
  }

  /** Runs ahead of a new arrival; a running one counts half, being on average half done. */
  get itemsAhead(): number {
    return this.running / 2 + this.waiting.size;
  }

  /**
   * When a slot is likely to free up, a retry hint for RESOURCE_EXHAUSTED:
   * the average run time over the slots; before any run has finished, the
   * age of the oldest running one (it takes at least that long).
   */
  get retryAfterMs(): number {
    const runMs = this.averageRunMs || (this.startedAt.length > 0 ? performance.now() - Math.min(...this.startedAt) : 0);
    return Math.max(1, Math.ceil(runMs / this.options.concurrency));
  }

  /**
   * Runs `work` once a slot is free. `subject` names what waits in messages
   * (a task and its item); without it the queue's label does. `ticket`
   * places it in the waiting line by tenant and priority. An aborted
   * `signal` (the caller went away) takes a waiting run out of the queue
   * with CANCELLED: it never runs.
   */
  async run<T>(work: () => Promise<T>, deadline?: RunDeadline, subject = this.options.label, ticket?: QueueTicket, signal?: AbortSignal): Promise<TimedRun<T>> {
    const enqueued = performance.now();
    await this.admit(enqueued, deadline, subject, ticket, signal);
    const started = performance.now();
    this.startedAt.push(started);
    try {
      const value = await work();
      const runMs = performance.now() - started;
      this.averageRunMs = this.averageRunMs === 0 ? runMs : this.averageRunMs + runTimeSmoothing * (runMs - this.averageRunMs);
      return { value, queueMs: started - enqueued, computeMs: runMs };
    } finally {
      this.startedAt.splice(this.startedAt.indexOf(started), 1);
      this.running--;
      this.waiting.shift()?.start();
    }
  }

  /** Refuses new runs and those still waiting with UNAVAILABLE; running ones finish. For shutting down. */
  close(reason: string): void {
    this.closedReason = reason;
    for (const waiter of this.waiting.drain()) waiter.refuse(this.closedError(reason));
  }

  /** A ticket's level: Triton's rule, 0 or beyond the levels is the default. */
  private levelOf(priority = 0): number {
    const levels = this.options.priorityLevels ?? 0;
    if (levels === 0) return 1;
    return priority >= 1 && priority <= levels ? priority : (this.options.defaultPriorityLevel ?? 1);
  }

  private admit(enqueued: number, deadline: RunDeadline | undefined, subject: string, ticket: QueueTicket | undefined, signal: AbortSignal | undefined): Promise<void> {
    const { label, concurrency, maxWaiting, fullHint } = this.options;
    if (this.closedReason !== undefined) return Promise.reject(this.closedError(this.closedReason));
    if (signal?.aborted) return Promise.reject(cancelledError(subject));
    if (this.running < concurrency) {
      this.running++;
      return Promise.resolve();
    }
    const tenant = ticket?.tenant ?? '';
    const retry = `retry after ~${this.retryAfterMs} ms`;
    const maxQueued = this.options.tenants?.maxQueuedOf(tenant) ?? Infinity;
    if (this.waiting.sizeOf(tenant) >= maxQueued) {
      return Promise.reject(
        new InferError('RESOURCE_EXHAUSTED', `${label}: tenant ${tenant} already has ${maxQueued} requests waiting (its maxQueued); ${retry}, or raise that tenant's maxQueued`, {
          retryAfterMs: this.retryAfterMs,
        }),
      );
    }
    if (this.waiting.size >= maxWaiting) {
      const displaced = this.waiting.displaceableFor(tenant);
      const full = (who: string) =>
        new InferError('RESOURCE_EXHAUSTED', `${label}: queue is full (${maxWaiting} waiting${who}); ${fullHint ?? 'retry later'} (${retry})`, {
          retryAfterMs: this.retryAfterMs,
        });
      if (!displaced) return Promise.reject(full(''));
      this.waiting.remove(displaced);
      displaced.refuse(full(`, most of them tenant ${displaced.tenant}'s, whose newest gave its place to tenant ${tenant}`));
    }
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        this.waiting.remove(waiter);
        waiter.refuse(cancelledError(subject));
      };
      const waiter: Waiter = {
        tenant,
        priority: this.levelOf(ticket?.priority),
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
          this.waiting.remove(waiter);
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
