/**
 * One chunk's answer from its frames' encodings, the same on both sites: the
 * chunk's labels (mean of the frames' probabilities, each frame weighted by
 * the sampled frames it stands for: a frame the edge's filter kept also
 * answers for the near-copies it dropped), its label timeline (each frame's
 * top label), its embedding (the same weighted mean, unit length) and
 * its shot boundaries (a frame whose embedding moved away from the frame
 * before it). Nothing here re-reads earlier chunks: the previous chunk's last
 * frame embedding is all the state a boundary needs.
 */
import { l2Normalised, sortedLabels } from '../handlers/image-encoder.js';
import type { ChunkAnswer, FrameEncoding } from './chunk.js';

/**
 * Cosine distance between neighbouring frame embeddings above which a frame
 * starts a new shot, per graph, chosen by models/video-encoder/boundary-threshold.ts
 * (48 photo-like scenes × 6 frames: 240 same-scene neighbours — a 1–6 % pan
 * and zoom, fresh noise, JPEG again — and 1128 cuts between scenes) as the
 * round value near the least balanced error:
 * - inception-v3: same scene p95 0.054, max 0.108; cuts min 0.042, p50 0.20.
 *   At 0.07: 1.7 % false cuts, 1.5 % missed.
 * - mobilenet-v2: same p95 0.131; cuts min 0.136. At 0.16: 0.4 % / 0.4 %.
 * - mobilenet-v2-int8: same p95 0.128; cuts min 0.132. At 0.15: 1.7 % / 0.4 %.
 * The scenes come from one generator, so cuts between them are closer than
 * real cuts tend to be; real footage should miss fewer.
 */
export const boundaryThresholds: Readonly<Record<string, number>> = {
  'inception-v3': 0.07,
  'mobilenet-v2': 0.16,
  'mobilenet-v2-int8': 0.15,
};
/** For a graph not measured above (measure it with the script). */
export const defaultBoundaryThreshold = 0.15;

export interface ChunkFrames {
  /** Index of the chunk in its sequence, from 0. */
  chunk: number;
  /** Each frame's time in the media, one per encoding. */
  timesMs: readonly number[];
  /** The graph that made the encodings. */
  graph: string;
  encodings: readonly FrameEncoding[];
  /** The last frame embedding of the previous chunk of the same graph, if any: the first frame's boundary is judged against it. */
  previous?: Float32Array;
  /** Cosine distance that starts a new shot; boundaryThresholds[graph] by default. */
  boundaryThreshold?: number;
  /** How many sampled frames each frame stands for (itself and the ones dropped after it); 1 each by default. */
  weights?: readonly number[];
}

/** Dot product; the cosine of two unit vectors. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`embeddings of different widths (${a.length}, ${b.length}) are from different graphs and cannot be compared`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** The chunk's answer, and the embedding of its last frame (the `previous` of the next chunk of the same graph). */
export function chunkAnswer(frames: ChunkFrames): { answer: ChunkAnswer; last: Float32Array } {
  const { chunk, timesMs, graph, encodings, previous } = frames;
  const n = encodings.length;
  if (n === 0) throw new Error(`chunk ${chunk} has no frames; a chunk needs at least one`);
  if (timesMs.length !== n) throw new Error(`chunk ${chunk} has ${n} frame encodings but ${timesMs.length} frame times`);
  const weights = frames.weights ?? encodings.map(() => 1);
  if (weights.length !== n) throw new Error(`chunk ${chunk} has ${n} frame encodings but ${weights.length} frame weights`);
  const totalWeight = weights.reduce((sum, w) => sum + w, 0);
  const threshold = frames.boundaryThreshold ?? boundaryThresholds[graph] ?? defaultBoundaryThreshold;
  const width = encodings[0]!.embedding.length;
  const embeddingSum = new Float32Array(width);
  const probabilitySum = new Float32Array(encodings[0]!.probabilities.length);
  const frameLabels: ChunkAnswer['frameLabels'] = [];
  const boundaries: number[] = [];
  // A previous embedding of another width is another graph's and says nothing about this one's frames.
  let before = previous?.length === width ? previous : undefined;
  encodings.forEach(({ embedding, probabilities }, i) => {
    const weight = weights[i]!;
    embedding.forEach((v, k) => (embeddingSum[k]! += v * weight));
    probabilities.forEach((v, k) => (probabilitySum[k]! += v * weight));
    const top = sortedLabels(probabilities)[0]!;
    frameLabels.push({ ...top, timeMs: timesMs[i]! });
    if (before && 1 - cosine(before, embedding) > threshold) boundaries.push(timesMs[i]!);
    before = embedding;
  });
  const answer: ChunkAnswer = {
    chunk,
    startMs: timesMs[0]!,
    endMs: timesMs[n - 1]!,
    frames: n,
    model: graph,
    labels: sortedLabels(probabilitySum.map((v) => v / totalWeight)),
    frameLabels,
    embedding: Array.from(l2Normalised(embeddingSum)),
    boundaries,
  };
  return { answer, last: encodings[n - 1]!.embedding };
}
