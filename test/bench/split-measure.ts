/**
 * What each split point of InceptionV3 costs, measured on this CPU: the
 * head's and tail's time (onnxruntime-node, one intra-op thread, as the
 * edge and the bench:policy cloud run), the activation's bytes as float32,
 * as INT8 (per-tensor affine: min/max of the tensor, 256 levels) and as
 * compressed INT8 (deflate, brotli), and what INT8 costs in agreement with
 * the unsplit model over the project's evaluation images; beside it, what
 * the edge would upload instead: the image as a JPEG shaped as the policy
 * would, and the time shaping and decoding take.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants, deflateSync, inflateSync } from 'node:zlib';
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema, type ModelProto } from 'onnx-buf';
import { shapeImage, shapingOptionsOf } from '../../edge/offload/image-shaping.js';
import { heldOutImages } from '../../models/image-encoder/photo-like-images.js';
import { nsfwjsModels } from '../../models/image-encoder/nsfwjs-models.js';
import { encodeModel } from '../../models/onnx-graph.js';
import { readModel } from '../../models/toolchain/onnx-model.js';
import { splitVerified } from '../../models/toolchain/split-command.js';
import { untypedValue } from '../../models/toolchain/split.js';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import { encoderInput, l2Normalised } from '../../shared/handlers/image-encoder.js';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { createLogger } from '../../shared/log.js';
import { openSession, type OrtSession } from '../../shared/ort/session.js';
import { packageRoot } from '../../shared/paths.js';
import { percentile } from '../../shared/percentile.js';
import { float32, type Tensor } from '../../shared/tensor.js';

const log = createLogger('bench-split', 'warn');
const heavy = nsfwjsModels['inception-v3'];

/** The stem's output, then each mixed block's concatenation (mixed9_0 and concatenate_* are inside blocks 9 and 10). */
export const splitPoints = ['max_pooling2d_2/pool', ...Array.from({ length: 11 }, (_, i) => `mixed${i}/concat`)];

/** How the activation crosses the link, and what packing it costs on each side. */
export interface ActivationEncoding {
  /** Median bytes per image. */
  bytes: number;
  /** Median time to pack (edge) and unpack (cloud) on this CPU, INT8 quantization included. */
  packMs: number;
  unpackMs: number;
}

export interface SplitPointMeasure {
  at: string;
  dims: number[];
  /** head → tail against the whole model on the toolchain's sample input (bit-exact when 0). */
  maxAbsDiff: number;
  /**
   * Head and tail times as shares of the whole model's, timed in the same
   * rounds (so a load change between points moves all three alike), times
   * the whole model's median over every point: the figures the latency model uses.
   */
  headMs: number;
  tailMs: number;
  /** The medians as timed at this point. */
  timedMs: { whole: number; head: number; tail: number };
  encodings: { float32: ActivationEncoding; int8: ActivationEncoding; 'int8-deflate': ActivationEncoding; 'int8-brotli': ActivationEncoding };
  /** The tail fed the INT8 activation against the whole model: same top-1 label, embedding cosine. */
  int8Agreement: { top1: number; meanCosine: number; minCosine: number };
}

export interface JpegOption {
  name: string;
  maxSide: number;
  jpegQuality: number;
  /** The catalog's accuracy cost of the option (models/catalog.yaml payloadShaping). */
  accuracyCost: number;
  /** Median over the evaluation images. */
  bytes: number;
  /** Median time to shape on this CPU (edge). */
  shapeMs: number;
}

export interface SplitMeasurements {
  images: number;
  /** Median over the points of the whole model's median time (one thread). */
  wholeMs: number;
  /** Decoding the original and resizing it to 299 × 299 × 3 floats (the handler's pre-processing), on either side. */
  preprocessMs: number;
  /** Decoding a shaped 640 px JPEG and resizing it, on the cloud. */
  cloudPreprocessMs: number;
  points: SplitPointMeasure[];
  jpeg: JpegOption[];
}

const median = (values: readonly number[]) => Math.round(percentile(values, 0.5) * 100) / 100;

/** Per-tensor affine UINT8: q = round((x − min) / scale), scale = (max − min) / 255. */
export function quantizeActivation(values: Float32Array): { q: Uint8Array; min: number; scale: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const scale = max > min ? (max - min) / 255 : 1;
  const q = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.round((values[i]! - min) / scale);
  return { q, min, scale };
}

export function dequantizeActivation({ q, min, scale }: { q: Uint8Array; min: number; scale: number }): Float32Array {
  return Float32Array.from(q, (v) => min + v * scale);
}

