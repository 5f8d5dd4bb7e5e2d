/** The one run queue of the edge's local runtime and the cloud's models: bounded, FIFO per tenant and fair across tenants, deadline-aware. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { InferError } from '../../shared/errors.js';
import { RunQueue, type QueueTicket } from '../../shared/run-queue.js';

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
    await rejectsWith(queue.run(async () => 'never'), 'RESOURCE_EXHAUSTED', /^model m: queue is full \(1 waiting\); retry later or raise limits\.maxQueuePerModel \(retry after ~\d+ ms\)$/);
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

  /** A queue with one slot held by a gated run, so everything after waits; `start(name, ticket)` records the order runs start in. */
  function heldQueue(options: Partial<ConstructorParameters<typeof RunQueue>[0]> = {}) {
    const queue = new RunQueue({ label: 'model m', concurrency: 1, maxWaiting: 100, ...options });
    const holder = gate('held');
    const held = queue.run(holder.work);
    const order: string[] = [];
    const runs: Promise<unknown>[] = [];
    const start = (name: string, ticket?: QueueTicket) => {
      const run = queue.run(async () => order.push(name), undefined, undefined, ticket);
      runs.push(run.catch(() => undefined));
      return run;
    };
    const finish = async () => {
      holder.open();
      await held;
      await Promise.all(runs);
    };
    return { queue, start, order, finish };
  }

  test('waiting runs of two tenants alternate however many one of them queued', async () => {
    const { start, order, finish } = heldQueue({ tenants: { weightOf: () => 1, maxQueuedOf: () => Infinity } });
    for (let i = 0; i < 6; i++) start(`a${i}`, { tenant: 'a' });
    start('b0', { tenant: 'b' });
    start('b1', { tenant: 'b' });
    await finish();
    assert.deepEqual(order, ['a0', 'b0', 'a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
  });

  test('a tenant with weight 2 gets two turns for each of a weight-1 tenant', async () => {
    const { start, order, finish } = heldQueue({ tenants: { weightOf: (t) => (t === 'gold' ? 2 : 1), maxQueuedOf: () => Infinity } });
    for (let i = 0; i < 4; i++) start(`g${i}`, { tenant: 'gold' });
    for (let i = 0; i < 4; i++) start(`s${i}`, { tenant: 'silver' });
    await finish();
    assert.deepEqual(order, ['g0', 'g1', 's0', 'g2', 'g3', 's1', 's2', 's3']);
  });

  test("priority levels go first whatever the tenants' shares; priority 0 or out of range gets the default level", async () => {
    const { start, order, finish } = heldQueue({ priorityLevels: 3, defaultPriorityLevel: 2 });
    start('low', { tenant: 'a', priority: 3 });
    start('default', { tenant: 'a', priority: 0 });
    start('out-of-range', { tenant: 'b', priority: 9 });
    start('high', { tenant: 'b', priority: 1 });
    start('no-ticket');
    await finish();
    assert.deepEqual(order, ['high', 'default', 'out-of-range', 'no-ticket', 'low']);
  });

  test("a tenant over its maxQueued is refused with a retry hint while another tenant's run still waits", async () => {
    const { start, order, finish } = heldQueue({ tenants: { weightOf: () => 1, maxQueuedOf: (t) => (t === 'a' ? 2 : Infinity) } });
    start('a0', { tenant: 'a' });
    start('a1', { tenant: 'a' });
    const refused = await start('a2', { tenant: 'a' }).then(
      () => assert.fail('expected a refusal'),
      (err: InferError) => err,
    );
    assert.equal(refused.code, 'RESOURCE_EXHAUSTED');
    assert.match(refused.message, /^model m: tenant a already has 2 requests waiting \(its maxQueued\); retry after ~\d+ ms, or raise that tenant's maxQueued$/);
    assert.ok(refused.retryAfterMs! >= 1);
    start('b0', { tenant: 'b' });
    await finish();
    assert.deepEqual(order, ['a0', 'b0', 'a1']);
  });

  test("a full queue gives a flooding tenant's newest place to a tenant with fewer waiting", async () => {
    const { start, order, finish } = heldQueue({ maxWaiting: 3, tenants: { weightOf: () => 1, maxQueuedOf: () => Infinity } });
    start('a0', { tenant: 'a' });
    start('a1', { tenant: 'a' });
    const displaced = start('a2', { tenant: 'a' });
    start('b0', { tenant: 'b' });
    await rejectsWith(displaced, 'RESOURCE_EXHAUSTED', /queue is full \(3 waiting, most of them tenant a's, whose newest gave its place to tenant b\); retry later \(retry after ~\d+ ms\)/);
    // Now a has 2 and b 1: a third tenant displaces a again, but b may not displace a (2 vs 1 + 1).
    await rejectsWith(start('b1', { tenant: 'b' }), 'RESOURCE_EXHAUSTED', /^model m: queue is full \(3 waiting\)/);
    await finish();
    assert.deepEqual(order, ['a0', 'b0', 'a1']);
  });

  test("a retry hint follows the runs' average time over the slots", async () => {
    const queue = new RunQueue({ label: 'model m', concurrency: 2, maxWaiting: 0 });
    assert.equal(queue.retryAfterMs, 1, 'nothing running, nothing measured: the smallest hint');
    const first = queue.run(() => sleep(40));
    await sleep(30);
    assert.ok(queue.retryAfterMs >= 12, `hint ${queue.retryAfterMs} ms: before any run finished, the running one's age over the slots`);
    await first;
    assert.ok(queue.retryAfterMs >= 18 && queue.retryAfterMs < 200, `hint ${queue.retryAfterMs} ms after one 40 ms run on 2 slots`);
  });
});

test('a waiting run whose caller cancelled leaves the queue with CANCELLED and never runs', async () => {
  const queue = new RunQueue({ label: 'model m', concurrency: 1, maxWaiting: 4 });
  let release!: () => void;
  const first = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
  const caller = new AbortController();
  let ran = false;
  const waiting = queue.run(async () => void (ran = true), undefined, 'request r', undefined, caller.signal);
  const behind = queue.run(async () => 'behind');
  assert.equal(queue.inFlight, 3);
  caller.abort();
  await assert.rejects(waiting, (err: InferError) => err.code === 'CANCELLED' && /request r: the caller cancelled it before it ran/.test(err.message));
  assert.equal(queue.inFlight, 2, 'the cancelled run left the queue');
  release();
  await first;
  assert.equal((await behind).value, 'behind');
  assert.equal(ran, false);
  await assert.rejects(queue.run(async () => undefined, undefined, 'request late', undefined, caller.signal), (err: InferError) => err.code === 'CANCELLED');
});
