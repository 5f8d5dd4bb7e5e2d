/**
 * The image-encoder workload (issue 10): `task.image: encode` requests of
 * photo-like images at three sizes, each with a quality floor drawn from a
 * mix around the light model's agreement with the reference, arriving as a
 * Poisson process like workload.ts's. Before any replay the bench process
 * runs both variants on every image once: the heavy (fp32 InceptionV3, the
 * cloud's) top-1 label is the reference each answer is judged against, and
 * the light (INT8 MobileNetV2, the edge's) top-1 labels give its measured
 * agreement on this very set, which is what a numeric floor is judged by.
 */
import sharp from 'sharp';
import { defaultShaping, shapeImage } from '../../edge/offload/image-shaping.js';
import type { Quality } from '../../edge/request.js';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { encodeAll } from '../../models/image-encoder/agreement.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { realPhotos, type NamedImage } from '../../models/image-encoder/photo-like-images.js';
import type { EncodeKind, WorkloadOptions, WorkloadRequest } from './workload.js';

/** The light variant the edge answers with (config modalities.image.encode.localVariant's default). */
export const lightVariant = 'mobilenet-v2-int8';

/**
 * Deadlines: the 4×-slowed device answers a free request in a few hundred
 * ms; the cloud path (upload over a 3G/LTE trace, InceptionV3 on one
 * thread) takes about a second or more. They leave room for either side
 * when the link is good and for the edge only when it is not.
 */
export const encodeKindSpecs: readonly { kind: EncodeKind; longSide: number; share: number; deadlineMs: number }[] = [
  { kind: 'encode-640', longSide: 640, share: 0.4, deadlineMs: 2_000 },
  { kind: 'encode-1280', longSide: 1280, share: 0.4, deadlineMs: 2_500 },
  { kind: 'encode-1920', longSide: 1920, share: 0.2, deadlineMs: 3_000 },
];

/**
 * The floors requests ask for: anything (`fast`), a number under the light
 * variant's catalog agreement (0.964: the edge may answer), one over it
 * (only the reference may), and the reference itself (`best`).
 */
export const floorMix: readonly { floor: Quality; share: number }[] = [
  { floor: 'fast', share: 0.3 },
  { floor: 0.9, share: 0.3 },
  { floor: 0.99, share: 0.2 },
  { floor: 'best', share: 0.2 },
];

/** A floor's value as an agreement: `fast` asks for none, `best` for the reference's own. */
export const floorValue = (floor: Quality): number => (floor === 'fast' ? 0 : floor === 'best' ? 1 : floor);

export interface EncoderImage {
  /** `<scene>@<long side>`. */
  name: string;
  kind: EncodeKind;
  bytes: Buffer;
  /** Top-1 label of the heavy (reference) and the light variant, run in this process on the unshaped bytes. */
  heavyTop1: string;
  lightTop1: string;
}

export interface EncoderLibrary {
  images: EncoderImage[];
  /** Share of the images on which the light variant's top-1 is the reference's. */
  lightAgreement: number;
  /** The catalog's agreementWithReference of the light variant, which the edge's floor check reads. */
  catalogAgreement: number;
  /** Mean bytes one image of each kind puts on the uplink at the default offload shaping (1280 px, JPEG q85). */
  offloadBytes: Record<EncodeKind, number>;
  source: string;
}

/**
 * Where the workload's scenes come from: the held-out part of the project's
 * real photos (models/samples/photos; the calibration part built the INT8
 * variant), `count` of them in a seeded order. Each is then scaled to every
 * size of encodeKindSpecs. This is the one place to switch to another set.
 */
export function encoderSceneSource(seed: number, count: number): { scenes: NamedImage[]; source: string } {
  const photos = realPhotos('held-out');
  const random = seededRandom(seed);
  const order = photos.map((photo) => ({ photo, key: random() })).sort((a, b) => a.key - b.key);
  const scenes = order.slice(0, count).map(({ photo }) => photo);
  return { scenes, source: `models/samples/photos, ${scenes.length} of the ${photos.length} held-out real photos (seed ${seed})` };
}