/** Bytes and median pack/unpack times of each encoding, over one activation per image. */
function encodingsOf(activations: readonly Float32Array[]): SplitPointMeasure['encodings'] {
  const samples = { int8: [] as number[][], deflate: [] as number[][], brotli: [] as number[][] };
  for (const values of activations) {
    let t = performance.now();
    const quantized = quantizeActivation(values);
    const quantizeMs = performance.now() - t;
    t = performance.now();
    dequantizeActivation(quantized);
    const dequantizeMs = performance.now() - t;
    samples.int8.push([quantized.q.length + 8, quantizeMs, dequantizeMs]);
    t = performance.now();
    const deflated = deflateSync(quantized.q, { level: 6 });
    const deflateMs = performance.now() - t;
    t = performance.now();
    inflateSync(deflated);
    samples.deflate.push([deflated.length + 8, quantizeMs + deflateMs, dequantizeMs + performance.now() - t]);
    t = performance.now();
    // Quality 5: brotli's default (11) takes seconds per megabyte, far past what an edge device can spend.
    const brotli = brotliCompressSync(quantized.q, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } });
    const brotliMs = performance.now() - t;
    t = performance.now();
    brotliDecompressSync(brotli);
    samples.brotli.push([brotli.length + 8, quantizeMs + brotliMs, dequantizeMs + performance.now() - t]);
  }
  const summary = (rows: number[][]): ActivationEncoding => ({ bytes: Math.round(median(rows.map((r) => r[0]!))), packMs: median(rows.map((r) => r[1]!)), unpackMs: median(rows.map((r) => r[2]!)) });
  const floatBytes = activations[0]!.length * 4;
  return {
    float32: { bytes: floatBytes, packMs: 0, unpackMs: 0 },
    int8: summary(samples.int8),
    'int8-deflate': summary(samples.deflate),
    'int8-brotli': summary(samples.brotli),
  };
}

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);
const top1 = (p: Float32Array) => p.indexOf(Math.max(...p));

/** Median ms of each session's run on its feeds, the sessions taking turns run by run (the order rotating each round), after one untimed run each. */
async function timeRounds(sessions: readonly OrtSession[], feeds: readonly Record<string, Tensor>[], rounds: number): Promise<number[]> {
  const times = sessions.map(() => [] as number[]);
  for (const [i, session] of sessions.entries()) await session.run(feeds[i]!);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sessions.length; k++) {
      const i = (r + k) % sessions.length;
      times[i]!.push((await sessions[i]!.run(feeds[i]!)).computeUs / 1000);
    }
  }
  return times.map((t) => Math.round(percentile(t, 0.5) * 10) / 10);
}

const open = (name: string, file: string, threads = 1) => openSession(name, file, { providers: ['cpu'], intraOpThreads: threads }, log);

async function closing<T>(sessions: OrtSession[], body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    for (const s of sessions) await s.close();
  }
}

type TimedPoint = Omit<SplitPointMeasure, 'headMs' | 'tailMs'>;

interface PointInputs {
  model: ModelProto;
  at: string;
  /** Where the head and tail files are written for their sessions. */
  dir: string;
  whole: OrtSession;
  /** The image the three graphs are timed on. */
  input: Tensor;
  /** The cut's value on each evaluation image, and the whole model's answer for it. */
  activations: Float32Array[];
  reference: { probabilities: Float32Array; embedding: Float32Array }[];
  rounds: number;
}

/** Splits at `at`, times whole, head and tail in the same rounds, and scores the tail on INT8 activations. */
async function measurePoint({ model, at, dir, whole, input, activations, reference, rounds }: PointInputs): Promise<TimedPoint> {
  const split = await splitVerified(model, at);
  const headFile = path.join(dir, 'head.onnx');
  const tailFile = path.join(dir, 'tail.onnx');
  writeFileSync(headFile, split.head);
  writeFileSync(tailFile, split.tail);
  const head = await open('head', headFile);
  const tail = await open('tail', tailFile);
  return closing([head, tail], async () => {
    const [wholeMs, headMs, tailMs] = (await timeRounds([whole, head, tail], [{ input }, { input }, { [at]: float32(split.cut.dims, activations[0]!) }], rounds)) as [number, number, number];
    let same = 0;
    const cosines: number[] = [];
    for (const [i, activation] of activations.entries()) {
      const { outputs } = await tail.run({ [at]: float32(split.cut.dims, dequantizeActivation(quantizeActivation(activation))) });
      if (top1(outputs.probabilities!.data as Float32Array) === top1(reference[i]!.probabilities)) same++;
      cosines.push(cosine(l2Normalised(outputs.embedding!.data as Float32Array), reference[i]!.embedding));
    }
    return {
      at,
      dims: split.cut.dims,
      maxAbsDiff: split.maxAbsDiff,
      timedMs: { whole: wholeMs, head: headMs, tail: tailMs },
      encodings: encodingsOf(activations),
      int8Agreement: {
        top1: Math.round((same / activations.length) * 1000) / 1000,
        meanCosine: Math.round((cosines.reduce((a, b) => a + b, 0) / activations.length) * 1e5) / 1e5,
        minCosine: Math.round(Math.min(...cosines) * 1e5) / 1e5,
      },
    };
  });
}

