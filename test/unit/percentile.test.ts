/** The project's one percentile: nearest rank, always an observed value. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { percentile, percentileOfSorted } from '../../shared/percentile.js';

describe('nearest-rank percentile', () => {
  test('is the smallest value with at least p of the values at or below it', () => {
    const values = [15, 20, 35, 40, 50];
    assert.equal(percentile(values, 0.05), 15);
    assert.equal(percentile(values, 0.3), 20);
    assert.equal(percentile(values, 0.4), 20);
    assert.equal(percentile(values, 0.5), 35);
    assert.equal(percentile(values, 1), 50);
  });

  test('never interpolates: the median of an even count is the lower middle value', () => {
    assert.equal(percentile([4, 1, 3, 2], 0.5), 2);
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], 0.9), 9, 'a lone outlier above the 90th percentile is left out');
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], 0.91), 100);
  });

  test('takes values in any order and leaves them as they were; sorted input gives the same answer', () => {
    const values = [9, 1, 5];
    assert.equal(percentile(values, 0.5), 5);
    assert.deepEqual(values, [9, 1, 5]);
    assert.equal(percentileOfSorted([1, 5, 9], 0.5), 5);
  });

  test('of no values is NaN', () => {
    assert.ok(Number.isNaN(percentile([], 0.5)));
    assert.ok(Number.isNaN(percentileOfSorted([], 0.5)));
  });
});
