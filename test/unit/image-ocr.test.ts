import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { InferError } from '../../shared/errors.js';
import { decodeImage, type RgbImage } from '../../shared/handlers/image-decode.js';
import type { OcrResult } from '../../shared/handlers/image-ocr.js';
import { insideConvex, polygonArea, type Quad } from '../../shared/handlers/ocr-box-geometry.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';
import type { ExpectedLine } from '../../models/samples/ocr/make-images.js';

const fixtureDir = path.join(packageRoot, 'models', 'samples', 'ocr');
const expected = JSON.parse(readFileSync(path.join(fixtureDir, 'expected.json'), 'utf8')) as Record<string, ExpectedLine[]>;
const fixture = (file: string) => new Uint8Array(readFileSync(path.join(fixtureDir, file)));

let model: LoadedModel;

before(async () => {
  model = await loadModel(findModel(loadCatalog(), 'image-ocr'), 'fp32', { providers: ['cpu'], intraOpThreads: 1 }, createLogger('test', 'silent'));
});

after(async () => {
  await model?.close();
});

async function read(bytes: Uint8Array): Promise<OcrResult> {
  return (await model.run(bytes)).result as unknown as OcrResult;
}

async function rejection(bytes: Uint8Array): Promise<InferError> {
  let caught: unknown;
  await model.run(bytes).catch((err: unknown) => (caught = err));
  assert.ok(caught instanceof InferError, `expected an InferError, got ${String(caught)}`);
  return caught;
}

/** Ink pixels (far from the background colour) inside the line's ink rectangle. */
function inkPixels(image: RgbImage, ink: ExpectedLine['ink']): [number, number][] {
  const background = image.data.subarray(0, 3);
  const pixels: [number, number][] = [];
  for (let y = ink[1]; y <= ink[3]; y++) {
    for (let x = ink[0]; x <= ink[2]; x++) {
      const at = (y * image.width + x) * 3;
      const contrast = Math.max(...[0, 1, 2].map((c) => Math.abs(image.data[at + c]! - background[c]!)));
      if (contrast > 96) pixels.push([x, y]);
    }
  }
  return pixels;
}

describe('image-ocr reads the fixture images', () => {
  for (const [file, lines] of Object.entries(expected)) {
    test(`${file}: ${lines.map((l) => l.text).join(' / ')}`, async (t) => {
      const bytes = fixture(file);
      const started = performance.now();
      const output = await model.run(bytes);
      const elapsedMs = performance.now() - started;
      const result = output.result as unknown as OcrResult;
      const image = await decodeImage(bytes);

      assert.deepEqual(result.lines.map((l) => l.text), lines.map((l) => l.text));
      assert.deepEqual([result.width, result.height], [image.width, image.height]);
      result.lines.forEach((line, i) => {
        assert.ok(line.score >= 0.5 && line.score <= 1, `score ${line.score}`);
        for (const [x, y] of line.box) {
          assert.ok(x >= 0 && x <= result.width && y >= 0 && y <= result.height, `corner (${x}, ${y}) outside ${result.width}×${result.height}`);
        }
        const ink = inkPixels(image, lines[i]!.ink);
        const inside = ink.filter(([x, y]) => insideConvex(line.box, x, y)).length;
        assert.ok(ink.length > 100, `${ink.length} ink pixels for '${line.text}'`);
        assert.ok(inside / ink.length >= 0.99, `box of '${line.text}' holds ${inside} of ${ink.length} ink pixels`);
        const [x0, y0, x1, y1] = lines[i]!.ink;
        const inkArea = (x1 - x0 + 1) * (y1 - y0 + 1);
        const boxArea = polygonArea(line.box);
        // Rotated text's ink rectangle is loose, so allow down to half of it.
        assert.ok(boxArea >= 0.5 * inkArea && boxArea <= 2 * inkArea, `box of '${line.text}' is ${boxArea} px², its ink spans ${inkArea} px²`);
      });
      assert.ok(output.computeUs > 0 && output.computeUs / 1000 <= elapsedMs);
      t.diagnostic(`${file}: ${elapsedMs.toFixed(0)} ms`);
    });
  }
});

