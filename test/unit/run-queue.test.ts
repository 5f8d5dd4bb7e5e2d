/** The one run queue of the edge's local runtime and the cloud's models: bounded, FIFO, deadline-aware. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { InferError } from '../../shared/errors.js';
import { RunQueue } from '../../shared/run-queue.js';

/** Work that finishes only when the test says so. */
function gate<T = string>(value: T) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let started = false;
  return {
    work: async () => {
      started = true;
      await opened;
      return value;
    },
    open,
    get started() {
      return started;
    },
  };
}

const rejectsWith = async (promise: Promise<unknown>, code: string, message: RegExp) => {
  const err = await promise.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof InferError, `expected an InferError, got ${String(err)}`);
  assert.equal(err.code, code);
  assert.match(err.message, message);
};

describe('run queue', () => {
  test('runs at most `concurrency` at once and starts the waiting ones in arrival order', async () => {
    const queue = new RunQueue({ label: 'model m', concurrency: 2, maxWaiting: 10 });
    const order: string[] = [];
    const gates = ['a', 'b', 'c', 'd'].map((name) => gate(name));
    const runs = gates.map((g) => queue.run(async () => order.push(await g.work())));
    await sleep(5);
    assert.deepEqual(gates.map((g) => g.started), [true, true, false, false]);
    assert.equal(queue.inFlight, 4);
    assert.equal(queue.itemsAhead, 2 / 2 + 2, 'running ones count half');
    gates[1]!.open();
    await sleep(5);
    assert.deepEqual(gates.map((g) => g.started), [true, true, true, false], 'the first waiting one took the free slot');
    for (const g of gates) g.open();
    await Promise.all(runs);
    assert.deepEqual(order, ['b', 'a', 'c', 'd']);
    assert.equal(queue.inFlight, 0);
  });

  test('reports the wait apart from the work', async () => {
    const queue = new RunQueue({ label: 'model m', concurrency: 1, maxWaiting: 1 });
    const first = queue.run(() => sleep(60, 'first'));
    const second = await queue.run(() => sleep(20, 'second'));
    assert.equal((await first).value, 'first');
    assert.equal(second.value, 'second');
    assert.ok(second.queueMs >= 50, `waited ${second.queueMs} ms behind a 60 ms run`);
    assert.ok(second.computeMs >= 15 && second.computeMs < 50, `computed ${second.computeMs} ms`);
  });

  test('a run beyond maxWaiting is refused at once with RESOURCE_EXHAUSTED saying what to do', async () => {
    const queue = new RunQueue({ label: 'model m', concurrency: 1, maxWaiting: 1, fullHint: 'retry later or raise limits.maxQueuePerModel' });
    const running = gate('running');
    const first = queue.run(running.work);
    const waiting = queue.run(async () => 'waited');
    await rejectsWith(queue.run(async () => 'never'), 'RESOURCE_EXHAUSTED', /^model m: queue is full \(1 waiting\); retry later or raise limits\.maxQueuePerModel$/);
    running.open();
    assert.equal((await waiting).value, 'waited');
    await first;
  });

  test('a waiting run whose deadline passes is rejected at that moment, never runs, and the ones behind it move up', async () => {
    const queue = new RunQueue({ label: 'local model image-ocr@int8', concurrency: 1, maxWaiting: Infinity });
    const running = gate('running');
    const first = queue.run(running.work);
    let lateRan = false;
    const started = performance.now();
    const late = queue.run(async () => (lateRan = true), { at: performance.now() + 40, what: "the task's deadline" }, 't1 (image)');
    const patient = queue.run(async () => 'patient', { at: performance.now() + 10_000, what: "the task's deadline" });
    await rejectsWith(late, 'DEADLINE_EXCEEDED', /^t1 \(image\): waited \d+ ms in the queue of local model image-ocr@int8, busy with earlier requests, until the task's deadline passed$/);
    const rejectedAfterMs = performance.now() - started;
    assert.ok(rejectedAfterMs >= 35 && rejectedAfterMs < 500, `rejected after ${rejectedAfterMs} ms, while the run ahead was still busy`);
    assert.equal(queue.itemsAhead, 0.5 + 1, 'the late run left the queue');
    running.open();
    assert.equal((await patient).value, 'patient');
    await first;
    assert.equal(lateRan, false);
  });

  test('a run that finds a free slot starts even with its deadline near', async () => {
    const queue = new RunQueue({ label: 'model m', concurrency: 1, maxWaiting: 0 });
    const run = await queue.run(() => sleep(30, 'done'), { at: performance.now() + 1, what: "the request's deadline_ms 1" });
    assert.equal(run.value, 'done');
  });

  test('a failing run frees its slot and its error reaches the caller unchanged', async () => {
    const queue = new RunQueue({ label: 'model m', concurrency: 1, maxWaiting: 1 });
    await assert.rejects(queue.run(async () => Promise.reject(new InferError('INVALID_ARGUMENT', 'bad input'))), /bad input/);
    assert.equal((await queue.run(async () => 'next')).value, 'next');
  });

  test('closing refuses waiting and new runs with UNAVAILABLE and lets the running one finish', async () => {
    const queue = new RunQueue({ label: 'model m', concurrency: 1, maxWaiting: 5 });
    const running = gate('finished');
    const first = queue.run(running.work);
    const waiting = queue.run(async () => 'never');
    queue.close('the server is shutting down');
    await rejectsWith(waiting, 'UNAVAILABLE', /^model m: the server is shutting down$/);
    await rejectsWith(queue.run(async () => 'never'), 'UNAVAILABLE', /shutting down/);
    running.open();
    assert.equal((await first).value, 'finished');
  });
});

test('a waiting run whose caller cancelled leaves the queue with CANCELLED and never runs', async () => {
  const queue = new RunQueue({ label: 'model m', concurrency: 1, maxWaiting: 4 });
  let release!: () => void;
  const first = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
  const caller = new AbortController();
  let ran = false;
  const waiting = queue.run(async () => void (ran = true), undefined, 'request r', caller.signal);
  const behind = queue.run(async () => 'behind');
  assert.equal(queue.inFlight, 3);
  caller.abort();
  await assert.rejects(waiting, (err: InferError) => err.code === 'CANCELLED' && /request r: the caller cancelled it before it ran/.test(err.message));
  assert.equal(queue.inFlight, 2, 'the cancelled run left the queue');
  release();
  await first;
  assert.equal((await behind).value, 'behind');
  assert.equal(ran, false);
  await assert.rejects(queue.run(async () => undefined, undefined, 'request late', caller.signal), (err: InferError) => err.code === 'CANCELLED');
});
