/**
 * Image encoders imported from the Keras models nsfwjs ships (MobileNetV2
 * for the edge, InceptionV3 for the cloud; models/image-encoder/): an image
 * becomes an L2-normalised embedding (the backbone's pooled features, 1280-D
 * or 2048-D, which the classifier head reads) and scores over the five
 * classes the models were trained on. Each
 * variant of the family is a different network with one graph, whose input
 * side the handler reads from the graph. Embeddings of different networks
 * live in different spaces and are not comparable; only the labels are.
 *
 * Pre-processing is nsfwjs's own: RGB pixels / 255, bilinear resize to the
 * square input with aligned corners, NHWC.
 */
import sharp from 'sharp';
import { float32, type Tensor } from '../tensor.js';
import { registerHandler, type HandlerContext, type ModelHandler } from './handler.js';
import type { FrameEncoding } from '../video/chunk.js';
import { checkImageInput, decodeImage, measureImage, type RgbImage } from './image-decode.js';

export const ENCODER_LABELS = ['drawing', 'hentai', 'neutral', 'porn', 'sexy'] as const;

export interface EncoderResult {
  /** The graph (network) that answered, e.g. `inception-v3`. */
  model: string;
  /** L2-normalised; comparable only with embeddings of the same model. */
  embedding: number[];
  /** All classes, most likely first. */
  labels: { label: (typeof ENCODER_LABELS)[number]; score: number }[];
  width: number;
  height: number;
}

/** Bilinear resize with aligned corners (tf.image.resizeBilinear(…, true)) of pixels / 255 into `out` at `offset`, side × side × 3 floats. */
function resizeInto(image: RgbImage, side: number, out: Float32Array, offset: number): void {
  const scaleY = side > 1 ? (image.height - 1) / (side - 1) : 0;
  const scaleX = side > 1 ? (image.width - 1) / (side - 1) : 0;
  for (let y = 0; y < side; y++) {
    const sy = y * scaleY;
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, image.height - 1);
    const fy = sy - y0;
    for (let x = 0; x < side; x++) {
      const sx = x * scaleX;
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const at = (yy: number, xx: number) => image.data[(yy * image.width + xx) * 3 + c]!;
        const top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
        const bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
        out[offset + (y * side + x) * 3 + c] = (top + (bottom - top) * fy) / 255;
      }
    }
  }
}

/** The images resized as nsfwjs does, as one [N, side, side, 3] NHWC float tensor. */
export function encoderInput(images: readonly RgbImage[], side: number): Tensor {
  const frame = side * side * 3;
  const out = new Float32Array(images.length * frame);
  images.forEach((image, i) => resizeInto(image, side, out, i * frame));
  return float32([images.length, side, side, 3], out);
}

/** The variant's one graph, its square input side and whether it takes a batch ([N, side, side, 3]) or one image ([1, side, side, 3]). */
function encoderGraph(ctx: HandlerContext): { graph: string; side: number; batches: boolean } {
  const graph = ctx.graphs[0];
  if (!graph || ctx.graphs.length !== 1) throw new Error(`an image-encoder variant has exactly one graph, got [${ctx.graphs.join(', ')}]`);
  const shape = ctx.session(graph).inputs[0]?.shape ?? [];
  const side = shape[1] ?? -1;
  if (shape.length !== 4 || (shape[0] !== -1 && shape[0] !== 1) || side <= 0 || shape[2] !== side || shape[3] !== 3) {
    throw new Error(`graph ${graph} takes ${JSON.stringify(shape)}; an image encoder takes [N, side, side, 3] (import it with splitinfer model import-tfjs)`);
  }
  return { graph, side, batches: shape[0] === -1 };
}

/** The vector scaled to unit length (a zero vector stays zero). */
export function l2Normalised(values: Float32Array): Float32Array {
  let sum = 0;
  for (const v of values) sum += v * v;
  const norm = Math.sqrt(sum) || 1;
  return values.map((v) => v / norm);
}

