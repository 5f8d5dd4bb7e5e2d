import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkVersionPolicy, pickVersion, stickyPoint } from '../../cloud/version-routing.js';
import { seededRandom } from '../../shared/seeded-random.js';

const versions = ['fp32', 'int8-pruned'];

test('a 3:1 split sends about three in four keys to the first version', () => {
  const counts = { fp32: 0, 'int8-pruned': 0 };
  for (let i = 0; i < 4000; i++) counts[pickVersion(versions, { fp32: 3, 'int8-pruned': 1 }, `device-${i}`) as keyof typeof counts]++;
  const share = counts.fp32 / 4000;
  assert.ok(Math.abs(share - 0.75) < 0.03, `fp32 got ${share} of the keys, expected 0.75 ± 0.03`);
});

test('requests without a key split by weight at random', () => {
  const random = seededRandom(5);
  let second = 0;
  for (let i = 0; i < 4000; i++) if (pickVersion(versions, { fp32: 1, 'int8-pruned': 1 }, undefined, random) === 'int8-pruned') second++;
  assert.ok(Math.abs(second / 4000 - 0.5) < 0.03, `int8-pruned got ${second} of 4000`);
});

test('a key keeps its version on every call and in every process', () => {
  const weights = { fp32: 1, 'int8-pruned': 1 };
  for (let i = 0; i < 50; i++) {
    const key = `tenant-${i}`;
    const first = pickVersion(versions, weights, key);
    for (let n = 0; n < 5; n++) assert.equal(pickVersion(versions, weights, key), first);
  }
  // The point is a hash of the key alone: a replica computes the same one.
  assert.equal(stickyPoint('cam-7'), stickyPoint('cam-7'));
  assert.ok(stickyPoint('cam-7') >= 0 && stickyPoint('cam-7') < 1);
});

test('a version with weight 0, or none given, answers only requests that name it', () => {
  for (let i = 0; i < 200; i++) assert.equal(pickVersion(versions, { fp32: 0, 'int8-pruned': 2 }, `k${i}`), 'int8-pruned');
  for (let i = 0; i < 200; i++) assert.equal(pickVersion(versions, {}, `k${i}`), 'fp32', 'no weights: the default (first) version');
  assert.equal(pickVersion(['int8-pruned'], { fp32: 1 }, 'k'), 'int8-pruned', 'a name only one version serves goes to it');
});

test('a policy naming versions it does not load, or weighting all at 0, is refused with what to fix', () => {
  assert.throws(() => checkVersionPolicy('text-intent', { variants: ['fp32'], weights: { int8: 1 }, shadow: '' }), /versions\.text-intent names version 'int8', which is not in its variants \(fp32\)/);
  assert.throws(() => checkVersionPolicy('text-intent', { variants: ['fp32'], weights: {}, shadow: 'int8' }), /version 'int8'/);
  assert.throws(() => checkVersionPolicy('text-intent', { variants: versions, weights: { fp32: 0 }, shadow: '' }), /all 0/);
  checkVersionPolicy('text-intent', { variants: versions, weights: { fp32: 9, 'int8-pruned': 1 }, shadow: 'int8-pruned' });
});
