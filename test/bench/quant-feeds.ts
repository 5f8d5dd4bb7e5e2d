/**
 * What the quantization benchmark times each graph on, at each batch size:
 * real inputs from the shipped held-out data, made by the handlers' own
 * pre-processing (recorded from a real run, models/toolchain/recorded-feeds.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ocrTimingFeeds } from '../../models/image-ocr/timing-feeds.js';
import { heldOutSentencesPath, readSentences } from '../../models/text-intent/sentences.js';
import { getEvaluator } from '../../models/toolchain/evaluator.js';
import { concatFloat32, recordFeeds, type Feeds } from '../../models/toolchain/recorded-feeds.js';
import { heldOutImages } from '../../models/image-encoder/photo-like-images.js';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import { encoderInput } from '../../shared/handlers/image-encoder.js';
import type { LoadedModel } from '../../shared/loaded-model.js';

/** Graph name → batch size → feeds. */
export type TimingFeeds = Record<string, Map<number, Feeds>>;

/** `count` indices spread evenly over `length` items. */
const spread = (length: number, count: number) => Array.from({ length: count }, (_, k) => Math.floor(((k + 0.5) * length) / count));

/** Batch N: N held-out sentences from across the split (all three languages), one row each. */
async function textIntentFeeds(fp32: LoadedModel, batches: readonly number[]): Promise<TimingFeeds> {
  const sentences = readSentences(heldOutSentencesPath);
  const rows: Feeds[] = [];
  for (const i of spread(sentences.length, Math.max(...batches))) rows.push((await recordFeeds(fp32, new TextEncoder().encode(sentences[i]!.text)))['text-intent-mlp']![0]!);
  return { 'text-intent-mlp': new Map(batches.map((b) => [b, { features: concatFloat32(rows.slice(0, b).map((r) => r.features!), 0) }])) };
}

/**
 * Batch N: N streams, each at a different 32 ms frame of the English fixture
 * with the recurrent state the handler had carried there (state is [2, N, 128]).
 */
async function audioVadFeeds(fp32: LoadedModel, batches: readonly number[]): Promise<TimingFeeds> {
  const wav = readFileSync(path.join(getEvaluator('audio-vad').defaultDataPath, 'speech-en.wav'));
  const frames = (await recordFeeds(fp32, new Uint8Array(wav)))['silero-vad']!;
  const chosen = spread(frames.length, Math.max(...batches)).map((i) => frames[i]!);
  const feedsOf = (streams: Feeds[]): Feeds => ({
    input: concatFloat32(streams.map((f) => f.input!), 0),
    state: concatFloat32(streams.map((f) => f.state!), 1),
    sr: streams[0]!.sr!,
  });
  return { 'silero-vad': new Map(batches.map((b) => [b, feedsOf(chosen.slice(0, b))])) };
}

async function imageOcrFeeds(fp32: LoadedModel, batches: readonly number[]): Promise<TimingFeeds> {
  return ocrTimingFeeds(fp32, batches, getEvaluator('image-ocr').defaultDataPath);
}

/** Batch N: N held-out images through the handler's own resize, at the graph's input side. */
async function imageEncoderFeeds(reference: LoadedModel, batches: readonly number[]): Promise<TimingFeeds> {
  const [graph] = reference.context.graphs;
  const side = reference.sessions.get(graph!)!.inputs[0]!.shape[1]!;
  const held = await heldOutImages();
  const images = await Promise.all(spread(held.length, Math.max(...batches)).map((i) => decodeImage(held[i]!.bytes)));
  return { [graph!]: new Map(batches.map((b) => [b, { input: encoderInput(images.slice(0, b), side) }])) };
}

/** By handler id: the feeds of every graph of a model, made with its reference (float) variant. */
export const timingFeeds: Record<string, (fp32: LoadedModel, batches: readonly number[]) => Promise<TimingFeeds>> = {
  'text-intent': textIntentFeeds,
  'audio-vad': audioVadFeeds,
  'image-ocr': imageOcrFeeds,
  'image-encoder': imageEncoderFeeds,
};
