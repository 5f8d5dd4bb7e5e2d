/**
 * Measures where a shot boundary should start, per graph: the cosine
 * distance between neighbouring frame embeddings (chunk-answer.ts) for
 * frames of the same scene — sensor noise, re-compression and a small
 * pan/zoom, as consecutive video frames differ — against frames of
 * different scenes. The photo-like scenes of
 * models/image-encoder/photo-like-images.ts stand in for real footage (no
 * real video set ships yet). Prints the two distributions, the threshold
 * with the least balanced error and the error rates at a few thresholds.
 *
 *   node dist/models/video-encoder/boundary-threshold.js [scenes=24] [variants=4]
 */
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import { encodeFrames } from '../../shared/handlers/image-encoder.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { percentile } from '../../shared/percentile.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { cosine } from '../../shared/video/chunk-answer.js';
import { photoLikeImages } from '../image-encoder/photo-like-images.js';
import { sceneFrames } from './scene-frames.js';

const summary = (values: number[]) =>
  `n=${values.length} min=${Math.min(...values).toFixed(4)} p50=${percentile(values, 0.5).toFixed(4)} p95=${percentile(values, 0.95).toFixed(4)} max=${Math.max(...values).toFixed(4)}`;

async function main(): Promise<void> {
  const sceneCount = Number(process.argv[2] ?? 24);
  const variants = Number(process.argv[3] ?? 4);
  const random = seededRandom(11);
  const scenes = await photoLikeImages(sceneCount, 11);
  // One scene after the other: the frames draw from one seeded stream, so its order must not depend on timing.
  const decoded = [];
  for (const scene of scenes) decoded.push(await Promise.all((await sceneFrames(scene.bytes, variants, random)).map((bytes) => decodeImage(bytes))));
  const model = findModel(loadCatalog(), 'video-encoder');
  const log = createLogger('boundary-threshold', 'warn');
  for (const variant of ['fp32', 'mobilenet-v2', 'mobilenet-v2-int8']) {
    const loaded = await loadModel(model, variant, { providers: ['cpu'], intraOpThreads: 2 }, log);
    const embeddings: Float32Array[][] = [];
    for (const images of decoded) embeddings.push((await encodeFrames(images, loaded.context)).encodings.map((e) => e.embedding));
    await loaded.close();
    const same: number[] = [];
    const different: number[] = [];
    embeddings.forEach((scene, s) => {
      for (let k = 1; k < scene.length; k++) same.push(1 - cosine(scene[k - 1]!, scene[k]!));
      // A cut from this scene's last frame to any other scene's first.
      for (const other of embeddings.slice(s + 1)) different.push(1 - cosine(scene[scene.length - 1]!, other[0]!));
    });
    // The distributions overlap (photo-like scenes share one generator), so the threshold minimises the balanced error:
    // the share of same-scene pairs called a cut plus the share of cuts missed.
    const error = (t: number) => same.filter((d) => d > t).length / same.length + different.filter((d) => d <= t).length / different.length;
    const best = [...same, ...different].sort((a, b) => a - b).reduce((b, t) => (error(t) < error(b) ? t : b));
    const rates = (t: number) =>
      `false cuts ${((100 * same.filter((d) => d > t).length) / same.length).toFixed(1)}%, missed cuts ${((100 * different.filter((d) => d <= t).length) / different.length).toFixed(1)}%`;
    console.log(`${variant} (${loaded.context.graphs[0]})\n  same scene:      ${summary(same)}\n  different scene: ${summary(different)}`);
    console.log(`  balanced-error threshold ${best.toFixed(4)}: ${rates(best)}`);
    for (const t of [0.05, 0.08, 0.1, 0.12, 0.15, 0.2]) console.log(`  at ${t}: ${rates(t)}`);
  }
}

await main();
