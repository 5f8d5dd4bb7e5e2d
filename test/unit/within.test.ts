/** `within`: a promise's value if it settles in time, else undefined, with the timer never left behind. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { within } from '../../shared/within.js';

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

test('a value that comes in time is returned', async () => {
  assert.equal(await within(after(5, 'answer'), 1_000), 'answer');
});

test('past the limit the result is undefined, and the work is not stopped', async () => {
  let finished = false;
  const work = after(60, 'late').then((v) => ((finished = true), v));
  assert.equal(await within(work, 10), undefined);
  assert.equal(await work, 'late');
  assert.equal(finished, true);
});

test('a rejection that comes first rejects; a limit already passed answers at once', async () => {
  await assert.rejects(within(Promise.reject(new Error('refused')), 1_000), /refused/);
  assert.equal(await within(after(50, 'x'), -5), undefined);
});

test('the timer is cleared once the work settles, so a long limit does not hold the process open', async () => {
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  await within(Promise.resolve(1), 60_000);
  await within(Promise.reject(new Error('no')), 60_000).catch(() => undefined);
  assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, before);
});
