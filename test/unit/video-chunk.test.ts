/**
 * A video chunk's answer and a clip's summary: shot boundaries where the
 * scene changes and not within a run of frames of one scene (real networks,
 * photo-like scenes), the first frame judged against the previous chunk's
 * last, labels and embeddings pooled; the summary merges label runs across
 * chunks, weights chunks by frames, keeps each graph apart and stays bounded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import { ENCODER_LABELS, encodeFrames } from '../../shared/handlers/image-encoder.js';
import { encodeChunk } from '../../shared/handlers/video-encoder.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { seededRandom } from '../../shared/seeded-random.js';
import type { ChunkAnswer, VideoFrame } from '../../shared/video/chunk.js';
import { boundaryThresholds, chunkAnswer, cosine } from '../../shared/video/chunk-answer.js';
import { ClipSummaryBuilder } from '../../shared/video/clip-summary.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';
import { sceneFrames } from '../../models/video-encoder/scene-frames.js';

const log = createLogger('test-video', 'silent');

/** Frames of two scenes, `perScene` each, 250 ms apart: the cut is at frame `perScene`. */
async function twoScenes(perScene: number): Promise<VideoFrame[]> {
  const [a, b] = await photoLikeImages(2, 7);
  const random = seededRandom(3);
  const encoded = [...(await sceneFrames(a!.bytes, perScene, random)), ...(await sceneFrames(b!.bytes, perScene, random))];
  return Promise.all(encoded.map(async (bytes, index) => ({ ...(await decodeImage(bytes)), index, timeMs: index * 250 })));
}

describe('chunk answers from real encoders', () => {
  const loaded: LoadedModel[] = [];
  let frames: VideoFrame[];

  before(async () => {
    const model = findModel(loadCatalog(), 'video-encoder');
    for (const variant of ['fp32', 'mobilenet-v2-int8']) loaded.push(await loadModel(model, variant, { providers: ['cpu'], intraOpThreads: 2 }, log));
    frames = await twoScenes(4);
  });

  after(() => Promise.all(loaded.map((m) => m.close())));

  test('a cut between two scenes is one boundary at the first frame of the new scene; frames of one scene make none', async () => {
    for (const lm of loaded) {
      const { result, tensors, last } = await encodeChunk(lm.context, frames, 0);
      const graph = lm.context.graphs[0]!;
      assert.equal(result.model, graph);
      assert.deepEqual(result.boundaries, [1000], `${graph}: boundaries at ${result.boundaries}`);
      assert.deepEqual([result.chunk, result.startMs, result.endMs, result.frames], [0, 0, 1750, 8]);
      assert.equal(result.frameLabels.length, 8);
      assert.deepEqual(result.frameLabels.map((l) => l.timeMs), [0, 250, 500, 750, 1000, 1250, 1500, 1750]);
      assert.ok(Math.abs(result.labels.reduce((sum, l) => sum + l.score, 0) - 1) < 1e-5);
      assert.ok(result.labels.every((l, k) => k === 0 || result.labels[k - 1]!.score >= l.score), 'most likely first');
      assert.ok(Math.abs(Math.hypot(...result.embedding) - 1) < 1e-5, 'mean embedding at unit length');
      const width = result.embedding.length;
      assert.deepEqual(tensors.embedding!.dims, [8, width]);
      assert.deepEqual(tensors.probabilities!.dims, [8, ENCODER_LABELS.length]);
      assert.deepEqual(Array.from(last), Array.from((tensors.embedding!.data as Float32Array).subarray(7 * width)), 'last is the last frame embedding');
    }
  });

  test('a batch encodes each frame as a run of that frame alone would', async () => {
    for (const lm of loaded) {
      const batch = await encodeFrames(frames.slice(3, 6), lm.context);
      for (const [i, frame] of frames.slice(3, 6).entries()) {
        const [single] = (await encodeFrames([frame], lm.context)).encodings;
        assert.ok(cosine(single!.embedding, batch.encodings[i]!.embedding) > 0.9999, `${batch.graph} frame ${i}`);
        assert.ok(single!.probabilities.every((p, k) => Math.abs(p - batch.encodings[i]!.probabilities[k]!) < 1e-4));
      }
    }
  });

  test("the first frame is judged against the previous chunk's last frame", async () => {
    for (const lm of loaded) {
      const first = await encodeChunk(lm.context, frames.slice(0, 4), 0);
      assert.deepEqual(first.result.boundaries, []);
      const sameScene = await encodeChunk(lm.context, frames.slice(2, 4), 1, first.last);
      assert.deepEqual(sameScene.result.boundaries, [], 'the same scene continues');
      const cut = await encodeChunk(lm.context, frames.slice(4), 1, first.last);
      assert.deepEqual(cut.result.boundaries, [1000], 'the new scene starts at the chunk’s first frame');
      const alone = await encodeChunk(lm.context, frames.slice(4), 0);
      assert.deepEqual(alone.result.boundaries, [], 'with no previous chunk there is nothing to cut from');
    }
  });

  test('the chunk embedding is the normalised mean of the frames, and the threshold decides', () => {
    const unit = (v: number[]) => Float32Array.from(v, (x) => x / Math.hypot(...v));
    const encodings = [unit([1, 0, 0]), unit([1, 0.1, 0]), unit([0, 1, 0])].map((embedding) => ({ embedding, probabilities: Float32Array.from([0.1, 0.1, 0.6, 0.1, 0.1]) }));
    const { answer, last } = chunkAnswer({ chunk: 2, timesMs: [0, 100, 200], graph: 'g', encodings, boundaryThreshold: 0.5 });
    assert.deepEqual(answer.boundaries, [200]);
    assert.ok(cosine(answer.embedding, unit([2 + 1 / Math.hypot(1, 0.1) - 1, 1 + 0.1 / Math.hypot(1, 0.1), 0])) > 0.9999);
    assert.equal(answer.labels[0]!.label, 'neutral');
    assert.equal(last, encodings[2]!.embedding);
    assert.deepEqual(chunkAnswer({ chunk: 2, timesMs: [0, 100, 200], graph: 'g', encodings, boundaryThreshold: 0.999 }).answer.boundaries, []);
    assert.ok(boundaryThresholds['inception-v3']! > 0 && boundaryThresholds['mobilenet-v2-int8']! > 0);
  });
});