/** What the encoder made of a batch of images, in their order, with the graph that made it. */
export interface EncodedFrames {
  graph: string;
  encodings: FrameEncoding[];
  computeUs: number;
}

/**
 * Encodes decoded images in one session.run over [N, side, side, 3] (the
 * imported graphs take a free batch dimension; one with a batch of 1 runs
 * image by image): a video chunk is one run, and one image a batch of one.
 */
export async function encodeFrames(images: readonly RgbImage[], ctx: HandlerContext): Promise<EncodedFrames> {
  const { graph, side, batches } = encoderGraph(ctx);
  if (!batches && images.length > 1) {
    const parts = [];
    for (const image of images) parts.push(await encodeFrames([image], ctx));
    return { graph, encodings: parts.flatMap((p) => p.encodings), computeUs: parts.reduce((sum, p) => sum + p.computeUs, 0) };
  }
  const { outputs, computeUs } = await ctx.session(graph).run({ input: encoderInput(images, side) });
  const features = outputs.embedding;
  const probabilities = outputs.probabilities;
  const n = images.length;
  if (
    !(features?.data instanceof Float32Array) ||
    !(probabilities?.data instanceof Float32Array) ||
    features.dims[0] !== n ||
    probabilities.data.length !== n * ENCODER_LABELS.length
  ) {
    throw new Error(
      `graph ${graph} returned ${Object.entries(outputs).map(([name, t]) => `${name} ${JSON.stringify(t.dims)}`).join(', ')} for ${n} images; ` +
        `an image encoder returns float32 'embedding' [N, D] and 'probabilities' [N, 5] (build it with npm run build:image-encoder)`,
    );
  }
  const featureData = features.data;
  const probabilityData = probabilities.data;
  const width = featureData.length / n;
  const encodings = Array.from({ length: n }, (_, i) => ({
    embedding: l2Normalised(featureData.subarray(i * width, (i + 1) * width)),
    probabilities: probabilityData.slice(i * ENCODER_LABELS.length, (i + 1) * ENCODER_LABELS.length),
  }));
  return { graph, encodings, computeUs };
}

/** Class scores over ENCODER_LABELS, most likely first. */
export function sortedLabels(probabilities: Float32Array): EncoderResult['labels'] {
  return ENCODER_LABELS.map((label, i) => ({ label, score: probabilities[i]! })).sort((a, b) => b.score - a.score);
}

/** A photo-sized noisy image: decoding and the resize cost what a real photo costs. */
export async function photoSizedInput(): Promise<Uint8Array> {
  const photo = sharp({ create: { width: 1024, height: 768, channels: 3, background: '#6a8caf', noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
  return new Uint8Array(await photo.jpeg({ quality: 85 }).toBuffer());
}

const imageEncoder: ModelHandler<EncoderResult> = {
  id: 'image-encoder',
  modality: 'image',
  outputs: [
    { name: 'embedding', type: 'float32', shape: [-1] },
    { name: 'probabilities', type: 'float32', shape: [ENCODER_LABELS.length] },
  ],
  checkInput: checkImageInput,
  sizeUnit: 'pixels',
  sizeScaling: 'flat',
  measureInput: measureImage,
  /** The top class's probability. */
  confidence: ({ labels }) => labels[0]?.score,
  async run(input, ctx) {
    const image = await decodeImage(input);
    const { graph, encodings, computeUs } = await encodeFrames([image], ctx);
    const { embedding, probabilities } = encodings[0]!;
    return {
      result: { model: graph, embedding: Array.from(embedding), labels: sortedLabels(probabilities), width: image.width, height: image.height },
      tensors: { embedding: float32([embedding.length], embedding), probabilities: float32([ENCODER_LABELS.length], probabilities) },
      computeUs,
    };
  },
  warmupInput: photoSizedInput,
};

registerHandler(imageEncoder);
