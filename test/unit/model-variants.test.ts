/**
 * The edge's variants against their FP32 originals, loaded from the catalog
 * (sha256-checked) and scored by the evaluators of `splitinfer model eval`
 * on the shipped held-out data, through the handlers the tiers serve with:
 * text-intent int8-pruned must stay within 1 point of FP32 accuracy on the
 * held-out split at ≤ 30% of its size; audio-vad int8 must make the same
 * speech/non-speech decision on ≥ 99% of 32 ms frames of the shipped WAVs.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getEvaluator } from '../../models/toolchain/evaluator.js';
import '../../models/toolchain/evaluators.js';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';

const log = createLogger('test', 'silent');
const options = { providers: ['cpu'], intraOpThreads: 1 };
const catalog = loadCatalog();
const fileSize = (id: string, variant: string) => statSync(resolveSource(Object.values(findModel(catalog, id).variants[variant]!.graphs)[0]!.source)).size;

async function loadVariants(id: string, variants: string[]): Promise<LoadedModel[]> {
  return Promise.all(variants.map((variant) => loadModel(findModel(catalog, id), variant, options, log)));
}

async function evaluateOnHeldOut(id: string, [reference, candidate]: LoadedModel[]) {
  const evaluator = getEvaluator(findModel(catalog, id).handler);
  return evaluator.load(evaluator.defaultDataPath).evaluate(reference!, candidate!);
}

describe('text-intent int8-pruned', () => {
  let models: LoadedModel[] = [];
  before(async () => (models = await loadVariants('text-intent', ['fp32', 'int8-pruned'])));
  after(async () => Promise.all(models.map((m) => m.close())));

  test('is at most 30% of the FP32 file and within 1 point of its held-out accuracy', async () => {
    assert.ok(fileSize('text-intent', 'int8-pruned') <= 0.3 * fileSize('text-intent', 'fp32'), 'size');
    const { reference: fp32, candidate: int8, samples } = await evaluateOnHeldOut('text-intent', models);
    assert.ok(fp32 > 0.9, `fp32 accuracy ${fp32.toFixed(4)}: the held-out split is read and scored`);
    assert.ok(int8 >= fp32 - 0.01, `int8-pruned accuracy ${int8.toFixed(4)} vs fp32 ${fp32.toFixed(4)} on ${samples} held-out sentences`);
  });
});

describe('audio-vad int8', () => {
  let models: LoadedModel[] = [];
  before(async () => (models = await loadVariants('audio-vad', ['fp32', 'int8'])));
  after(async () => Promise.all(models.map((m) => m.close())));

  test('the speech decision of at least 99% of frames of each shipped WAV matches FP32', async () => {
    const { groups } = await evaluateOnHeldOut('audio-vad', models);
    assert.deepEqual(Object.keys(groups), ['speech-en.wav', 'speech-zh.wav']);
    for (const [name, file] of Object.entries(groups)) assert.ok(file.candidate >= 0.99, `${name}: ${(file.candidate * 100).toFixed(2)}% of ${file.samples} frames agree`);
  });

  test('the shipped WAVs hold both speech and silence, so agreement on them means something', async () => {
    const evaluator = getEvaluator('audio-vad');
    const [fp32] = models;
    for (const name of ['speech-en.wav', 'speech-zh.wav']) {
      const frames = (await fp32!.run(readFileSync(path.join(evaluator.defaultDataPath, name)))).result.frames as { count: number; speechFrames: number };
      assert.ok(frames.speechFrames > 0 && frames.speechFrames < frames.count, `${name}: ${frames.speechFrames} of ${frames.count} frames are speech`);
    }
  });
});
