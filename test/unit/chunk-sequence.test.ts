/**
 * The bookkeeping of a video's chunks in flight: chunks reach the cloud's
 * sequence in order and restart it whenever the chunk before did not go
 * there; room is bounded (a live source is told at once when there is none);
 * outcomes are handed on in chunk order.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChunkSequence, InOrder } from '../../edge/video/chunk-sequence.js';
import type { ChunkWork } from '../../edge/tasks.js';

const frames = () => [{ data: new Uint8Array(12), width: 2, height: 2, index: 0, timeMs: 0 }];

describe('chunk sequence', () => {
  test('a chunk starts the cloud sequence unless the chunk before was sent there; a chunk the cloud did not answer makes the next one start again', () => {
    const sequence = new ChunkSequence('seq-1', 8);
    const work = [0, 1, 2, 3, 4].map((k) => sequence.work(k, frames(), [1], k === 4));
    assert.deepEqual(work[0]!.sequence(), { id: 'seq-1', start: true, end: false });
    assert.equal(work[1]!.sequence().start, false);
    sequence.settled(0, work[0]!, { answeredBy: 'cloud' });
    sequence.settled(1, work[1]!, { answeredBy: 'edge' }); // the cloud failed it; the edge answered instead
    assert.equal(work[2]!.sequence().start, true, 'the cloud may not hold the sequence any more');
    sequence.settled(2, work[2]!, { answeredBy: 'cloud' });
    work[3]!.runsOnEdge();
    sequence.settled(3, work[3]!, { answeredBy: 'edge' });
    assert.deepEqual(work[4]!.sequence(), { id: 'seq-1', start: true, end: true }, 'the chunk before ran on the edge');
  });

  test("a chunk's turn comes once the chunk before was sent, ran on the edge, or settled", async () => {
    const sequence = new ChunkSequence('seq-2', 8);
    const [a, b, c] = [0, 1, 2].map((k) => sequence.work(k, frames(), [1], false)) as [ChunkWork, ChunkWork, ChunkWork];
    const order: string[] = [];
    const turns = [b.turn().then(() => order.push('b')), c.turn().then(() => order.push('c'))];
    await a.turn();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, [], 'nothing passed yet');
    a.sequence();
    await turns[0];
    b.runsOnEdge();
    await turns[1];
    assert.deepEqual(order, ['b', 'c']);
  });

  test('the edge embedding of the chunk before is handed on only when the edge answered it', async () => {
    const sequence = new ChunkSequence('seq-3', 8);
    const [a, b, c] = [0, 1, 2].map((k) => sequence.work(k, frames(), [1], false)) as [ChunkWork, ChunkWork, ChunkWork];
    a.lastOnEdge = { graph: 'g', embedding: Float32Array.of(1, 0) };
    sequence.settled(0, a, { answeredBy: 'edge' });
    assert.deepEqual(await b.previousOnEdge(), { graph: 'g', embedding: Float32Array.of(1, 0) });
    b.lastOnEdge = { graph: 'g', embedding: Float32Array.of(0, 1) };
    sequence.settled(1, b, { answeredBy: undefined });
    assert.equal(await c.previousOnEdge(), undefined, 'a failed chunk hands nothing on');
  });

  test('room is bounded: a file waits for a chunk to settle, a live source is told at once', async () => {
    const sequence = new ChunkSequence('seq-4', 1);
    assert.equal(await sequence.room(false), true);
    const first = sequence.work(0, frames(), [1], false);
    assert.equal(await sequence.room(true), false, 'live: no room now');
    sequence.skip(1);
    let waited = false;
    const room = sequence.room(false).then((ok) => (waited = ok));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(waited, false);
    sequence.settled(0, first, { answeredBy: 'cloud' });
    await room;
    assert.equal(waited, true);
    assert.equal(sequence.peakInFlight, 1);
    await sequence.drained();
  });
});

describe('in-order delivery', () => {
  test('items are handed on in index order whatever order they arrive in, and drained() waits for the count', async () => {
    const seen: number[] = [];
    const inOrder = new InOrder<number>((n) => seen.push(n));
    const drained = inOrder.drained(3);
    inOrder.put(2, 2);
    inOrder.put(1, 1);
    assert.deepEqual(seen, []);
    inOrder.put(0, 0);
    await drained;
    assert.deepEqual(seen, [0, 1, 2]);
  });
});
