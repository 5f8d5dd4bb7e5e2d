/** Triton-style dynamic batching in front of a session (shared/ort/batching-session.ts), on a fake clock and a worker the test drives. */
import assert from 'node:assert/strict';
import { setImmediate as settle } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { InferError } from '../../shared/errors.js';
import { DynamicBatcher, recordBatches, whyNotBatchable, type BatchClock, type BatchingOptions } from '../../shared/ort/batching-session.js';
import type { RunResult } from '../../shared/ort/session.js';
import { float32, type Tensor } from '../../shared/tensor.js';

/** A clock that moves only when the test says so. */
function fakeClock(): BatchClock & { advance(ms: number): void } {
  let now = 0;
  let timers: { at: number; fire: () => void }[] = [];
  return {
    now: () => now,
    setTimer(fire, ms) {
      const timer = { at: now + ms, fire };
      timers.push(timer);
      return () => (timers = timers.filter((t) => t !== timer));
    },
    advance(ms) {
      now += ms;
      const due = timers.filter((t) => t.at <= now);
      timers = timers.filter((t) => t.at > now);
      due.forEach((t) => t.fire());
    },
  };
}

/** A worker that doubles `x` into `y` and finishes each batch when the test says so; it records what each batch held. */
function heldWorker() {
  const batches: Tensor[] = [];
  const finishers: (() => void)[] = [];
  return {
    batches,
    run(feeds: Record<string, Tensor>): Promise<RunResult> {
      const x = feeds.x!;
      batches.push(x);
      return new Promise((resolve) =>
        finishers.push(() => resolve({ outputs: { y: float32(x.dims, (x.data as Float32Array).map((v) => v * 2)) }, computeUs: 100 })),
      );
    },
    async finish() {
      finishers.shift()!();
      await settle();
    },
  };
}

/** `rows` rows of `width` values, row r filled with `first + r`. */
const rowsOf = (first: number, rows = 1, width = 2) => ({
  x: float32([rows, width], Float32Array.from({ length: rows * width }, (_, i) => first + Math.floor(i / width))),
});
const options = (o: Partial<BatchingOptions> = {}): BatchingOptions => ({ maxBatchSize: 4, maxQueueDelayUs: 0, preferredBatchSizes: [], maxQueueSize: 16, ...o });
const values = (r: RunResult) => [...(r.outputs.y!.data as Float32Array)];

