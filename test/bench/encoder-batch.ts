/**
 * What batching a video chunk buys: 16 photo-like frames encoded in one
 * session.run ([16, side, side, 3]) against 16 runs of one frame, for the
 * cloud's InceptionV3 and the edge's MobileNetV2 INT8, in ms per frame
 * (median of `rounds`, decoding excluded).
 *
 *   node dist/test/bench/encoder-batch.js [rounds=3] [threads=2]
 */
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { decodeImage } from '../../shared/handlers/image-decode.js';
import { encodeFrames } from '../../shared/handlers/image-encoder.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { percentile } from '../../shared/percentile.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';

const rounds = Number(process.argv[2] ?? 3);
const threads = Number(process.argv[3] ?? 2);
const frames = await Promise.all((await photoLikeImages(16, 21)).map((image) => decodeImage(image.bytes)));
const model = findModel(loadCatalog(), 'video-encoder');
for (const variant of ['fp32', 'mobilenet-v2-int8']) {
  const loaded = await loadModel(model, variant, { providers: ['cpu'], intraOpThreads: threads }, createLogger('encoder-batch', 'warn'));
  const batch: number[] = [];
  const single: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let started = performance.now();
    await encodeFrames(frames, loaded.context);
    batch.push((performance.now() - started) / frames.length);
    started = performance.now();
    for (const frame of frames) await encodeFrames([frame], loaded.context);
    single.push((performance.now() - started) / frames.length);
  }
  await loaded.close();
  console.log(`${variant}: batch of 16 ${percentile(batch, 0.5).toFixed(1)} ms/frame, 16 single runs ${percentile(single, 0.5).toFixed(1)} ms/frame (${threads} threads, median of ${rounds})`);
}
