/**
 * The image-encoder handler: nsfwjs's pre-processing (bilinear resize with
 * aligned corners, pixels / 255, NHWC) matches tfjs's own, and both shipped
 * networks answer a unit embedding of their width and five sorted scores.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { getHandler } from '../../shared/handlers/handler.js';
import { encoderInput, ENCODER_LABELS, type EncoderResult } from '../../shared/handlers/image-encoder.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { maxAbsDiff, tf } from '../helpers/tfjs.js';
import { readFixture } from '../helpers/inference.js';

const log = createLogger('test-encoder', 'silent');

describe('image-encoder pre-processing', () => {
  test('the resize equals tf.image.resizeBilinear with aligned corners, divided by 255, up- and downscaling', () => {
    for (const [width, height, side] of [[37, 23, 16], [5, 9, 24]] as const) {
      const data = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 97 + 13) % 256);
      const ours = encoderInput([{ width, height, data }], side);
      assert.deepEqual(ours.dims, [1, side, side, 3]);
      const theirs = tf.tidy(() => tf.image.resizeBilinear(tf.tensor3d(Float32Array.from(data), [height, width, 3]), [side, side], true).div(255).dataSync());
      assert.ok(maxAbsDiff(ours.data as Float32Array, theirs) < 1e-6, `${width}×${height} → ${side}`);
    }
  });

  test('a non-image is refused before decoding with the one image message', () => {
    assert.throws(() => getHandler('image-encoder').checkInput(new Uint8Array([0x3c, 0x68, 0x74, 0x6d, 0x6c]), 'image input'), /not a JPEG\/PNG\/WebP image/);
  });
});

describe('image-encoder networks', () => {
  const loaded: LoadedModel[] = [];

  before(async () => {
    const model = findModel(loadCatalog(), 'image-encoder');
    for (const variant of ['fp32', 'mobilenet-v2']) loaded.push(await loadModel(model, variant, { providers: ['cpu'], intraOpThreads: 1 }, log));
  });

  after(() => Promise.all(loaded.map((m) => m.close())));

  test('InceptionV3 (cloud) gives a 2048-D unit embedding, MobileNetV2 (edge) a 1280-D one; five scores summing to 1, most likely first', async () => {
    const photo = readFixture('ocr', 'shipped-zh.jpg');
    for (const [i, [graph, width]] of ([['inception-v3', 2048], ['mobilenet-v2', 1280]] as const).entries()) {
      const { result, tensors } = await loaded[i]!.run(photo);
      const answer = result as unknown as EncoderResult;
      assert.equal(answer.model, graph);
      assert.equal(answer.embedding.length, width);
      assert.ok(Math.abs(Math.hypot(...answer.embedding) - 1) < 1e-5, 'L2-normalised');
      assert.deepEqual(answer.labels.map((l) => l.label).sort(), [...ENCODER_LABELS].sort());
      assert.ok(Math.abs(answer.labels.reduce((sum, l) => sum + l.score, 0) - 1) < 1e-5);
      assert.ok(answer.labels.every((l, k) => k === 0 || answer.labels[k - 1]!.score >= l.score));
      assert.ok(answer.width > 0 && answer.height > 0);
      assert.deepEqual(tensors.embedding!.dims, [width]);
      assert.equal(getHandler('image-encoder').confidence(answer), answer.labels[0]!.score);
    }
  });
});
