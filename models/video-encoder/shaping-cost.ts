/**
 * What shrinking a frame before it crosses the link costs the cloud's
 * encoder (InceptionV3 fp32): each held-out image of
 * models/image-encoder/photo-like-images.ts, decoded and fitted to the
 * edge's decode size (640 px, video.decodeMaxSide), is encoded as it is and
 * after each shaping level (long side, JPEG quality) the edge may choose;
 * the cost of a level is 1 − its top-1 label agreement with the unshaped
 * frame (mean embedding cosine printed beside it). The catalog's
 * payloadShaping costs of image-encoder and video-encoder are these numbers.
 *
 *   node dist/models/video-encoder/shaping-cost.js
 */
import sharp from 'sharp';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { decodeImage, type RgbImage } from '../../shared/handlers/image-decode.js';
import { encodeFrames } from '../../shared/handlers/image-encoder.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { cosine } from '../../shared/video/chunk-answer.js';
import { heldOutImages } from '../image-encoder/photo-like-images.js';

const sides = [640, 480, 320];
const qualities = [90, 75, 50];

const fitted = async (bytes: Uint8Array): Promise<RgbImage> => decodeImage(new Uint8Array(await sharp(bytes).resize({ width: 640, height: 640, fit: 'inside' }).png().toBuffer()));
const shaped = async (frame: RgbImage, side: number, quality: number): Promise<RgbImage> => {
  const jpeg = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .resize({ width: side, height: side, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality })
    .toBuffer();
  return decodeImage(new Uint8Array(jpeg));
};

const frames = await Promise.all((await heldOutImages()).map((image) => fitted(image.bytes)));
const loaded = await loadModel(findModel(loadCatalog(), 'image-encoder'), 'fp32', { providers: ['cpu'], intraOpThreads: 2 }, createLogger('shaping-cost', 'warn'));
const encode = async (images: RgbImage[]) => {
  const out = [];
  for (const image of images) out.push((await encodeFrames([image], loaded.context)).encodings[0]!);
  return out;
};
const top = (p: Float32Array) => p.indexOf(Math.max(...p));
const reference = await encode(frames);
console.log(`${frames.length} frames at 640 px, InceptionV3 fp32; cost = 1 − top-1 agreement with the unshaped frame`);
console.log('| long side | JPEG quality | agreement | cost | mean cosine |\n| --- | --- | --- | --- | --- |');
for (const side of sides) {
  for (const quality of qualities) {
    const answers = await encode(await Promise.all(frames.map((f) => shaped(f, side, quality))));
    const same = answers.filter((a, i) => top(a.probabilities) === top(reference[i]!.probabilities)).length;
    const meanCosine = answers.reduce((sum, a, i) => sum + cosine(a.embedding, reference[i]!.embedding), 0) / answers.length;
    console.log(`| ${side} | ${quality} | ${same}/${answers.length} | ${(1 - same / answers.length).toFixed(3)} | ${meanCosine.toFixed(4)} |`);
  }
}
await loaded.close();
