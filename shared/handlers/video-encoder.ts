/**
 * The video encoder: the image encoder's networks (image-encoder.ts) over
 * chunks of sampled frames, one batched session.run per chunk, answered as a
 * ChunkAnswer (shared/video/chunk-answer.ts) whichever site runs it. The
 * cloud serves it as a sequence model (cloud/sequences.ts keeps the clip's
 * state between chunks); the edge encodes frames it decoded itself with
 * `encodeChunk`, without a JPEG round trip. One encoded frame through `run`
 * is a one-frame chunk at time 0: what warm-up and the edge's estimators use.
 */
import type { ChunkAnswer, VideoFrame } from '../video/chunk.js';
import { chunkAnswer } from '../video/chunk-answer.js';
import { chunkFramesInput, chunkTimesInput, chunkWeightsInput } from '../video/chunk-wire.js';
import { ClipSummaryBuilder } from '../video/clip-summary.js';
import { float32 } from '../tensor.js';
import { registerHandler, type HandlerContext, type HandlerOutput, type ModelHandler } from './handler.js';
import { checkImageInput, decodeImage, measureImage } from './image-decode.js';
import { ENCODER_LABELS, encodeFrames, photoSizedInput } from './image-encoder.js';

/** The frames of one chunk; `chunk` is its index in the sequence, `previous` the last frame embedding of the previous chunk of the same graph, `weights` the sampled frames each stands for. */
export async function encodeChunk(
  ctx: HandlerContext,
  frames: readonly VideoFrame[],
  chunk: number,
  previous?: Float32Array,
  weights?: readonly number[],
): Promise<HandlerOutput<ChunkAnswer> & { last: Float32Array }> {
  const { graph, encodings, computeUs } = await encodeFrames(frames, ctx);
  const { answer, last } = chunkAnswer({ chunk, timesMs: frames.map((f) => f.timeMs), graph, encodings, previous, weights });
  const n = encodings.length;
  const width = encodings[0]!.embedding.length;
  const embeddings = new Float32Array(n * width);
  const probabilities = new Float32Array(n * ENCODER_LABELS.length);
  encodings.forEach((e, i) => {
    embeddings.set(e.embedding, i * width);
    probabilities.set(e.probabilities, i * ENCODER_LABELS.length);
  });
  return {
    result: answer,
    tensors: { embedding: float32([n, width], embeddings), probabilities: float32([n, ENCODER_LABELS.length], probabilities) },
    computeUs,
    last,
  };
}

/** Decodes a chunk's encoded frames (JPEG/PNG/WebP), naming a bad one by its index in the chunk. */
async function decodeFrames(items: readonly Uint8Array[], timesMs: readonly number[]): Promise<VideoFrame[]> {
  return Promise.all(items.map(async (bytes, i) => ({ ...(await decodeImage(bytes, `video frame ${i}`)), index: i, timeMs: timesMs[i]! })));
}

const videoEncoder: ModelHandler<ChunkAnswer> = {
  id: 'video-encoder',
  modality: 'video',
  outputs: [
    { name: 'embedding', type: 'float32', shape: [-1, -1] },
    { name: 'probabilities', type: 'float32', shape: [-1, ENCODER_LABELS.length] },
  ],
  checkInput: checkImageInput,
  sizeUnit: 'pixels',
  sizeScaling: 'flat',
  measureInput: measureImage,
  /** The chunk's top label's mean probability. */
  confidence: ({ labels }) => labels[0]?.score,
  async run(input, ctx) {
    const { result, tensors, computeUs } = await encodeChunk(ctx, await decodeFrames([input], [0]), 0);
    return { result, tensors, computeUs };
  },
  warmupInput: photoSizedInput,
  sequence: {
    inputs: [chunkFramesInput, chunkTimesInput, chunkWeightsInput],
    runChunk: async ({ items, timesMs, index, previous, weights }, ctx) => encodeChunk(ctx, await decodeFrames(items, timesMs), index, previous, weights),
    summarizer: () => new ClipSummaryBuilder(),
  },
};

registerHandler(videoEncoder);