export interface MeasureOptions {
  /** Evaluation images to use (all when undefined). */
  images?: number;
  rounds: number;
  progress: (line: string) => void;
}

export async function measureSplitPoints(options: MeasureOptions): Promise<SplitMeasurements> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-bench-split-'));
  try {
    return await measureIn(dir, options);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureIn(dir: string, { images: limit, rounds, progress }: MeasureOptions): Promise<SplitMeasurements> {
  const modelFile = path.join(packageRoot, heavy.onnxFile);
  const model = readModel(modelFile);
  const images = (await heldOutImages()).slice(0, limit);

  // Pre-processing as the handler does it, timed; and the JPEG each shaping option would upload.
  const inputs: Tensor[] = [];
  const preprocessMs: number[] = [];
  for (const image of images) {
    const t = performance.now();
    inputs.push(encoderInput([await decodeImage(image.bytes)], heavy.size));
    preprocessMs.push(performance.now() - t);
  }
  const jpeg: JpegOption[] = [];
  const cloudPreprocessMs: number[] = [];
  // Three of the catalog's options for image-encoder (models/catalog.yaml payloadShaping), from lossless to the smallest upload.
  const catalogOptions = shapingOptionsOf(findModel(loadCatalog(), 'image-encoder'));
  for (const name of ['640px q90', '480px q75', '320px q50']) {
    const option = catalogOptions.find((o) => o.name === name)!;
    const { maxSide } = option;
    // One at a time, for the timing.
    const shaped: Awaited<ReturnType<typeof shapeImage>>[] = [];
    for (const image of images) shaped.push(await shapeImage(image.bytes, option));
    if (maxSide === 640) {
      for (const { payload } of shaped) {
        const t = performance.now();
        encoderInput([await decodeImage(payload)], heavy.size);
        cloudPreprocessMs.push(performance.now() - t);
      }
    }
    jpeg.push({ ...option, bytes: Math.round(median(shaped.map((s) => s.payload.length))), shapeMs: median(shaped.map((s) => s.shaped.prepareMs)) });
  }
  progress(`${images.length} images; pre-processing ${median(preprocessMs)} ms, JPEG ${jpeg.map((j) => `${j.name} ${j.bytes} B`).join(', ')}`);

  // One run of the whole model per image gives the reference answer and every split point's activation.
  const probe = clone(ModelProtoSchema, model);
  for (const at of splitPoints) probe.graph!.output.push(untypedValue(at));
  const probeFile = path.join(dir, 'probe.onnx');
  writeFileSync(probeFile, encodeModel(probe));
  const reference: { probabilities: Float32Array; embedding: Float32Array }[] = [];
  const activations = new Map<string, Float32Array[]>(splitPoints.map((at) => [at, []]));
  const probeSession = await open('probe', probeFile, 2);
  await closing([probeSession], async () => {
    for (const input of inputs) {
      const { outputs } = await probeSession.run({ input });
      reference.push({ probabilities: outputs.probabilities!.data as Float32Array, embedding: l2Normalised(outputs.embedding!.data as Float32Array) });
      for (const at of splitPoints) activations.get(at)!.push(outputs[at]!.data as Float32Array);
    }
  });
  rmSync(probeFile);

  const whole = await open('whole', modelFile);
  const points: TimedPoint[] = [];
  await closing([whole], async () => {
    for (const at of splitPoints) {
      const point = await measurePoint({ model, at, dir, whole, input: inputs[0]!, activations: activations.get(at)!, reference, rounds });
      activations.delete(at);
      points.push(point);
      const e = point.encodings;
      const t = point.timedMs;
      progress(
        `${at} [${point.dims.join(', ')}]: whole ${t.whole} ms, head ${t.head} ms, tail ${t.tail} ms; f32 ${e.float32.bytes} B, int8 ${e.int8.bytes} B, deflate ${e['int8-deflate'].bytes} B, brotli ${e['int8-brotli'].bytes} B; ` +
          `INT8 top-1 ${point.int8Agreement.top1}, cosine ${point.int8Agreement.meanCosine} (min ${point.int8Agreement.minCosine})`,
      );
    }
  });
  const wholeMs = median(points.map((p) => p.timedMs.whole));
  const scaled = (ms: number, p: (typeof points)[number]) => Math.round((ms / p.timedMs.whole) * wholeMs * 10) / 10;
  return {
    images: images.length,
    wholeMs,
    points: points.map((p) => ({ ...p, headMs: scaled(p.timedMs.head, p), tailMs: scaled(p.timedMs.tail, p) })),
    preprocessMs: median(preprocessMs), cloudPreprocessMs: median(cloudPreprocessMs),
    jpeg,
  };
}
