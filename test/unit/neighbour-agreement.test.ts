/**
 * Agreement between encoders of different networks (models/image-encoder/agreement.ts):
 * top-1 labels compare directly; embeddings do not, so neighbour agreement
 * compares which images each network puts nearest to each image.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { neighbourAgreement, topLabelAgreement } from '../../models/image-encoder/agreement.js';
import type { EncoderResult } from '../../shared/handlers/image-encoder.js';

/** Unit vectors on a circle at the given angles (degrees), padded to `dims` dimensions. */
const onCircle = (degrees: number[], dims = 2) =>
  degrees.map((d) => [Math.cos((d * Math.PI) / 180), Math.sin((d * Math.PI) / 180), ...new Array<number>(dims - 2).fill(0)]);

const answer = (label: EncoderResult['labels'][number]['label']): EncoderResult => ({ model: 'm', embedding: [1], labels: [{ label, score: 1 }], width: 1, height: 1 });

describe('encoder agreement across networks', () => {
  test('top-1 agreement is the share of images with the same first label', () => {
    assert.equal(topLabelAgreement([answer('neutral'), answer('drawing')], [answer('neutral'), answer('sexy')]), 0.5);
  });

  test('two networks that order the images alike agree fully, whatever their embedding sizes', () => {
    const a = onCircle([0, 10, 20, 100, 110, 120, 200, 210]);
    const b = onCircle([0, 5, 15, 100, 105, 130, 200, 205], 4);
    assert.equal(neighbourAgreement(a, b, 2), 1);
  });

  test('nearest neighbours that differ for every image agree 0', () => {
    // a pairs images (0, 1) and (2, 3); b pairs (0, 2) and (1, 3).
    const a = onCircle([0, 1, 90, 91]);
    const b = onCircle([0, 90, 1, 91]);
    assert.equal(neighbourAgreement(a, b, 1), 0);
  });

  test('refuses sets too small for k or of different lengths, saying what it got', () => {
    assert.throws(() => neighbourAgreement(onCircle([0, 1]), onCircle([0, 1]), 2), /more than k = 2 images, got 2 and 2/);
    assert.throws(() => neighbourAgreement(onCircle([0, 1, 2]), onCircle([0, 1]), 1), /got 3 and 2/);
  });
});
