/**
 * The cloud's per-sequence state (cloud/sequences.ts): created by the start
 * flag, updated chunk by chunk in arrival order, freed at the end (which
 * answers the summary) or after the idle timeout, bounded in count, kept
 * apart per tenant; a chunk for a sequence that is not open is a clear error.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, test } from 'node:test';
import { SequenceStore, type SequenceConfig, type SequencePosition } from '../../cloud/sequences.js';
import type { InferError } from '../../shared/errors.js';
import { createInferenceMetrics } from '../../shared/metrics.js';
import type { ChunkAnswer, ClipSummary } from '../../shared/video/chunk.js';
import { ClipSummaryBuilder } from '../../shared/video/clip-summary.js';

const stores: SequenceStore[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function store(config: Partial<SequenceConfig> = {}) {
  const metrics = createInferenceMetrics();
  const s = new SequenceStore({ idleTimeoutMs: 30_000, maxSequences: 16, ...config }, { live: metrics.liveSequences, expired: metrics.expiredSequences, bytes: metrics.sequenceStateBytes });
  stores.push(s);
  return { store: s, metrics };
}

const key = (id: string, tenant = 'acme') => ({ tenant, model: 'video-encoder', id });
const flags = (id: string, start = false, end = false) => ({ id, start, end });

/** A one-frame chunk whose embedding is [index + 1] and whose label is `label`, after `delayMs`. */
function chunk(label = 'neutral', delayMs = 0, seen: SequencePosition[] = []) {
  return async (at: SequencePosition) => {
    seen.push(at);
    await sleep(delayMs);
    const timeMs = at.index * 250;
    const result: ChunkAnswer = {
      chunk: at.index,
      startMs: timeMs,
      endMs: timeMs,
      frames: 1,
      model: 'g',
      labels: [{ label, score: 1 }],
      frameLabels: [{ label, score: 1, timeMs }],
      embedding: [1],
      boundaries: [],
    };
    return { result, last: Float32Array.of(at.index + 1), lastTimeMs: timeMs };
  };
}

const summarizer = () => new ClipSummaryBuilder();