/** A chunk answer with one frame per label at `startMs`, 250 ms apart. */
function answer(chunk: number, startMs: number, labels: string[], embedding: number[], model = 'g', boundaries: number[] = []): ChunkAnswer {
  const frameLabels = labels.map((label, i) => ({ label, score: 0.9, timeMs: startMs + i * 250 }));
  return { chunk, startMs, endMs: startMs + (labels.length - 1) * 250, frames: labels.length, model, labels: [], frameLabels, embedding, boundaries };
}

describe('clip summary', () => {
  test('label runs merge across chunks into contiguous segments: each lasts to the next run, the last to the end of what was seen', () => {
    const builder = new ClipSummaryBuilder();
    builder.add(answer(0, 0, ['neutral', 'neutral', 'drawing'], [1, 0]));
    builder.add(answer(1, 750, ['drawing', 'drawing', 'neutral'], [1, 0], 'g', [1250]));
    const summary = builder.summary();
    assert.deepEqual(summary.segments, [
      { label: 'neutral', startMs: 0, endMs: 500 },
      { label: 'drawing', startMs: 500, endMs: 1250 },
      { label: 'neutral', startMs: 1250, endMs: 1250 },
    ]);
    assert.deepEqual([summary.chunks, summary.frames, summary.startMs, summary.endMs], [2, 6, 0, 1250]);
    assert.deepEqual(summary.boundaries, [1250]);
    assert.equal(summary.truncated, undefined);
  });

  test('embeddings are a frame-weighted mean per graph, at unit length, and graphs never mix', () => {
    const builder = new ClipSummaryBuilder();
    builder.add(answer(0, 0, ['neutral', 'neutral', 'neutral'], [1, 0]));
    builder.add(answer(1, 750, ['neutral'], [0, 1]));
    builder.add(answer(2, 1000, ['neutral', 'neutral'], [0, 0, 1], 'other'));
    const { embeddings } = builder.summary();
    assert.deepEqual(embeddings.map((e) => [e.model, e.frames]), [['g', 4], ['other', 2]]);
    const [x, y] = embeddings[0]!.embedding;
    assert.ok(Math.abs(x! - 3 / Math.hypot(3, 1)) < 1e-6 && Math.abs(y! - 1 / Math.hypot(3, 1)) < 1e-6, '3 frames of [1,0] and 1 of [0,1]');
    assert.deepEqual(embeddings[1]!.embedding, [0, 0, 1]);
  });

  test('answers arriving out of order are applied in chunk order', () => {
    const inOrder = new ClipSummaryBuilder();
    const shuffled = new ClipSummaryBuilder();
    const answers = [answer(0, 0, ['neutral', 'sexy'], [1, 0]), answer(1, 500, ['sexy', 'sexy'], [1, 0]), answer(2, 1000, ['neutral'], [0, 1])];
    answers.forEach((a) => inOrder.add(a));
    for (const i of [2, 0, 1]) shuffled.add(answers[i]!);
    assert.deepEqual(shuffled.summary(), inOrder.summary());
    assert.throws(() => shuffled.add(answers[1]!), /chunk 1 was added to the clip summary twice/);
  });

  test('past its caps a summary keeps the first segments and boundaries and counts the rest', () => {
    const builder = new ClipSummaryBuilder({ maxSegments: 3, maxBoundaries: 2, maxPending: 4 });
    builder.add(answer(0, 0, ['neutral', 'sexy', 'neutral', 'sexy', 'neutral'], [1, 0], 'g', [250, 500, 750, 1000]));
    builder.add(answer(1, 1250, ['neutral', 'drawing'], [1, 0], 'g', [1500]));
    const summary = builder.summary();
    assert.deepEqual(summary.segments.map((s) => s.label), ['neutral', 'sexy', 'neutral']);
    assert.deepEqual(summary.boundaries, [250, 500]);
    assert.deepEqual(summary.truncated, { segments: 3, boundaries: 3 });
    assert.equal(summary.frames, 7, 'frames and the pooled embedding still count every chunk');
  });
});

