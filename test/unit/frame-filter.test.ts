/**
 * The device's frame filter on real rendered scenes: a frame that only
 * differs by sensor noise or compression is dropped, a new scene or an object
 * entering is kept, and the first frame always is.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import sharp, { type Sharp } from 'sharp';
import { FrameFilter, greyThumbnail, thumbnailDifference } from '../../edge/video/frame-filter.js';
import type { RgbImage } from '../../shared/handlers/image-decode.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';

async function rgb(bytes: Uint8Array | Buffer, transform?: (image: Sharp) => Sharp): Promise<RgbImage> {
  const image = sharp(bytes).resize(640, 360, { fit: 'fill' }).removeAlpha();
  const { data, info } = await (transform ? transform(image) : image).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** The same frame with per-pixel noise of ±amplitude, as a sensor gives between two frames of a still scene. */
function withNoise(frame: RgbImage, amplitude: number, seed: number): RgbImage {
  let state = seed;
  const random = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const data = frame.data.map((v) => Math.max(0, Math.min(255, Math.round(v + random() * amplitude))));
  return { ...frame, data };
}

describe('frame filter', () => {
  let sceneA: RgbImage;
  let sceneB: RgbImage;
  let withObject: RgbImage;

  before(async () => {
    const [a, b] = await photoLikeImages(2, 7);
    sceneA = await rgb(a!.bytes);
    sceneB = await rgb(b!.bytes);
    // A dark object a fifth of the frame wide enters the still scene.
    const box = await sharp({ create: { width: 128, height: 160, channels: 3, background: '#202020' } }).png().toBuffer();
    withObject = await rgb(a!.bytes, (image) => image.composite([{ input: box, left: 256, top: 100 }]));
  });

  test('the thumbnail difference is 0 for the same frame, small for noise, large for another scene', () => {
    const thumb = greyThumbnail(sceneA);
    assert.equal(thumb.length, 256);
    assert.equal(thumbnailDifference(thumb, greyThumbnail(sceneA)), 0);
    const noise = thumbnailDifference(thumb, greyThumbnail(withNoise(sceneA, 12, 1)));
    const other = thumbnailDifference(thumb, greyThumbnail(sceneB));
    assert.ok(noise < 0.005, `noise moves the thumbnail by ${noise}`);
    assert.ok(other > 0.05, `another scene differs by only ${other}`);
  });

  test('at the default threshold, noisy repeats are dropped and counted; a new scene and an entering object are kept', () => {
    const filter = new FrameFilter(0.02);
    const kept = [sceneA, withNoise(sceneA, 12, 2), withNoise(sceneA, 12, 3), withObject, withNoise(withObject, 12, 4), sceneB].map((frame) => filter.keep(frame));
    assert.deepEqual(kept, [true, false, false, true, false, true]);
    assert.deepEqual([filter.kept, filter.dropped], [3, 3]);
  });

  test('a forced frame is kept and becomes the reference; threshold 0 keeps every frame', () => {
    const filter = new FrameFilter(0.02);
    assert.deepEqual([filter.keep(sceneA), filter.keep(sceneA, true), filter.keep(sceneA)], [true, true, false]);
    const keepAll = new FrameFilter(0);
    assert.deepEqual([keepAll.keep(sceneA), keepAll.keep(sceneA)], [true, true]);
    assert.deepEqual([keepAll.kept, keepAll.dropped], [2, 0]);
  });

  test('works on frames smaller than its 16×16 blocks', () => {
    const tiny: RgbImage = { data: new Uint8Array(16 * 9 * 3).map((_, i) => i % 251), width: 16, height: 9 };
    const thumb = greyThumbnail(tiny);
    assert.equal(thumb.length, 256);
    assert.ok(thumb.every(Number.isFinite));
  });
});
