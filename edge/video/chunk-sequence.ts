/**
 * The bookkeeping of one video's chunks while they are in flight: room for
 * a bounded number, their order on the cloud's sequence, and handing their
 * outcomes on in chunk order however they finish.
 */
import type { VideoFrame } from '../../shared/video/chunk.js';
import type { ChunkWork, EdgeEmbedding } from '../tasks.js';

/** What settling a chunk needs to know of its outcome. */
export interface SettledChunk {
  /** Where its answer came from: the edge's last frame embedding is what the next chunk compares with there; a chunk the cloud did not answer leaves its sequence to be started again. */
  answeredBy: 'edge' | 'cloud' | undefined;
}

/** A promise with its resolver, for events other code waits on. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

/**
 * The chunks of one video in flight: room for at most `limit`, their order
 * on the cloud's sequence (a chunk is sent only after the one before was
 * sent or went elsewhere; it starts the sequence again unless the one before
 * was sent there), and the edge's last embedding for the chunk after.
 */
export class ChunkSequence {
  /** Per chunk index: it has been sent to the cloud, runs on the edge, or settled. */
  private readonly passed = new Map<number, ReturnType<typeof signal>>();
  private readonly lastOnEdge = new Map<number, Promise<EdgeEmbedding | undefined>>();
  private readonly settle = new Map<number, (last: EdgeEmbedding | undefined) => void>();
  private lastSentToCloud = -1;
  private inFlight = 0;
  /** Most chunks in flight at once. */
  peakInFlight = 0;
  private roomWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly id: string,
    private readonly limit: number,
  ) {}

  /** Waits for room (or, for a live source, says at once whether there is some). */
  async room(live: boolean): Promise<boolean> {
    if (this.inFlight < this.limit) return true;
    if (live) return false;
    await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    return true;
  }

  work(index: number, frames: VideoFrame[], weights: number[], end: boolean): ChunkWork {
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    const passed = this.signalOf(index);
    this.lastOnEdge.set(index, new Promise((resolve) => this.settle.set(index, resolve)));
    return {
      index,
      frames,
      weights,
      sentBytes: 0,
      turn: () => this.passed.get(index - 1)?.promise ?? Promise.resolve(),
      sequence: () => {
        const start = index === 0 || this.lastSentToCloud !== index - 1;
        this.lastSentToCloud = index;
        passed.fire();
        return { id: this.id, start, end };
      },
      runsOnEdge: passed.fire,
      previousOnEdge: () => this.lastOnEdge.get(index - 1) ?? Promise.resolve(undefined),
    };
  }

  /** A chunk that was never placed: nothing waits for it. */
  skip(index: number): void {
    this.signalOf(index).fire();
    this.lastOnEdge.set(index, Promise.resolve(undefined));
    this.forgetBefore(index);
  }

  settled(index: number, work: ChunkWork, { answeredBy }: SettledChunk): void {
    this.passed.get(index)?.fire();
    this.settle.get(index)?.(answeredBy === 'edge' ? work.lastOnEdge : undefined);
    // The cloud may not hold the sequence (a failed start, a restarted replica): the next chunk sent starts it again.
    if (answeredBy !== 'cloud' && this.lastSentToCloud === index) this.lastSentToCloud = -1;
    this.settle.delete(index);
    this.forgetBefore(index);
    this.inFlight--;
    this.roomWaiters.shift()?.();
    if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private signalOf(index: number): ReturnType<typeof signal> {
    const made = signal();
    this.passed.set(index, made);
    return made;
  }

  /** Only the chunk right after a settled one asks about it: older entries go. */
  private forgetBefore(index: number): void {
    this.passed.delete(index - 1);
    this.lastOnEdge.delete(index - 1);
  }
}

/** Hands items on in index order, however they arrive. */
export class InOrder<T> {
  private next = 0;
  private readonly waiting = new Map<number, T>();
  private waiter: { count: number; resolve: () => void } | undefined;

  constructor(private readonly deliver: (item: T) => void) {}

  put(index: number, item: T): void {
    this.waiting.set(index, item);
    while (this.waiting.has(this.next)) {
      const ready = this.waiting.get(this.next)!;
      this.waiting.delete(this.next++);
      this.deliver(ready);
    }
    if (this.waiter && this.next >= this.waiter.count) this.waiter.resolve();
  }

  /** Resolves once `count` items have been delivered. */
  drained(count: number): Promise<void> {
    if (this.next >= count) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = { count, resolve }));
  }
}
