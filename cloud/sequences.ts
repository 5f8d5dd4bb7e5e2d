/**
 * Per-sequence state of sequence models (video-encoder), as Triton's
 * sequence batcher keeps it: a chunk with `sequence_start` opens (or resets)
 * the sequence, later chunks update its state in order, the chunk with
 * `sequence_end` answers the summary and frees it, and a sequence idle for
 * `idleTimeoutMs` is freed too. Sequences are keyed by tenant, model and
 * sequence_id, so two tenants never see each other's state.
 *
 * Bounded: at most `maxSequences` at once (expired ones are evicted before a
 * new one is refused), each holding a summary whose own caps bound it
 * (shared/video/clip-summary.ts). Chunks of one sequence run one after the
 * other in arrival order, so the state is never updated out of order. A chunk
 * that fails leaves the sequence as it was; a failed start leaves none.
 */
import type { Counter, Gauge } from 'prom-client';
import { InferError } from '../shared/errors.js';
import type { SequenceCapability } from '../shared/handlers/handler.js';
import type { SequenceFlags } from '../shared/video/chunk-wire.js';

export interface SequenceConfig {
  /** A sequence with no chunk for this long is freed. */
  idleTimeoutMs: number;
  /** Sequences open at once, across tenants and models. */
  maxSequences: number;
}

export interface SequenceMetrics {
  live: Gauge<'model'>;
  expired: Counter<'model'>;
  /** Approximate bytes of state held by open sequences. */
  bytes: Gauge<'model'>;
}

type Summarizer = ReturnType<SequenceCapability['summarizer']>;

/** What a chunk gets from the sequence's state. */
export interface SequencePosition {
  /** The chunk's index in the sequence, from 0. */
  index: number;
  /** `last` of the previous chunk. */
  previous?: Float32Array;
  /** Time of the previous chunk's last frame. */
  lastTimeMs?: number;
}

/** What a chunk leaves for the state: its result (pooled into the summary), its `last`, and its last frame's time. */
export interface ChunkOutcome {
  result: object;
  last: Float32Array;
  lastTimeMs: number;
}

interface SequenceState {
  model: string;
  nextChunk: number;
  last?: Float32Array;
  lastTimeMs?: number;
  summary: Summarizer;
  lastUsedAt: number;
  /** Roughly what the state holds, bounded by the summary's caps. */
  bytes: number;
  busy: boolean;
  timer?: NodeJS.Timeout;
}

export interface SequenceKey {
  tenant: string;
  model: string;
  id: string;
}

export class SequenceStore {
  private readonly states = new Map<string, SequenceState>();
  /** The tail of each sequence's chain of chunks, so the next one waits for it. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Recently expired keys, so a late chunk hears why its sequence is gone (bounded like the states). */
  private readonly expired = new Set<string>();

  constructor(
    private readonly config: SequenceConfig,
    private readonly metrics?: SequenceMetrics,
  ) {}

  /** Sequences open now. */
  get size(): number {
    return this.states.size;
  }

  /**
   * Runs one chunk of a sequence after the chunks of the same sequence that
   * arrived before it, with the state they left; answers the outcome, and on
   * `end` the summary of the whole sequence.
   */
  run<T extends ChunkOutcome>(
    key: SequenceKey,
    flags: SequenceFlags,
    summarizer: () => Summarizer,
    chunk: (at: SequencePosition) => Promise<T>,
  ): Promise<{ outcome: T; summary?: object }> {
    const k = JSON.stringify([key.tenant, key.model, key.id]);
    const run = (this.chains.get(k) ?? Promise.resolve()).then(() => this.step(k, key, flags, summarizer, chunk));
    const tail = run.catch(() => undefined);
    this.chains.set(k, tail);
    void tail.then(() => this.chains.get(k) === tail && this.chains.delete(k));
    return run;
  }

  /** Frees every sequence and stops their timers (server shutdown). */
  close(): void {
    for (const [k, state] of this.states) this.free(k, state);
    this.expired.clear();
  }

  private async step<T extends ChunkOutcome>(
    k: string,
    key: SequenceKey,
    flags: SequenceFlags,
    summarizer: () => Summarizer,
    chunk: (at: SequencePosition) => Promise<T>,
  ): Promise<{ outcome: T; summary?: object }> {
    let state = this.states.get(k);
    if (flags.start) {
      if (state) this.free(k, state);
      else this.makeRoom(key);
      state = { model: key.model, nextChunk: 0, summary: summarizer(), lastUsedAt: performance.now(), bytes: 0, busy: false };
      this.states.set(k, state);
      this.expired.delete(k);
      this.metrics?.live.inc({ model: key.model });
    } else if (!state) {
      const why = this.expired.has(k)
        ? `expired after ${this.config.idleTimeoutMs} ms without a chunk (sequences.idleTimeoutMs) and its state was freed`
        : 'is not open';
      throw new InferError(
        'INVALID_ARGUMENT',
        `model ${key.model}: sequence '${key.id}' ${why}; must specify the sequence_start flag on the first request of the sequence (the summary then starts again from that chunk)`,
      );
    }
    clearTimeout(state.timer);
    state.busy = true;
    let outcome: T;
    try {
      outcome = await chunk({ index: state.nextChunk, previous: state.last, lastTimeMs: state.lastTimeMs });
    } catch (err) {
      state.busy = false;
      if (flags.start) this.free(k, state);
      else this.arm(k, state);
      throw err;
    }
    state.busy = false;
    state.summary.add(outcome.result);
    state.nextChunk++;
    state.last = outcome.last;
    state.lastTimeMs = outcome.lastTimeMs;
    state.lastUsedAt = performance.now();
    const bytes = state.summary.heldBytes() + outcome.last.byteLength;
    this.metrics?.bytes.inc({ model: state.model }, bytes - state.bytes);
    state.bytes = bytes;
    if (flags.end) {
      const summary = state.summary.summary();
      this.free(k, state);
      return { outcome, summary };
    }
    this.arm(k, state);
    return { outcome };
  }

  /** Room for one more sequence: expired ones go first (their timers may lag a busy event loop); still full is RESOURCE_EXHAUSTED. */
  private makeRoom(key: SequenceKey): void {
    if (this.states.size < this.config.maxSequences) return;
    const now = performance.now();
    for (const [k, state] of this.states) {
      if (!state.busy && now - state.lastUsedAt >= this.config.idleTimeoutMs) this.expire(k, state);
    }
    if (this.states.size >= this.config.maxSequences) {
      throw new InferError(
        'RESOURCE_EXHAUSTED',
        `model ${key.model}: ${this.states.size} sequences are open, the limit sequences.maxSequences; end finished sequences with sequence_end, retry later, or raise the limit`,
      );
    }
  }

  private arm(k: string, state: SequenceState): void {
    // unref: an idle sequence must not keep the process alive.
    state.timer = setTimeout(() => this.expire(k, state), this.config.idleTimeoutMs).unref();
  }

  private expire(k: string, state: SequenceState): void {
    if (this.states.get(k) !== state || state.busy) return;
    this.free(k, state);
    this.expired.add(k);
    if (this.expired.size > this.config.maxSequences) this.expired.delete(this.expired.values().next().value!);
    this.metrics?.expired.inc({ model: state.model });
  }

  private free(k: string, state: SequenceState): void {
    clearTimeout(state.timer);
    if (this.states.get(k) !== state) return;
    this.states.delete(k);
    this.metrics?.live.dec({ model: state.model });
    this.metrics?.bytes.dec({ model: state.model }, state.bytes);
  }
}
