/**
 * The workload every strategy replays: a seeded mix of text, audio and image
 * requests (images at three resolutions of one scene) arriving as a Poisson
 * process, each with a deadline. The same seed gives the same requests at the
 * same offsets, byte for byte.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultShaping, shapeImage } from '../../edge/offload/image-shaping.js';
import type { Modality, Quality, Site } from '../../edge/request.js';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { makeBenchImages, type BenchImage } from './bench-images.js';

export type OcrKind = 'text' | 'audio' | 'image-640' | 'image-1280' | 'image-1920';
/** The encoder workload's kinds (encoder-workload.ts): an image to embed, by its long side. */
export type EncodeKind = 'encode-640' | 'encode-1280' | 'encode-1920';
export type RequestKind = OcrKind | EncodeKind;

export interface KindSpec {
  kind: OcrKind;
  modality: Modality;
  /** Share of requests of this kind. */
  share: number;
  deadlineMs: number;
}

/**
 * Text and audio are cheap on the device; images are where placement
 * matters. Deadlines grow with the work: roughly twice what the slow (8×)
 * device needs for the input when idle, so a sensible placement meets them
 * and a blind one does not.
 */
export const requestMix: readonly KindSpec[] = [
  { kind: 'text', modality: 'text', share: 0.5, deadlineMs: 1_000 },
  { kind: 'audio', modality: 'audio', share: 0.2, deadlineMs: 3_000 },
  { kind: 'image-640', modality: 'image', share: 0.1, deadlineMs: 5_000 },
  { kind: 'image-1280', modality: 'image', share: 0.1, deadlineMs: 6_000 },
  { kind: 'image-1920', modality: 'image', share: 0.1, deadlineMs: 7_000 },
];

export interface WorkloadRequest {
  index: number;
  /** Offset from the start of the replay. */
  sendAtMs: number;
  kind: RequestKind;
  modality: Modality;
  inputs: Record<string, unknown>;
  deadlineMs: number;
  /** What the request asks of a modality beyond its default task (`{ image: 'encode' }`). */
  task?: { image?: 'encode' };
  quality?: { image?: Quality };
  /** The side the request asks for (the warm-up's `prefer: edge`). */
  prefer?: { image?: Site };
  /** The encoder workload's image, by name (its reference label is kept by name). */
  image?: string;
}

/** What each kind's inputs are, and the bytes one puts on the uplink when offloaded as configured by default (1280 px, JPEG q85). */
export interface InputLibrary {
  texts: string[];
  audio: Buffer[];
  images: BenchImage[];
  offloadBytes: Record<OcrKind, number>;
}

export async function loadInputLibrary(imageSeed: number): Promise<InputLibrary> {
  const texts = readFileSync(path.join(packageRoot, 'models', 'text-intent', 'data', 'test.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { text: string }).text);
  const audio = ['speech-en.wav', 'speech-zh.wav'].map((file) => readFileSync(path.join(packageRoot, 'models', 'samples', 'audio', file)));
  const images = await makeBenchImages(imageSeed);
  const shrunk = async (image: BenchImage) => (await shapeImage(image.bytes, defaultShaping({ imageMaxSide: 1280, jpegQuality: 85 }))).payload.length;
  const mean = (values: number[]) => Math.round(values.reduce((sum, v) => sum + v, 0) / values.length);
  const offloadBytes: Record<OcrKind, number> = {
    text: mean(texts.map((text) => Buffer.byteLength(text))),
    audio: mean(audio.map((clip) => clip.length)),
    'image-640': await shrunk(images[0]!),
    'image-1280': await shrunk(images[1]!),
    'image-1920': await shrunk(images[2]!),
  };
  return { texts, audio, images, offloadBytes };
}

export function inputsFor(kind: OcrKind, library: InputLibrary, pick: number): Record<string, unknown> {
  switch (kind) {
    case 'text':
      return { text: library.texts[pick % library.texts.length]! };
    case 'audio':
      return { audio: library.audio[pick % library.audio.length]! };
    default:
      return { image: library.images.find((image) => image.name === kind)!.bytes };
  }
}

export interface WorkloadOptions {
  seed: number;
  requests: number;
  /** Mean gap between arrivals (Poisson process). */
  meanGapMs: number;
}

export function buildWorkload(library: InputLibrary, options: WorkloadOptions): WorkloadRequest[] {
  const random = seededRandom(options.seed);
  const requests: WorkloadRequest[] = [];
  let atMs = 0;
  for (let index = 0; index < options.requests; index++) {
    if (index > 0) atMs += -Math.log(1 - random()) * options.meanGapMs;
    let draw = random();
    const spec = requestMix.find((s) => (draw -= s.share) < 0) ?? requestMix[requestMix.length - 1]!;
    const pick = Math.floor(random() * 1e6);
    requests.push({ index, sendAtMs: Math.round(atMs), kind: spec.kind, modality: spec.modality, inputs: inputsFor(spec.kind, library, pick), deadlineMs: spec.deadlineMs });
  }
  return requests;
}