/** A scene at `longSide`, with seeded sensor grain so that an upscaled one costs the bytes a photo of that size would, JPEG q90. */
async function atSize(scene: Uint8Array, longSide: number, random: () => number): Promise<Buffer> {
  const resized = await sharp(scene).resize({ width: longSide, height: longSide, fit: 'inside' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { width, height } = resized.info;
  const pixels = resized.data;
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.max(0, Math.min(255, pixels[i]! + Math.round((random() + random() - 1) * 10)));
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

export async function loadEncoderLibrary(seed: number, sceneCount = 28): Promise<EncoderLibrary> {
  const catalogModel = findModel(loadCatalog(), 'image-encoder');
  const catalogAgreement = catalogModel.variants[lightVariant]?.agreementWithReference;
  if (catalogAgreement === undefined) throw new Error(`models/catalog.yaml: image-encoder variant ${lightVariant} has no agreementWithReference — the encoder workload's floors are set around it`);
  const numeric = floorMix.map((f) => f.floor).filter((f): f is number => typeof f === 'number');
  if (!numeric.some((f) => f < catalogAgreement) || !numeric.some((f) => f > catalogAgreement)) {
    throw new Error(`encoder workload: the numeric floors ${numeric.join(', ')} should lie on both sides of ${lightVariant}'s catalog agreement ${catalogAgreement} — update floorMix`);
  }
  const { scenes, source } = encoderSceneSource(seed, sceneCount);
  const random = seededRandom(seed);
  const sized: Omit<EncoderImage, 'heavyTop1' | 'lightTop1'>[] = [];
  for (const scene of scenes) {
    for (const spec of encodeKindSpecs) sized.push({ name: `${scene.name}@${spec.longSide}`, kind: spec.kind, bytes: await atSize(scene.bytes, spec.longSide, random) });
  }
  const top1 = async (variant: string) => {
    const model = await loadModel(catalogModel, variant, { providers: ['cpu'], intraOpThreads: 1 }, createLogger('bench', 'silent'));
    try {
      return (await encodeAll(model, sized)).map((result) => result.labels[0]!.label);
    } finally {
      await model.close();
    }
  };
  const heavy = await top1('fp32');
  const light = await top1(lightVariant);
  const images = sized.map((image, i) => ({ ...image, heavyTop1: heavy[i]!, lightTop1: light[i]! }));
  const offloadBytes = {} as Record<EncodeKind, number>;
  for (const { kind } of encodeKindSpecs) {
    const sent = await Promise.all(images.filter((image) => image.kind === kind).map(async (image) => (await shapeImage(image.bytes, defaultShaping({ imageMaxSide: 1280, jpegQuality: 85 }, catalogModel))).payload.length));
    offloadBytes[kind] = Math.round(sent.reduce((a, b) => a + b, 0) / sent.length);
  }
  const lightAgreement = Math.round((images.filter((image) => image.lightTop1 === image.heavyTop1).length / images.length) * 1000) / 1000;
  return { images, lightAgreement, catalogAgreement, offloadBytes, source };
}

const draw = <T extends { share: number }>(specs: readonly T[], random: () => number): T => {
  let left = random();
  return specs.find((s) => (left -= s.share) < 0) ?? specs[specs.length - 1]!;
};

/** The encoder workload: the same seed gives the same requests, images and floors at the same offsets. */
export function buildEncoderWorkload(library: Pick<EncoderLibrary, 'images'>, options: WorkloadOptions): WorkloadRequest[] {
  const random = seededRandom(options.seed + 7919);
  const requests: WorkloadRequest[] = [];
  let atMs = 0;
  for (let index = 0; index < options.requests; index++) {
    if (index > 0) atMs += -Math.log(1 - random()) * options.meanGapMs;
    const spec = draw(encodeKindSpecs, random);
    const { floor } = draw(floorMix, random);
    const ofKind = library.images.filter((image) => image.kind === spec.kind);
    if (ofKind.length === 0) throw new Error(`encoder workload: the library has no ${spec.kind} image`);
    const image = ofKind[Math.floor(random() * ofKind.length)]!;
    requests.push({
      index,
      sendAtMs: Math.round(atMs),
      kind: spec.kind,
      modality: 'image',
      inputs: { image: image.bytes },
      deadlineMs: spec.deadlineMs,
      task: { image: 'encode' },
      quality: { image: floor },
      image: image.name,
    });
  }
  return requests;
}
