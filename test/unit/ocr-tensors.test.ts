import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeImage, sniffImageFormat, type RgbImage } from '../../shared/handlers/image-decode.js';
import type { Quad } from '../../shared/handlers/ocr-box-geometry.js';
import { detectionInput, detectionSize, lineCrop, recognitionBatch } from '../../shared/handlers/ocr-tensors.js';

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { data, width, height };
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-5;

describe('image decoding', () => {
  test('the signature names the format', () => {
    assert.equal(sniffImageFormat(Uint8Array.from([0xff, 0xd8, 0xff, 0xdb])), 'jpeg');
    assert.equal(sniffImageFormat(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'png');
    assert.equal(sniffImageFormat(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 ')), 'webp');
    assert.equal(sniffImageFormat(new TextEncoder().encode('RIFF\0\0\0\0WAVEfmt ')), undefined);
    assert.equal(sniffImageFormat(new TextEncoder().encode('GIF89a')), undefined);
  });

  test('transparency is flattened onto white', async () => {
    const clear = await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const image = await decodeImage(clear);
    assert.deepEqual([...image.data.subarray(0, 3)], [255, 255, 255]);
  });

  test('greyscale images decode to RGB', async () => {
    const grey = await sharp({ create: { width: 3, height: 2, channels: 3, background: '#808080' } }).greyscale().png().toBuffer();
    const image = await decodeImage(grey);
    assert.equal(image.data.length, 3 * 2 * 3);
  });
});

describe('detection input', () => {
  test('long side at most 960, both sides multiples of 32, small images not enlarged', () => {
    assert.deepEqual(detectionSize(1000, 500), { width: 960, height: 480 });
    assert.deepEqual(detectionSize(4000, 3000), { width: 960, height: 736 });
    assert.deepEqual(detectionSize(100, 20), { width: 96, height: 32 });
    assert.deepEqual(detectionSize(10, 10), { width: 32, height: 32 });
  });

  test('channels are B, G, R normalised with the ImageNet mean and std, as PaddleOCR feeds them', async () => {
    const { tensor, width, height } = await detectionInput(solid(64, 32, [255, 0, 0]));
    assert.deepEqual(tensor.dims, [1, 3, 32, 64]);
    assert.deepEqual([width, height], [64, 32]);
    const data = tensor.data as Float32Array;
    const plane = 64 * 32;
    assert.ok(close(data[0]!, (0 - 0.485) / 0.229), 'blue plane first');
    assert.ok(close(data[plane]!, (0 - 0.456) / 0.224));
    assert.ok(close(data[2 * plane]!, (1 - 0.406) / 0.225), 'red plane last');
  });
});

describe('recognition crops', () => {
  const wide: Quad = [[10, 10], [110, 10], [110, 30], [10, 30]];

  test('a wide box is cropped as it is; a tall one is turned so its text runs left to right', () => {
    assert.deepEqual(lineCrop(wide), { quad: wide, width: 100, height: 20 });
    const tall: Quad = [[10, 10], [30, 10], [30, 110], [10, 110]];
    assert.deepEqual(lineCrop(tall), { quad: [[30, 10], [30, 110], [10, 110], [10, 10]], width: 100, height: 20 });
  });

  test('a batch is [N, 3, 48, W], BGR in (x/255 - 0.5)/0.5, padded with zeros to the widest crop and at least 320', () => {
    const image = solid(1200, 100, [255, 0, 0]);
    const long: Quad = [[0, 0], [1000, 0], [1000, 40], [0, 40]];
    const batch = recognitionBatch(image, [lineCrop(wide), lineCrop(long)]);
    assert.deepEqual(batch.dims, [2, 3, 48, 1200]);
    const data = batch.data as Float32Array;
    const plane = 48 * 1200;
    // The short crop is 48 × 240: pixel (0, 0) is red, (239, 0) too, (240, 0) is padding.
    assert.deepEqual([data[0], data[plane], data[2 * plane]], [-1, -1, 1]);
    assert.deepEqual([data[239], data[2 * plane + 239]], [-1, 1]);
    assert.deepEqual([data[240], data[2 * plane + 240]], [0, 0]);
    // The long crop fills its row.
    const second = 3 * plane;
    assert.deepEqual([data[second + 1199], data[second + 2 * plane + 1199]], [-1, 1]);
  });

  test('a short crop alone still gets the 320 minimum width', () => {
    assert.deepEqual(recognitionBatch(solid(200, 50, [0, 0, 0]), [lineCrop(wide)]).dims, [1, 3, 48, 320]);
  });
});
