/** Tenants' request rate: a token bucket on a fake clock. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TokenBucket } from '../../cloud/token-bucket.js';

function fakeClock() {
  let ms = 1_000;
  return { now: () => ms, advance: (by: number) => (ms += by) };
}

describe('token bucket', () => {
  test('lets a burst through at once, then says how long until the next token', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ ratePerS: 10, burst: 3, now: clock.now });
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [0, 0, 0]);
    assert.equal(bucket.take(), 100, 'one token every 100 ms at 10/s');
    clock.advance(40);
    assert.equal(bucket.take(), 60, 'a refused take costs nothing, the wait shrinks');
    clock.advance(60);
    assert.equal(bucket.take(), 0);
  });

  test('holds the average rate over time and never stores more than the burst', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ ratePerS: 5, burst: 2, now: clock.now });
    clock.advance(60_000);
    let admitted = 0;
    // 50 tries a second for 10 s.
    for (let i = 0; i < 500; i++) {
      if (bucket.take() === 0) admitted++;
      clock.advance(20);
    }
    assert.equal(admitted, 2 + 5 * 10 - 1, 'the burst, then 5 a second (the last token is still filling)');
  });

  test('refuses settings that could never admit anything', () => {
    assert.throws(() => new TokenBucket({ ratePerS: 0, burst: 1 }), /ratePerS must be > 0/);
    assert.throws(() => new TokenBucket({ ratePerS: 1, burst: 0.5 }), /burst >= 1/);
  });
});
