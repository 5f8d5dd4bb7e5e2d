/**
 * The edge's variants against their FP32 originals, loaded from the catalog
 * (sha256-checked) and run through the same handlers the tiers serve with:
 * text-intent int8-pruned must stay within 1 point of FP32 accuracy on the
 * held-out split at ≤ 30% of its size; audio-vad int8 must make the same
 * speech/non-speech decision on ≥ 99% of 32 ms frames of the shipped WAVs.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../../shared/handlers/audio-vad.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';

const log = createLogger('test', 'silent');
const options = { providers: ['cpu'], intraOpThreads: 1 };
const catalog = loadCatalog();
const fileSize = (id: string, variant: string) => statSync(resolveSource(Object.values(findModel(catalog, id).variants[variant]!.graphs)[0]!.source)).size;

async function loadVariants(id: string, variants: string[]): Promise<LoadedModel[]> {
  return Promise.all(variants.map((variant) => loadModel(findModel(catalog, id), variant, options, log)));
}

describe('text-intent int8-pruned', () => {
  let models: LoadedModel[] = [];
  before(async () => (models = await loadVariants('text-intent', ['fp32', 'int8-pruned'])));
  after(async () => Promise.all(models.map((m) => m.close())));

  test('is at most 30% of the FP32 file and within 1 point of its held-out accuracy', async () => {
    assert.ok(fileSize('text-intent', 'int8-pruned') <= 0.3 * fileSize('text-intent', 'fp32'), 'size');
    const heldOut = readFileSync(path.join(packageRoot, 'models', 'text-intent', 'data', 'test.jsonl'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { text: string; intent: string });
    const [fp32, int8] = await Promise.all(
      models.map(async (model) => {
        let right = 0;
        for (const s of heldOut) if ((await model.run(new TextEncoder().encode(s.text))).result.intent === s.intent) right++;
        return right / heldOut.length;
      }),
    );
    assert.ok(int8! >= fp32! - 0.01, `int8-pruned accuracy ${int8!.toFixed(4)} vs fp32 ${fp32!.toFixed(4)} on ${heldOut.length} held-out sentences`);
  });
});

describe('audio-vad int8', () => {
  let models: LoadedModel[] = [];
  before(async () => (models = await loadVariants('audio-vad', ['fp32', 'int8'])));
  after(async () => Promise.all(models.map((m) => m.close())));

  for (const name of ['speech-en.wav', 'speech-zh.wav']) {
    test(`${name}: the speech decision of at least 99% of frames matches FP32`, async () => {
      const wav = readFileSync(path.join(packageRoot, 'test', 'fixtures', 'audio', name));
      const [fp32, int8] = await Promise.all(models.map(async (m) => (await m.run(wav)).tensors.probabilities!.data as Float32Array));
      assert.equal(int8!.length, fp32!.length);
      const speech = (p: number) => p >= DEFAULT_SEGMENT_OPTIONS.threshold;
      const agreeing = fp32!.filter((p, i) => speech(p) === speech(int8![i]!)).length;
      assert.ok(agreeing / fp32!.length >= 0.99, `${agreeing} of ${fp32!.length} frames agree`);
      assert.ok(fp32!.some(speech) && !fp32!.every(speech), 'the file has both speech and silence, so agreement means something');
    });
  }
});
