/**
 * How often the edge's video encoder (MobileNetV2 INT8) gives a chunk the
 * same top label as the cloud's (InceptionV3 fp32): each held-out image of
 * models/image-encoder/photo-like-images.ts becomes a chunk of `frames`
 * frames of its scene (scene-frames.ts: small pan/zoom, noise, JPEG), both
 * variants answer it through encodeChunk, and their top labels are compared.
 * The catalog's agreementWithReference for video-encoder@mobilenet-v2-int8
 * is this number.
 *
 *   node dist/models/video-encoder/chunk-agreement.js [frames=4]
 */
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import { encodeChunk } from '../../shared/handlers/video-encoder.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { seededRandom } from '../../shared/seeded-random.js';
import type { VideoFrame } from '../../shared/video/chunk.js';
import { heldOutImages } from '../image-encoder/photo-like-images.js';
import { sceneFrames } from './scene-frames.js';

const frameCount = Number(process.argv[2] ?? 4);
const random = seededRandom(17);
const chunks: { name: string; frames: VideoFrame[] }[] = [];
for (const image of await heldOutImages()) {
  const encoded = await sceneFrames(image.bytes, frameCount, random);
  chunks.push({ name: image.name, frames: await Promise.all(encoded.map(async (bytes, index) => ({ ...(await decodeImage(bytes)), index, timeMs: index * 250 }))) });
}
const model = findModel(loadCatalog(), 'video-encoder');
const log = createLogger('chunk-agreement', 'warn');
const topLabels = async (variant: string) => {
  const loaded = await loadModel(model, variant, { providers: ['cpu'], intraOpThreads: 2 }, log);
  const labels: string[] = [];
  for (const chunk of chunks) labels.push((await encodeChunk(loaded.context, chunk.frames, 0)).result.labels[0]!.label);
  await loaded.close();
  return labels;
};
const reference = await topLabels('fp32');
const candidate = await topLabels('mobilenet-v2-int8');
const same = reference.filter((label, i) => label === candidate[i]).length;
console.log(`chunk top-1 agreement, mobilenet-v2-int8 vs fp32: ${same} of ${chunks.length} = ${(same / chunks.length).toFixed(3)} (${frameCount} frames per chunk)`);
for (const [i, chunk] of chunks.entries()) if (reference[i] !== candidate[i]) console.log(`  ${chunk.name}: ${reference[i]} vs ${candidate[i]}`);
