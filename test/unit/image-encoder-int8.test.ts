/**
 * The shipped image-encoder `mobilenet-v2-int8` variant (the edge's default
 * encoder): it loads from the catalog (sha256-checked), is really INT8 and
 * keeps the handler's input and output names, and on the project's sample
 * images gives the same top label as FP32 MobileNetV2 with embeddings close
 * to FP32's, and so on the held-out real photos. The full check (the
 * held-out real photos and 64 rendered scenes) is npm run
 * build:image-encoder-int8.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encoderAgreement } from '../../models/image-encoder/agreement.js';
import { realPhotos, sampleImages } from '../../models/image-encoder/photo-like-images.js';
import { allNodes, readModel } from '../../models/toolchain/onnx-model.js';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import type { EncoderResult } from '../../shared/handlers/image-encoder.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';

const catalogModel = findModel(loadCatalog(), 'image-encoder');
const models: Record<string, LoadedModel> = {};

before(async () => {
  for (const variant of ['mobilenet-v2', 'mobilenet-v2-int8']) {
    models[variant] = await loadModel(catalogModel, variant, { providers: ['cpu'], intraOpThreads: 1 }, createLogger('test', 'silent'));
  }
});

after(async () => {
  await Promise.all(Object.values(models).map((m) => m.close()));
});

describe('image-encoder mobilenet-v2-int8 variant', () => {
  test('its one graph holds INT8 Convs in QDQ form and keeps the handler’s input and outputs', () => {
    const graph = readModel(resolveSource(catalogModel.variants['mobilenet-v2-int8']!.graphs['mobilenet-v2-int8']!.source)).graph!;
    const ops = allNodes(graph).map((n) => n.opType);
    assert.ok(ops.filter((op) => op === 'QuantizeLinear').length >= 50, 'QuantizeLinear in front of the quantized nodes');
    assert.ok(ops.includes('DequantizeLinear') && !ops.includes('Pad') && !ops.includes('Sum') && !ops.includes('BatchNormalization'), `Pads, Sums and BatchNorms are folded (ops: ${[...new Set(ops)].join(', ')})`);
    assert.deepEqual(graph.input.map((i) => i.name), ['input']);
    assert.ok(['embedding', 'probabilities'].every((name) => graph.output.some((o) => o.name === name)));
  });

  test('answers as the int8 network, a 1280-D unit embedding and five scores', async () => {
    const { bytes } = sampleImages()[0]!;
    const result = (await models['mobilenet-v2-int8']!.run(bytes)).result as unknown as EncoderResult;
    assert.equal(result.model, 'mobilenet-v2-int8');
    assert.equal(result.embedding.length, 1280);
    assert.ok(Math.abs(Math.hypot(...result.embedding) - 1) < 1e-5);
    assert.equal(result.labels.length, 5);
  });

  test('gives FP32 MobileNetV2’s top label on every sample image, embeddings within cosine 0.95', async () => {
    const agreement = await encoderAgreement(models['mobilenet-v2']!, models['mobilenet-v2-int8']!, sampleImages());
    assert.ok(agreement.images >= 5);
    assert.deepEqual(agreement.disagreements, []);
    assert.ok(agreement.minCosine >= 0.95, `min cosine ${agreement.minCosine.toFixed(4)}, mean ${agreement.meanCosine.toFixed(4)}`);
  });

  test('gives FP32 MobileNetV2’s top label on every held-out real photo, embeddings within cosine 0.98', async () => {
    const agreement = await encoderAgreement(models['mobilenet-v2']!, models['mobilenet-v2-int8']!, realPhotos('held-out'));
    assert.ok(agreement.images >= 20);
    assert.deepEqual(agreement.disagreements, []);
    assert.ok(agreement.minCosine >= 0.98, `min cosine ${agreement.minCosine.toFixed(4)}, mean ${agreement.meanCosine.toFixed(4)}`);
  });
});
