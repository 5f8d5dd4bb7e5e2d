/**
 * The shipped OCR `int8` variant (models/image-ocr/*.int8.onnx, the edge's
 * local fallback): it loads from the catalog (sha256-checked), is really
 * INT8, and reads the OCR fixture images about as well as `fp32` does,
 * through the same handler code. The full comparison (120 images, zh and
 * en, with latency) is models/image-ocr/evaluate.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { characterAccuracy, type Reading } from '../../models/image-ocr/char-accuracy.js';
import { allNodes, readModel } from '../../models/toolchain/onnx-model.js';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import type { OcrResult } from '../../shared/handlers/image-ocr.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';
import type { ExpectedLine } from '../../models/samples/ocr/make-images.js';

const fixtureDir = path.join(packageRoot, 'models', 'samples', 'ocr');
const expected = JSON.parse(readFileSync(path.join(fixtureDir, 'expected.json'), 'utf8')) as Record<string, ExpectedLine[]>;
const catalogModel = findModel(loadCatalog(), 'image-ocr');
const models: Record<string, LoadedModel> = {};

before(async () => {
  for (const variant of ['fp32', 'int8']) {
    models[variant] = await loadModel(catalogModel, variant, { providers: ['cpu'], intraOpThreads: 1 }, createLogger('test', 'silent'));
  }
});

after(async () => {
  await Promise.all(Object.values(models).map((m) => m.close()));
});

async function readings(variant: string): Promise<Reading[]> {
  const all: Reading[] = [];
  for (const [file, lines] of Object.entries(expected)) {
    const result = (await models[variant]!.run(new Uint8Array(readFileSync(path.join(fixtureDir, file))))).result as unknown as OcrResult;
    all.push({ reference: lines.map((l) => l.text).join('\n'), hypothesis: result.lines.map((l) => l.text).join('\n') });
  }
  return all;
}

describe('image-ocr int8 variant', () => {
  test('both graphs hold INT8 Convs in QDQ form', () => {
    for (const graph of ['ocr-det', 'ocr-rec']) {
      const ops = allNodes(readModel(resolveSource(catalogModel.variants.int8!.graphs[graph]!.source)).graph!).map((n) => n.opType);
      assert.ok(ops.filter((op) => op === 'QuantizeLinear').length >= 30, `${graph} has QuantizeLinear nodes`);
      assert.ok(ops.includes('Conv') && ops.includes('DequantizeLinear'), graph);
    }
  });

  test('reads the fixture images with character accuracy within 1 point of fp32', async () => {
    const fp32 = characterAccuracy(await readings('fp32'));
    const int8 = characterAccuracy(await readings('int8'));
    assert.ok(fp32 > 0.95, `fp32 reads the fixtures (${(fp32 * 100).toFixed(2)}%)`);
    assert.ok(int8 >= fp32 - 0.01, `int8 ${(int8 * 100).toFixed(2)}% vs fp32 ${(fp32 * 100).toFixed(2)}%`);
  });
});
