/**
 * A runtime worker that dies is noticed and replaced: the runs it held fail
 * at once, the session says it is not serving until a new worker has loaded
 * the model, restarts are bounded, and close() never waits for an exit that
 * already happened. The worker is a real thread running a real model; it is
 * ended with `terminate()`, which is what a crash looks like from outside.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { once } from 'node:events';
import { InferError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { RestartBudget } from '../../shared/ort/restart-budget.js';
import { openSession, sessionWorker } from '../../shared/ort/session.js';
import { fillShape, writeFillModel } from '../helpers/fill-model.js';

const log = createLogger('test', 'silent');


describe('a session whose runtime worker dies', () => {
  let dir: string;
  let fillFile: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-ort-restart-'));
    fillFile = path.join(dir, 'fill.onnx');
    writeFillModel(fillFile);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('fails its pending runs at once, is not serving, and serves again once restarted', async () => {
    const session = await openSession('fill', fillFile, { providers: ['cpu'], intraOpThreads: 1 }, log);
    try {
      const heard: boolean[] = [];
      session.onServingChange((serving) => heard.push(serving));
      assert.equal(session.serving(), true);
      const worker = sessionWorker(session)!;
      const killed = performance.now();
      // Ended while idle: terminating a thread inside onnxruntime-node's native run can abort the whole process.
      // The runs sent right after reach a thread that is going away and would never be answered.
      const dying = worker.terminate();
      const runs = Array.from({ length: 4 }, () => session.run(fillShape(200n, 200n)).then(() => undefined, (err: unknown) => err));
      await dying;
      const outcomes = await Promise.all(runs);
      assert.ok(performance.now() - killed < 1_000, 'the runs held by the dead worker settled at once');
      for (const err of outcomes) {
        assert.ok(err instanceof InferError);
        assert.equal(err.code, 'UNAVAILABLE');
        assert.match(err.message, /^model fill: the runtime worker exited \(code 1\) during the run — retry; the worker is being restarted$/);
      }
      assert.equal(session.serving(), false);
      await assert.rejects(session.run(fillShape(1n, 1n)), { code: 'UNAVAILABLE', message: /^model fill: the runtime worker is restarting after it died — retry shortly$/ });

      const deadline = Date.now() + 10_000;
      while (!session.serving() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(heard, [false, true]);
      assert.notEqual(sessionWorker(session), worker, 'a new thread');
      const { outputs } = await session.run(fillShape(2n, 3n));
      assert.deepEqual(outputs.y!.dims, [2, 3]);
    } finally {
      await session.close();
    }
    assert.equal(session.serving(), false);
  });

  test('close() right after the worker died returns at once instead of waiting for an exit that already happened', async () => {
    const session = await openSession('fill', fillFile, { providers: ['cpu'], intraOpThreads: 1 }, log);
    const worker = sessionWorker(session)!;
    const exited = once(worker, 'exit');
    await worker.terminate();
    await exited;
    const started = performance.now();
    await session.close();
    assert.ok(performance.now() - started < 500, `close took ${Math.round(performance.now() - started)} ms`);
    // No restart starts after close: nothing keeps the process alive.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(sessionWorker(session), undefined);
    await assert.rejects(session.run(fillShape(1n, 1n)), { code: 'UNAVAILABLE', message: /session closed/ });
  });
});

test('restarts back off and are bounded: five within a minute, then the next waits for the oldest to leave the window', () => {
  const budget = new RestartBudget({ maxRestarts: 5, windowMs: 60_000, firstDelayMs: 100 });
  const delays = [0, 1, 2, 3, 4].map(() => budget.next(1_000));
  assert.deepEqual(delays, [100, 200, 400, 800, 1_600].map((delayMs) => ({ delayMs, spent: false })));
  // The oldest restart ran at 1100 ms; the window lets the sixth run at 61 100 ms.
  assert.deepEqual(budget.next(5_000), { delayMs: 56_100, spent: true });
  // A minute of calm and the backoff starts over.
  assert.deepEqual(budget.next(200_000), { delayMs: 100, spent: false });
});
