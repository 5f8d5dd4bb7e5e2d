/**
 * A clip's summary, pooled chunk by chunk without keeping the chunks: the
 * cloud's sequence state holds one, and the edge holds one per video request
 * to merge the answers of both sites. Memory is bounded whatever the clip's
 * length: per graph one running sum, and at most `maxSegments` segments and
 * `maxBoundaries` boundaries — past a cap the first ones are kept and the
 * rest only counted (`truncated`), so a summary never silently looks complete.
 */
import { l2Normalised } from '../handlers/image-encoder.js';
import type { ChunkAnswer, ClipSummary } from './chunk.js';

export interface ClipSummaryCaps {
  maxSegments: number;
  maxBoundaries: number;
  /** Answers ahead of a missing chunk held back to be applied in chunk order; past this, the gap is skipped. */
  maxPending: number;
}

export const defaultClipSummaryCaps: ClipSummaryCaps = { maxSegments: 4096, maxBoundaries: 4096, maxPending: 64 };

interface PooledEmbedding {
  sum: Float64Array;
  frames: number;
}

export class ClipSummaryBuilder {
  private chunks = 0;
  private frames = 0;
  private startMs = Infinity;
  private endMs = -Infinity;
  private readonly pooled = new Map<string, PooledEmbedding>();
  private readonly segments: ClipSummary['segments'] = [];
  private readonly boundaries: number[] = [];
  private droppedSegments = 0;
  private droppedBoundaries = 0;
  /** Whether the last label run seen was kept (so a continuing run extends it) or dropped past the cap. */
  private lastRun: { label: string; kept: boolean } | undefined;
  /** The chunk index expected next; answers of later chunks wait in `pending` (answers from two sites arrive out of order). */
  private nextChunk = 0;
  private readonly pending = new Map<number, ChunkAnswer>();

  constructor(private readonly caps: ClipSummaryCaps = defaultClipSummaryCaps) {}

  /** Adds one chunk's answer; answers may come in any order and from any graph. */
  add(answer: ChunkAnswer): void {
    if (answer.chunk < this.nextChunk || this.pending.has(answer.chunk)) {
      throw new Error(`chunk ${answer.chunk} was added to the clip summary twice`);
    }
    this.pending.set(answer.chunk, answer);
    this.applyReady();
    while (this.pending.size > this.caps.maxPending) this.applyLowestPending();
  }

  /** The summary of every chunk added so far (a chunk still missing is skipped over). */
  summary(): ClipSummary {
    while (this.pending.size > 0) this.applyLowestPending();
    const embeddings = [...this.pooled].map(([model, { sum, frames }]) => ({
      model,
      embedding: Array.from(l2Normalised(Float32Array.from(sum, (v) => v / frames))),
      frames,
    }));
    const empty = this.frames === 0;
    return {
      chunks: this.chunks,
      frames: this.frames,
      startMs: empty ? 0 : this.startMs,
      endMs: empty ? 0 : this.endMs,
      embeddings,
      // The last run lasts to the end of what was seen.
      segments: this.segments.map((s, i) => ({ ...s, ...(i === this.segments.length - 1 && this.lastRun?.kept ? { endMs: Math.max(s.endMs, this.endMs) } : {}) })),
      boundaries: [...this.boundaries],
      ...(this.droppedSegments || this.droppedBoundaries ? { truncated: { segments: this.droppedSegments, boundaries: this.droppedBoundaries } } : {}),
    };
  }

  /** Roughly how many bytes this summary holds (JS numbers and small objects), for the cloud's state gauge. */
  heldBytes(): number {
    let bytes = this.segments.length * 64 + this.boundaries.length * 8;
    for (const { sum } of this.pooled.values()) bytes += sum.byteLength;
    for (const answer of this.pending.values()) bytes += answer.embedding.length * 8 + answer.frameLabels.length * 64;
    return bytes;
  }

  private applyReady(): void {
    for (let next = this.pending.get(this.nextChunk); next; next = this.pending.get(this.nextChunk)) this.apply(next);
  }

  private applyLowestPending(): void {
    this.apply(this.pending.get(Math.min(...this.pending.keys()))!);
    this.applyReady();
  }

  private apply(answer: ChunkAnswer): void {
    this.pending.delete(answer.chunk);
    this.nextChunk = answer.chunk + 1;
    this.chunks++;
    this.frames += answer.frames;
    this.startMs = Math.min(this.startMs, answer.startMs);
    this.endMs = Math.max(this.endMs, answer.endMs);
    // Weighted by frames: a short last chunk counts for what it covers.
    let pooled = this.pooled.get(answer.model);
    if (!pooled) this.pooled.set(answer.model, (pooled = { sum: new Float64Array(answer.embedding.length), frames: 0 }));
    answer.embedding.forEach((v, k) => (pooled.sum[k]! += v * answer.frames));
    pooled.frames += answer.frames;
    for (const { label, timeMs } of answer.frameLabels) {
      if (this.lastRun?.label === label) {
        if (this.lastRun.kept) this.segments[this.segments.length - 1]!.endMs = timeMs;
        continue;
      }
      // A frame stands for the media up to the next one: the run before ends where this one starts.
      if (this.lastRun?.kept) this.segments[this.segments.length - 1]!.endMs = timeMs;
      const kept = this.segments.length < this.caps.maxSegments;
      if (kept) this.segments.push({ label, startMs: timeMs, endMs: timeMs });
      else this.droppedSegments++;
      this.lastRun = { label, kept };
    }
    for (const timeMs of answer.boundaries) {
      if (this.boundaries.length < this.caps.maxBoundaries) this.boundaries.push(timeMs);
      else this.droppedBoundaries++;
    }
  }
}
