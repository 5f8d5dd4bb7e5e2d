/**
 * A recurrent model run as one sequence on the session's worker (one round
 * trip for every step) gives what running it step by step gives; a plan
 * that carries an output the model does not have is a clear error, and the
 * session keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import { InferError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { runSequenceStepwise } from '../../shared/ort/sequence.js';
import { openSession, type OrtSession } from '../../shared/ort/session.js';
import { float32, type Tensor } from '../../shared/tensor.js';

const STATE_DIMS = [2, 1, 128];
const sr: Tensor = { type: 'int64', dims: [], data: BigInt64Array.of(16_000n) };

/** 40 frames of a 440 Hz tone with the silero input layout (64 context + 512 new samples). */
function toneSteps(): Record<string, Tensor>[] {
  return Array.from({ length: 40 }, (_, frame) => {
    const input = Float32Array.from({ length: 576 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * (frame * 512 + i)) / 16_000));
    return { input: float32([1, 576], input), sr, ...(frame === 0 ? { state: float32(STATE_DIMS, new Float32Array(256)) } : {}) };
  });
}

describe('ORT sequence runs', () => {
  let session: OrtSession;

  before(async () => {
    const graph = findModel(loadCatalog(), 'audio-vad').variants.fp32!.graphs['silero-vad']!;
    session = await openSession('silero-vad', resolveSource(graph.source), { providers: ['cpu'], intraOpThreads: 1 }, createLogger('test-sequence', 'silent'));
  });

  after(() => session?.close());

  test('one worker round trip gives the same outputs as a run per step, the state carried between steps', async () => {
    const plan = { carry: { stateN: 'state' }, keep: ['output'] };
    const together = await session.runSequence(toneSteps(), plan);
    const stepwise = await runSequenceStepwise((feeds) => session.run(feeds), toneSteps(), plan);
    assert.equal(together.outputs.length, 40);
    assert.deepEqual(together.outputs.map((o) => Object.keys(o)), stepwise.outputs.map(() => ['output']));
    const probabilities = (r: typeof together) => r.outputs.map((o) => (o.output!.data as Float32Array)[0]!);
    assert.deepEqual(probabilities(together), probabilities(stepwise));
    assert.ok(new Set(probabilities(together)).size > 1, 'the state changes the answer from frame to frame');
    assert.ok(together.computeUs > 0);
  });

  test('carrying an output the model does not produce fails the sequence with a clear error; the session still runs', async () => {
    await assert.rejects(session.runSequence(toneSteps().slice(0, 2), { carry: { hidden: 'state' }, keep: ['output'] }), (err: InferError) => {
      assert.equal(err.code, 'INTERNAL');
      assert.match(err.message, /a sequence carries output 'hidden', which the model does not produce/);
      return true;
    });
    const again = await session.runSequence(toneSteps().slice(0, 1), { carry: {}, keep: ['output'] });
    assert.equal(again.outputs.length, 1);
  });
});