describe('dynamic batcher', () => {
  test('runs that queue while the worker is busy go as one batch, and each gets its own rows back', async () => {
    const worker = heldWorker();
    const batcher = new DynamicBatcher('model m', (f) => worker.run(f), options(), fakeClock());
    const first = batcher.run(rowsOf(1));
    const rest = [batcher.run(rowsOf(2)), batcher.run(rowsOf(3, 2)), batcher.run(rowsOf(5))];
    assert.equal(worker.batches.length, 1, 'the first run goes at once (no delay configured)');
    await worker.finish();
    assert.deepEqual(values(await first), [2, 2]);
    assert.deepEqual(worker.batches[1]!.dims, [4, 2], 'the three waiting runs (1 + 2 + 1 rows) form one batch');
    await worker.finish();
    const [a, b, c] = await Promise.all(rest);
    assert.deepEqual(values(a!), [4, 4]);
    assert.deepEqual(b!.outputs.y!.dims, [2, 2]);
    assert.deepEqual(values(b!), [6, 6, 8, 8]);
    assert.deepEqual(values(c!), [10, 10]);
  });

  test('the oldest run waits at most maxQueueDelayUs for company, then goes with whatever came', async () => {
    const clock = fakeClock();
    const worker = heldWorker();
    const batcher = new DynamicBatcher('model m', (f) => worker.run(f), options({ maxQueueDelayUs: 5_000 }), clock);
    const runs = [batcher.run(rowsOf(1))];
    clock.advance(3);
    runs.push(batcher.run(rowsOf(2)));
    assert.equal(worker.batches.length, 0, 'held: 3 ms of the 5 ms delay have passed');
    clock.advance(1.9);
    assert.equal(worker.batches.length, 0);
    clock.advance(0.1);
    assert.equal(worker.batches.length, 1, 'sent when the oldest run has waited 5 ms');
    assert.deepEqual(worker.batches[0]!.dims, [2, 2]);
    await worker.finish();
    await Promise.all(runs);
  });

  test('a batch that reaches maxBatchSize or a preferred size goes at once, without waiting for the delay', async () => {
    const clock = fakeClock();
    const worker = heldWorker();
    const batcher = new DynamicBatcher('model m', (f) => worker.run(f), options({ maxQueueDelayUs: 1_000_000, preferredBatchSizes: [2] }), clock);
    const preferred = [batcher.run(rowsOf(1)), batcher.run(rowsOf(2))];
    assert.deepEqual(worker.batches[0]?.dims, [2, 2], 'preferred size 2 reached');
    const full = [batcher.run(rowsOf(3, 3)), batcher.run(rowsOf(6))];
    await worker.finish();
    assert.deepEqual(worker.batches[1]?.dims, [4, 2], '3 + 1 rows fill maxBatchSize 4 (no preferred size fits)');
    await worker.finish();
    await Promise.all([...preferred, ...full]);
  });

  test('batches never exceed maxBatchSize rows; a run that alone fills it runs alone', async () => {
    const worker = heldWorker();
    const batcher = new DynamicBatcher('model m', (f) => worker.run(f), options(), fakeClock());
    const runs = [batcher.run(rowsOf(0)), batcher.run(rowsOf(1, 3)), batcher.run(rowsOf(4, 2)), batcher.run(rowsOf(6, 16)), batcher.run(rowsOf(22))];
    for (let i = 0; i < 3; i++) await worker.finish();
    assert.deepEqual(
      worker.batches.map((b) => b.dims[0]),
      [1, 3, 2, 16],
      'busy with the first; then 3 rows (3 + 2 would pass 4); then 2 (2 + 16 would); then the 16-row run alone',
    );
    assert.equal(batcher.queued, 1, 'the last run waits for the worker');
    await worker.finish();
    await worker.finish();
    assert.equal(worker.batches[4]!.dims[0], 1);
    const results = await Promise.all(runs);
    assert.deepEqual(values(results[3]!).slice(0, 2), [12, 12], 'the big run gets its own rows back');
  });

  test('runs with different shapes beyond the batch dimension do not share a batch', async () => {
    const worker = heldWorker();
    const batcher = new DynamicBatcher('model m', (f) => worker.run(f), options(), fakeClock());
    const first = batcher.run(rowsOf(0));
    const runs = [batcher.run(rowsOf(1, 1, 3)), batcher.run(rowsOf(2)), batcher.run(rowsOf(3, 1, 3))];
    for (let i = 0; i < 3; i++) await worker.finish();
    assert.deepEqual(
      worker.batches.map((b) => b.dims),
      [
        [1, 2],
        [2, 3],
        [1, 2],
      ],
      'the oldest run picks its bucket: both width-3 runs, then the width-2 one',
    );
    await Promise.all([first, ...runs]);
  });

  test('beyond maxQueueSize waiting runs, a run is refused with RESOURCE_EXHAUSTED', async () => {
    const worker = heldWorker();
    const batcher = new DynamicBatcher('model m', (f) => worker.run(f), options({ maxQueueSize: 2 }), fakeClock());
    const runs = [batcher.run(rowsOf(0)), batcher.run(rowsOf(1)), batcher.run(rowsOf(2))];
    await assert.rejects(batcher.run(rowsOf(3)), (err: InferError) => err.code === 'RESOURCE_EXHAUSTED' && /batch queue is full \(2 waiting\)/.test(err.message));
    await worker.finish();
    await worker.finish();
    await Promise.all(runs);
  });

  test("a failed batch fails every run in it; a run whose data does not fit its shape is refused alone", async () => {
    const batcher = new DynamicBatcher('model m', async () => Promise.reject(new InferError('INTERNAL', 'model m: boom')), options(), fakeClock());
    await Promise.all([batcher.run(rowsOf(0)), batcher.run(rowsOf(1))].map((p) => assert.rejects(p, /boom/)));
    await assert.rejects(batcher.run({ x: float32([2, 2], new Float32Array(3)) }), (err: InferError) => err.code === 'INVALID_ARGUMENT' && /3 elements for shape \[2,2\]/.test(err.message));
  });

  test('a request learns how many requests shared its run and how long it waited in the batcher', async () => {
    const clock = fakeClock();
    const worker = heldWorker();
    const batcher = new DynamicBatcher('model m', (f) => worker.run(f), options({ maxQueueDelayUs: 2_000 }), clock);
    const requests = [recordBatches(() => batcher.run(rowsOf(0))), recordBatches(() => batcher.run(rowsOf(1))), recordBatches(() => batcher.run(rowsOf(2)))];
    clock.advance(2);
    await worker.finish();
    const records = (await Promise.all(requests)).map((r) => r.batch);
    assert.deepEqual(records, [
      { batchSize: 3, waitMs: 2 },
      { batchSize: 3, waitMs: 2 },
      { batchSize: 3, waitMs: 2 },
    ]);
    assert.deepEqual((await recordBatches(async () => 'no batcher')).batch, { batchSize: 1, waitMs: 0 });
  });

  test('only graphs whose every tensor has a free leading dimension can batch', () => {
    const meta = (shape: number[]) => ({ name: 't', type: 'float32' as const, shape });
    assert.equal(whyNotBatchable({ inputs: [meta([-1, 299, 299, 3])], outputs: [meta([-1, 5])] }), undefined);
    assert.match(whyNotBatchable({ inputs: [meta([1, 16384])], outputs: [meta([-1, 24])] })!, /without a free leading batch dimension/);
    assert.match(whyNotBatchable({ inputs: [meta([-1, -1]), meta([2, -1, 128]), meta([])], outputs: [meta([-1, 1])] })!, /\[2,-1,128\]/, "Silero VAD's state");
  });
});