describe('image-ocr output', () => {
  test('tensors mirror the result lines', async () => {
    const output = await model.run(fixture('edge-notice.webp'));
    const { lines } = output.result as unknown as OcrResult;
    const { text, scores, boxes } = output.tensors;
    assert.deepEqual(text!.dims, [3]);
    assert.deepEqual((text!.data as Uint8Array[]).map((b) => new TextDecoder().decode(b)), lines.map((l) => l.text));
    assert.deepEqual(scores!.dims, [3]);
    assert.deepEqual(Array.from(scores!.data as Float32Array), lines.map((l) => Math.fround(l.score)));
    assert.deepEqual(boxes!.dims, [3, 4, 2]);
    assert.deepEqual(Array.from(boxes!.data as Float32Array), lines.flatMap((l) => l.box.flat()));
    assert.deepEqual(model.handler.outputs.map((o) => o.name), ['text', 'scores', 'boxes']);
  });

  test('the same image reads the same as PNG, JPEG and WebP', async () => {
    const png = fixture('total-two-lines.png');
    const jpeg = await sharp(png).jpeg({ quality: 85 }).toBuffer();
    const webp = await sharp(png).webp({ quality: 85 }).toBuffer();
    const texts = await Promise.all([png, jpeg, webp].map(async (b) => (await read(b)).lines.map((l) => l.text)));
    assert.deepEqual(texts, [expected['total-two-lines.png']!.map((l) => l.text), texts[0], texts[0]]);
  });

  test('a blank white image has no lines', async () => {
    const blank = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#ffffff' } }).png().toBuffer();
    assert.deepEqual(await read(blank), { width: 640, height: 480, lines: [] });
  });

  test('a large photo is read at detection size and boxes come back in its own pixels', async () => {
    const big = await sharp(fixture('invoice.png')).resize(1920, 384).png().toBuffer();
    const result = await read(big);
    assert.deepEqual(result.lines.map((l) => l.text), ['Invoice 2024-0042']);
    const box = result.lines[0]!.box as Quad;
    assert.ok(box[0][0] < 28 * 4 + 12 && box[1][0] > 393 * 4 - 12, `box ${JSON.stringify(box)} does not span the scaled text`);
  });
});

describe('image-ocr rejects bad input with INVALID_ARGUMENT', () => {
  test('HTML bytes: says what the first bytes are and what to send', async () => {
    const err = await rejection(new TextEncoder().encode('<html><body>not an image</body></html>'));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /starting 3c 68 74 6d are not a JPEG\/PNG\/WebP image — send the file bytes/);
  });

  test('random bytes', async () => {
    const err = await rejection(Uint8Array.from({ length: 300 }, (_, i) => (i * 73 + 11) % 256));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /300 bytes starting 0b 54 9d e6/);
  });

  test('empty input', async () => {
    const err = await rejection(new Uint8Array(0));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /empty/);
  });

  test('a truncated PNG', async () => {
    const png = fixture('invoice.png');
    const err = await rejection(png.subarray(0, Math.floor(png.length / 2)));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /look like PNG but do not decode .* truncated or corrupt/);
  });

  test('a JPEG signature followed by garbage', async () => {
    const err = await rejection(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, ...Array.from({ length: 200 }, (_, i) => (i * 31) % 256)]));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /starting ff d8 ff e0 look like JPEG/);
  });

  test('an image over 40 megapixels, before decoding it', async () => {
    const err = await rejection(await pngHeaderClaiming(8000, 6000));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /8000×6000 pixels \(48\.0 MP\) is over the 40 MP limit — downscale/);
  });

  test('the model still answers after rejecting', async () => {
    assert.deepEqual((await read(fixture('shipped-zh.jpg'))).lines.map((l) => l.text), ['订单已发货']);
  });
});

/** A small valid PNG whose header claims another size (the pixel data is never reached). */
async function pngHeaderClaiming(width: number, height: number): Promise<Uint8Array> {
  const png = new Uint8Array(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer());
  const view = new DataView(png.buffer, png.byteOffset);
  // Signature (8) + IHDR length (4) + 'IHDR' (4), then width, height; the chunk CRC covers type + 13 data bytes.
  view.setUint32(16, width);
  view.setUint32(20, height);
  view.setUint32(29, crc32(png.subarray(12, 29)));
  return png;
}