describe('sequence store', () => {
  test('start creates the state, each chunk gets the next index and the last chunk’s carry, end answers the summary and frees it', async () => {
    const { store: s, metrics } = store();
    const seen: SequencePosition[] = [];
    await s.run(key('clip'), flags('clip', true), summarizer, chunk('neutral', 0, seen));
    assert.equal(s.size, 1);
    assert.equal((await metrics.liveSequences.get()).values[0]?.value, 1);
    await s.run(key('clip'), flags('clip'), summarizer, chunk('neutral', 0, seen));
    assert.ok((await metrics.sequenceStateBytes.get()).values[0]!.value > 0, 'the state’s size is gauged');
    const end = await s.run(key('clip'), flags('clip', false, true), summarizer, chunk('sexy', 0, seen));
    assert.deepEqual(seen.map((p) => [p.index, p.previous?.[0], p.lastTimeMs]), [[0, undefined, undefined], [1, 1, 0], [2, 2, 250]]);
    const summary = end.summary as ClipSummary;
    assert.deepEqual([summary.chunks, summary.frames], [3, 3]);
    assert.deepEqual(summary.segments, [{ label: 'neutral', startMs: 0, endMs: 500 }, { label: 'sexy', startMs: 500, endMs: 500 }]);
    assert.equal(s.size, 0);
    assert.equal((await metrics.liveSequences.get()).values[0]?.value, 0);
    assert.equal((await metrics.sequenceStateBytes.get()).values[0]?.value, 0);
  });

  test('a start on an open sequence resets it, as Triton does', async () => {
    const { store: s } = store();
    await s.run(key('clip'), flags('clip', true), summarizer, chunk());
    await s.run(key('clip'), flags('clip'), summarizer, chunk());
    const seen: SequencePosition[] = [];
    await s.run(key('clip'), flags('clip', true), summarizer, chunk('neutral', 0, seen));
    assert.deepEqual(seen.map((p) => [p.index, p.previous]), [[0, undefined]]);
    assert.equal(s.size, 1);
  });

  test('an unknown sequence without the start flag is INVALID_ARGUMENT saying to send it', async () => {
    const { store: s } = store();
    await assert.rejects(s.run(key('nope'), flags('nope'), summarizer, chunk()), (err: InferError) => {
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.match(err.message, /sequence 'nope' is not open; must specify the sequence_start flag on the first request of the sequence/);
      return true;
    });
  });

  test('an idle sequence is freed after the timeout, counted, and a later chunk hears that it expired', async () => {
    const { store: s, metrics } = store({ idleTimeoutMs: 60 });
    await s.run(key('clip'), flags('clip', true), summarizer, chunk());
    await sleep(30);
    await s.run(key('clip'), flags('clip'), summarizer, chunk());
    await sleep(30);
    assert.equal(s.size, 1, 'each chunk restarts the idle clock');
    await sleep(100);
    assert.equal(s.size, 0);
    assert.equal((await metrics.expiredSequences.get()).values[0]?.value, 1);
    await assert.rejects(s.run(key('clip'), flags('clip'), summarizer, chunk()), /sequence 'clip' expired after 60 ms without a chunk \(sequences.idleTimeoutMs\)/);
  });

  test('a chunk longer than the idle timeout does not expire its own sequence', async () => {
    const { store: s } = store({ idleTimeoutMs: 40 });
    await s.run(key('clip'), flags('clip', true), summarizer, chunk());
    await s.run(key('clip'), flags('clip'), summarizer, chunk('neutral', 120));
    assert.equal(s.size, 1);
  });

  test('concurrent chunks of one sequence run one at a time, in arrival order', async () => {
    const { store: s } = store();
    const seen: SequencePosition[] = [];
    const delays = [60, 5, 30, 0, 20];
    const runs = delays.map((delay, i) => s.run(key('clip'), flags('clip', i === 0, i === delays.length - 1), summarizer, chunk('neutral', delay, seen)));
    const outcomes = await Promise.all(runs);
    assert.deepEqual(outcomes.map((o) => (o.outcome.result as ChunkAnswer).chunk), [0, 1, 2, 3, 4]);
    assert.deepEqual(seen.map((p) => p.previous?.[0]), [undefined, 1, 2, 3, 4]);
    assert.equal((outcomes.at(-1)!.summary as ClipSummary).chunks, 5);
  });

  test('two tenants with the same sequence_id have separate sequences', async () => {
    const { store: s } = store();
    await s.run(key('clip', 'a'), flags('clip', true), summarizer, chunk());
    await s.run(key('clip', 'a'), flags('clip'), summarizer, chunk());
    await assert.rejects(s.run(key('clip', 'b'), flags('clip'), summarizer, chunk()), /not open/);
    const seen: SequencePosition[] = [];
    await s.run(key('clip', 'b'), flags('clip', true), summarizer, chunk('neutral', 0, seen));
    await s.run(key('clip', 'a'), flags('clip'), summarizer, chunk('neutral', 0, seen));
    assert.deepEqual(seen.map((p) => p.index), [0, 2]);
    assert.equal(s.size, 2);
  });

  test('a failed chunk leaves the sequence as it was; a failed start leaves none', async () => {
    const { store: s } = store();
    const fail = async () => Promise.reject(new Error('corrupt frame'));
    await assert.rejects(s.run(key('clip'), flags('clip', true), summarizer, fail), /corrupt frame/);
    assert.equal(s.size, 0);
    await s.run(key('clip'), flags('clip', true), summarizer, chunk());
    await assert.rejects(s.run(key('clip'), flags('clip'), summarizer, fail), /corrupt frame/);
    const seen: SequencePosition[] = [];
    await s.run(key('clip'), flags('clip'), summarizer, chunk('neutral', 0, seen));
    assert.deepEqual(seen.map((p) => p.index), [1]);
  });

  test('past maxSequences a new sequence is RESOURCE_EXHAUSTED naming the limit, after expired ones are evicted', async () => {
    const { store: s } = store({ maxSequences: 2, idleTimeoutMs: 50 });
    await s.run(key('a'), flags('a', true), summarizer, chunk());
    await s.run(key('b'), flags('b', true), summarizer, chunk());
    await assert.rejects(s.run(key('c'), flags('c', true), summarizer, chunk()), (err: InferError) => {
      assert.equal(err.code, 'RESOURCE_EXHAUSTED');
      assert.match(err.message, /2 sequences are open, the limit sequences.maxSequences/);
      return true;
    });
    await sleep(80);
    await s.run(key('c'), flags('c', true), summarizer, chunk());
    assert.equal(s.size, 1);
  });
});
