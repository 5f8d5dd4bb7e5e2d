/**
 * The fuzz properties (test/fuzz/properties.ts) with a fixed seed and a few
 * hundred cases each, so a regression in what strangers can send fails the
 * suite; `npm run fuzz` runs them far longer with fresh seeds.
 */
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { properties } from '../fuzz/properties.js';

describe('fuzzing (fixed seed)', () => {
  for (const { name, property } of properties) {
    test(name, () => {
      fc.assert(property as fc.IRawProperty<unknown>, { seed: 20_261_207, numRuns: 400 });
    });
  }
});
