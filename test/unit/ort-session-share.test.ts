/**
 * Models that run the same graph file share one session (one worker, one
 * copy of the weights): each holds a lease, the session closes after the
 * last lease, and a lease once closed runs nothing while the others go on.
 * Real worker threads running a real graph.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FileRef } from '../../shared/catalog.js';
import { createLogger } from '../../shared/log.js';
import { sessionWorker } from '../../shared/ort/session.js';
import { SessionShare } from '../../shared/ort/session-share.js';
import { fillShape, writeFillModel } from '../helpers/fill-model.js';

const log = createLogger('test', 'silent');

describe('sessions shared by the models that run one graph file', () => {
  let dir: string;
  let fill: FileRef;
  /** The same graph name, another file. */
  let otherFill: FileRef;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-session-share-'));
    fill = writeFillModel(path.join(dir, 'fill.onnx'));
    otherFill = writeFillModel(path.join(dir, 'fill-2.onnx'), 'fill-2');
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('two leases of one graph and digest run on one worker; the session closes after the last lease', async () => {
    const share = new SessionShare({ providers: ['cpu'], intraOpThreads: 1 }, log);
    const [a, b] = await Promise.all([share.lease('fill', fill), share.lease('fill', fill)]);
    assert.equal(share.openSessions, 1);
    const worker = sessionWorker(a)!;
    assert.ok(worker);
    assert.equal(sessionWorker(b), worker);

    await a.close();
    assert.equal(a.serving(), false);
    await assert.rejects(a.run(fillShape(1n, 1n)), { code: 'UNAVAILABLE', message: /^model fill: session closed$/ });
    await assert.rejects(a.runSequence([fillShape(1n, 1n)], { carry: {}, keep: [] }), { code: 'UNAVAILABLE' });
    assert.equal(b.serving(), true, 'the other holder goes on');
    assert.deepEqual((await b.run(fillShape(2n, 3n))).outputs.y!.dims, [2, 3]);
    assert.equal(share.openSessions, 1);

    await b.close();
    await a.close();
    assert.equal(share.openSessions, 0);
    assert.equal(sessionWorker(b), undefined, 'the worker is gone');
  });

  test('another digest (another file under the same name) gets its own session, and a lease after the last close opens a new one', async () => {
    const share = new SessionShare({ providers: ['cpu'], intraOpThreads: 1 }, log);
    const a = await share.lease('fill', fill);
    const b = await share.lease('fill', otherFill);
    assert.equal(share.openSessions, 2);
    assert.notEqual(sessionWorker(a), sessionWorker(b));
    const first = sessionWorker(a);
    await Promise.all([a.close(), b.close()]);
    const again = await share.lease('fill', fill);
    assert.notEqual(sessionWorker(again), first);
    await again.close();
    assert.equal(share.openSessions, 0);
  });

  test('a file that does not open fails every lease waiting on it and is forgotten, so the next lease tries again', async () => {
    const share = new SessionShare({ providers: ['cpu'], intraOpThreads: 1 }, log);
    const missing = path.join(dir, 'missing.onnx');
    const ref = { source: missing, sha256: fill.sha256 };
    const failures = await Promise.allSettled([share.lease('missing', ref), share.lease('missing', ref)]);
    assert.deepEqual(failures.map((f) => f.status), ['rejected', 'rejected']);
    assert.equal(share.openSessions, 0);
    writeFillModel(missing);
    const lease = await share.lease('missing', ref);
    assert.deepEqual((await lease.run(fillShape(1n, 4n))).outputs.y!.dims, [1, 4]);
    await lease.close();
  });

  test('every holder hears its worker die and come back; a listener that stopped hears nothing more', async () => {
    const share = new SessionShare({ providers: ['cpu'], intraOpThreads: 1 }, log);
    const [a, b] = await Promise.all([share.lease('fill', fill), share.lease('fill', fill)]);
    const heardA: boolean[] = [];
    const heardB: boolean[] = [];
    const stopA = a.onServingChange((serving) => heardA.push(serving));
    b.onServingChange((serving) => heardB.push(serving));
    await sessionWorker(a)!.terminate();
    const deadline = Date.now() + 10_000;
    while (!b.serving() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual([heardA, heardB], [[false, true], [false, true]]);

    stopA();
    await sessionWorker(b)!.terminate();
    while (!b.serving() && Date.now() < deadline + 10_000) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual([heardA, heardB], [[false, true], [false, true, false, true]], 'a listener that stopped hears nothing');
    await Promise.all([a.close(), b.close()]);
    assert.equal(share.openSessions, 0);
  });
});