describe('frame weights', () => {
  const unit = (values: number[]) => Float32Array.from(values);
  const encoding = (probabilities: number[], embedding: number[]) => ({ probabilities: unit(probabilities), embedding: unit(embedding) });
  const twoFrames = [encoding([0.9, 0, 0.1, 0, 0], [1, 0]), encoding([0, 0, 0.2, 0, 0.8], [0, 1])];

  test("a frame that stands for the near-copies the filter dropped counts for them in the chunk's labels and embedding", () => {
    const even = chunkAnswer({ chunk: 0, timesMs: [0, 250], graph: 'g', encodings: twoFrames }).answer;
    const weighted = chunkAnswer({ chunk: 0, timesMs: [0, 250], graph: 'g', encodings: twoFrames, weights: [1, 3] }).answer;
    assert.equal(even.labels[0]!.label, 'drawing');
    assert.ok(Math.abs(even.labels[0]!.score - 0.45) < 1e-6);
    // Frame 1 stands for itself and two dropped copies: (0.8 × 3) / 4.
    assert.deepEqual([weighted.labels[0]!.label, Number(weighted.labels[0]!.score.toFixed(4))], ['sexy', 0.6]);
    assert.ok(weighted.embedding[1]! > weighted.embedding[0]!, 'the embedding leans to the frame that counts for three');
    assert.equal(weighted.frames, 2, 'frames counts the frames encoded');
    assert.throws(() => chunkAnswer({ chunk: 0, timesMs: [0, 250], graph: 'g', encodings: twoFrames, weights: [1] }), /2 frame encodings but 1 frame weights/);
  });
});
