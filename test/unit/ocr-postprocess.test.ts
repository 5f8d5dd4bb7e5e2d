import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findModel, loadCatalog, verifiedPath } from '../../shared/catalog.js';
import { growQuad, minAreaRect, readingOrder, type Point, type Quad } from '../../shared/handlers/ocr-box-geometry.js';
import { ctcGreedyDecode, dictionaryFromText, loadDictionary } from '../../shared/handlers/ocr-ctc-decode.js';
import { dbPostprocess, type ProbabilityMap } from '../../shared/handlers/ocr-db-postprocess.js';

describe('CTC greedy decoding', () => {
  const alphabet = dictionaryFromText('a\nb\nc\n');

  /** One row per step: the winning class gets `p`, the rest share what is left. */
  function probabilities(steps: [cls: number, p: number][]): Float32Array {
    const classes = alphabet.length;
    const data = new Float32Array(steps.length * classes);
    steps.forEach(([cls, p], t) => {
      for (let c = 0; c < classes; c++) data[t * classes + c] = c === cls ? p : (1 - p) / (classes - 1);
    });
    return data;
  }

  test('the alphabet is blank, then the dictionary lines, then a space', () => {
    assert.deepEqual(alphabet, ['', 'a', 'b', 'c', ' ']);
    assert.deepEqual(dictionaryFromText('x\r\ny'), ['', 'x', 'y', ' ']);
  });

  test('repeats collapse, a blank separates a repeated character, the space class decodes to a space', () => {
    const steps: [number, number][] = [[1, 0.9], [1, 0.8], [0, 0.9], [1, 0.7], [2, 0.6], [2, 0.9], [4, 0.8], [3, 0.5], [0, 0.99]];
    const decoded = ctcGreedyDecode(probabilities(steps), 0, steps.length, alphabet.length, alphabet);
    assert.equal(decoded.text, 'aab c');
    // The first step of each kept run counts, as in PaddleOCR's CTCLabelDecode.
    assert.ok(Math.abs(decoded.score - (0.9 + 0.7 + 0.6 + 0.8 + 0.5) / 5) < 1e-6);
  });

  test('decodes one item of a batch at its offset', () => {
    const batch = probabilities([[1, 0.9], [0, 0.9], [3, 0.9], [2, 0.9]]);
    const second = ctcGreedyDecode(batch, 2 * alphabet.length, 2, alphabet.length, alphabet);
    assert.equal(second.text, 'cb');
  });

  test('all blanks decode to empty text with score 0', () => {
    assert.deepEqual(ctcGreedyDecode(probabilities([[0, 0.9], [0, 0.8]]), 0, 2, alphabet.length, alphabet), { text: '', score: 0 });
  });

  test('a dictionary that does not fit the model is an error, not garbage', () => {
    assert.throws(() => ctcGreedyDecode(new Float32Array(12), 0, 2, 6, alphabet), /6 classes but the dictionary gives 5/);
  });

  test('the PaddleOCR v4 dictionary gives the 6625 classes of the recogniser, loaded once', async () => {
    const file = await verifiedPath(findModel(loadCatalog(), 'image-ocr').assets['dictionary']!);
    const real = loadDictionary(file);
    assert.equal(real.length, 6625);
    assert.equal(real[0], '');
    assert.equal(real.at(-1), ' ');
    assert.ok(real.includes('欢') && real.includes('A') && real.includes('7'));
    assert.equal(loadDictionary(file), real);
  });
});

describe('DB post-processing', () => {
  function map(width: number, height: number, fill: (x: number, y: number) => number): ProbabilityMap {
    const data = new Float32Array(width * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = fill(x, y);
    return { data, width, height };
  }
  const rect = (x0: number, y0: number, x1: number, y1: number, p: number) => (x: number, y: number) =>
    x >= x0 && x <= x1 && y >= y0 && y <= y1 ? p : 0;

  test('one text region becomes one box, unclipped by area × 1.5 / perimeter', () => {
    const [found, ...rest] = dbPostprocess(map(20, 10, rect(4, 3, 15, 6, 0.9)), { width: 20, height: 10 });
    assert.equal(rest.length, 0);
    // Pixel centres span 11 × 3: offset = 33 × 1.5 / 28 ≈ 1.77 on every side, then rounded.
    assert.deepEqual(found!.box, [[2, 1], [17, 1], [17, 8], [2, 8]]);
    assert.ok(Math.abs(found!.score - 0.9) < 1e-6);
  });

  test('boxes are scaled from map to image coordinates', () => {
    const [found] = dbPostprocess(map(20, 10, rect(4, 3, 15, 6, 0.9)), { width: 40, height: 20 });
    assert.deepEqual(found!.box, [[4, 2], [34, 2], [34, 16], [4, 16]]);
  });

  test('a region whose mean probability is under 0.6 is dropped', () => {
    assert.deepEqual(dbPostprocess(map(20, 10, rect(4, 3, 15, 6, 0.5)), { width: 20, height: 10 }), []);
  });

  test('a region thinner than 3 map pixels is dropped', () => {
    assert.deepEqual(dbPostprocess(map(20, 10, rect(4, 3, 15, 4, 0.95)), { width: 20, height: 10 }), []);
  });

  test('separate regions give separate boxes; a region at the edge is clamped into the image', () => {
    const both = map(40, 20, (x, y) => rect(0, 0, 12, 4, 0.9)(x, y) || rect(20, 10, 35, 14, 0.8)(x, y));
    const found = dbPostprocess(both, { width: 40, height: 20 });
    assert.equal(found.length, 2);
    for (const { box } of found) for (const [x, y] of box) assert.ok(x >= 0 && x <= 39 && y >= 0 && y <= 19);
    assert.deepEqual(found[0]!.box[0], [0, 0]);
  });

  test('a slanted band gives a rotated box along it', () => {
    // Pixels within 2 of the line y = 0.5x + 5, for x in 5..35.
    const band = map(48, 32, (x, y) => (x >= 5 && x <= 35 && Math.abs(y - (0.5 * x + 5)) / Math.hypot(1, 0.5) <= 2 ? 0.95 : 0));
    const [found] = dbPostprocess(band, { width: 48, height: 32 });
    const [tl, tr] = found!.box;
    const degrees = (Math.atan2(tr[1] - tl[1], tr[0] - tl[0]) * 180) / Math.PI;
    assert.ok(Math.abs(degrees - 26.57) < 4, `top edge at ${degrees.toFixed(1)}°`);
  });
});

describe('box geometry', () => {
  const near = (a: Point[], b: Point[]) => a.every((p, i) => Math.hypot(p[0] - b[i]![0], p[1] - b[i]![1]) < 1e-9);

  test('minAreaRect of a rotated rectangle finds it, corners from the top-left clockwise', () => {
    const c = Math.cos(Math.PI / 6);
    const s = Math.sin(Math.PI / 6);
    const corners: Point[] = [[0, 0], [10 * c, 10 * s], [10 * c - 4 * s, 10 * s + 4 * c], [-4 * s, 4 * c]];
    const inner: Point[] = [[3, 3], [5, 4], [4, 5]];
    const found = minAreaRect([...inner, ...corners]);
    assert.ok(Math.abs(found.shortSide - 4) < 1e-9);
    assert.ok(near(found.box, [corners[0]!, corners[1]!, corners[2]!, corners[3]!]), JSON.stringify(found.box));
  });

  test('growQuad moves each side out along its normal', () => {
    assert.deepEqual(growQuad([[10, 10], [30, 10], [30, 20], [10, 20]], 2), [[8, 8], [32, 8], [32, 22], [8, 22]]);
  });

  test('reading order: lines top to bottom, left to right within a line despite small vertical jitter', () => {
    const box = (x: number, y: number): Quad => [[x, y], [x + 50, y], [x + 50, y + 20], [x, y + 20]];
    const items = [{ id: 'right', box: box(200, 10) }, { id: 'second line', box: box(10, 60) }, { id: 'left', box: box(10, 14) }];
    assert.deepEqual(readingOrder(items).map((i) => i.id), ['left', 'right', 'second line']);
  });
});
