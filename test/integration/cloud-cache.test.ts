/**
 * The response cache in the cloud tier over real gRPC: a repeated request is
 * answered from the cache (`cache_hit`), `cache: false` skips it, only
 * successful answers are kept, Triton's cache metrics count it all, a
 * request naming its input's digest instead of sending it is answered from
 * the cache or told `content_needed`, and a sequence model (video-encoder)
 * never uses it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@grpc/grpc-js';
import type { CloudServer } from '../../cloud/server.js';
import { GRPCInferenceService, type ModelInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { boolParameter, boolParameterValue, int64Parameter, ParameterNames, stringParameter } from '../../shared/infer-parameters.js';
import { encodeInferInputs } from '../../shared/tensor-codec.js';
import { bytesTensor } from '../../shared/tensor.js';
import { contentNeeded, digestOnlyRequest } from '../../shared/pipeline-wire.js';
import { readChunkAnswer } from '../../shared/video/chunk-wire.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { grpcFailure, int64ResponseParameter, metricValue, pipelineRequest, resultOf, scrapeMetrics, textIntentOptions } from '../helpers/inference.js';

const infer = GRPCInferenceService.method.modelInfer;
const cacheHit = (r: ModelInferResponse) => boolParameterValue(r.parameters, ParameterNames.cacheHit);

describe('response cache over gRPC', () => {
  let cloud: { server: CloudServer; address: string };
  let client: Client;
  const counts = async (model: string) => {
    const metrics = await scrapeMetrics(cloud.server.metricsPort);
    return { hits: metricValue(metrics, 'nv_cache_num_hits_per_model', { model }), misses: metricValue(metrics, 'nv_cache_num_misses_per_model', { model }) };
  };

  before(async () => {
    cloud = await startTestCloud({ models: ['text-intent', 'video-encoder'], variant: 'mobilenet-v2-int8', cache: { bytes: 4 << 20 } });
    client = inferenceClient(cloud.address);
  });

  after(async () => {
    client?.close();
    await cloud?.server.drain(2_000);
  });

  test('a repeated request is answered from the cache with the same outputs and its own id', textIntentOptions, async () => {
    const sentence = 'Where is my parcel? It has not arrived yet.';
    const first = await callUnary(client, infer, pipelineRequest('text-intent', sentence, 'first'));
    assert.equal(cacheHit(first), false);
    assert.equal(int64ResponseParameter(first, ParameterNames.batchSize), 1);
    // Another tenant and another deadline: the same answer, so the same entry.
    const again = await callUnary(client, infer, {
      ...pipelineRequest('text-intent', sentence, 'again'),
      parameters: { [ParameterNames.tenant]: stringParameter('other'), [ParameterNames.deadlineMs]: int64Parameter(5_000) },
    });
    assert.equal(cacheHit(again), true);
    assert.equal(again.id, 'again');
    assert.equal(int64ResponseParameter(again, ParameterNames.batchSize), 0, 'nothing ran');
    assert.deepEqual(resultOf(again), resultOf(first));
    assert.deepEqual(again.rawOutputContents, first.rawOutputContents);
    assert.deepEqual(await counts('text-intent'), { hits: 1, misses: 1 });
    const metrics = await scrapeMetrics(cloud.server.metricsPort);
    assert.ok(metricValue(metrics, 'nv_cache_hit_duration_per_model', { model: 'text-intent' }) > 0);
    assert.ok(metricValue(metrics, 'splitinfer_cache_bytes', {}) > 0);
  });

  test('cache: false runs the request and leaves the cache alone; a new input is a miss', textIntentOptions, async () => {
    const sentence = 'I want a refund for my order.';
    await callUnary(client, infer, pipelineRequest('text-intent', sentence));
    const before = await counts('text-intent');
    const skipped = await callUnary(client, infer, { ...pipelineRequest('text-intent', sentence), parameters: { [ParameterNames.cache]: boolParameter(false) } });
    assert.equal(cacheHit(skipped), undefined, 'the cache was not consulted');
    assert.deepEqual(await counts('text-intent'), before);
    const other = await callUnary(client, infer, pipelineRequest('text-intent', 'Can I change the delivery address?'));
    assert.equal(cacheHit(other), false);
  });

  test('a content-addressed request is answered from the cache, or told to send the contents', textIntentOptions, async () => {
    const full = pipelineRequest('text-intent', 'My order arrived damaged, what now?', 'full');
    const byDigest = { ...digestOnlyRequest(full), id: 'by-digest' };
    assert.equal(byDigest.rawInputContents!.length, 0);
    const unknown = await callUnary(client, infer, byDigest);
    assert.equal(contentNeeded(unknown), true);
    assert.equal(unknown.id, 'by-digest');
    assert.equal(unknown.outputs.length, 0, 'nothing ran');
    const ran = await callUnary(client, infer, full);
    assert.equal(cacheHit(ran), false);
    const known = await callUnary(client, infer, byDigest);
    assert.equal(contentNeeded(known), false);
    assert.equal(cacheHit(known), true);
    assert.deepEqual(resultOf(known), resultOf(ran));
    const metrics = await scrapeMetrics(cloud.server.metricsPort);
    assert.equal(metricValue(metrics, 'splitinfer_cache_content_lookups_total', { model: 'text-intent', found: 'true' }), 1);
    assert.equal(metricValue(metrics, 'splitinfer_cache_content_lookups_total', { model: 'text-intent', found: 'false' }), 1);
    const mixed = { ...byDigest, rawInputContents: full.rawInputContents };
    assert.equal((await grpcFailure(callUnary(client, infer, mixed))).code, 3, 'digests and contents together: INVALID_ARGUMENT');
  });

  test('a failed request is not kept: the same bad input fails again', textIntentOptions, async () => {
    const empty = pipelineRequest('text-intent', '');
    const first = await grpcFailure(callUnary(client, infer, empty));
    const second = await grpcFailure(callUnary(client, infer, empty));
    assert.equal(second.code, first.code);
  });

  test('a sequence model never uses the cache: the same chunk runs every time', async () => {
    const frames = (await photoLikeImages(2, 4)).map((p) => p.bytes);
    const chunk = { modelName: 'video-encoder', parameters: { [ParameterNames.frameIntervalMs]: int64Parameter(250) }, ...encodeInferInputs({ input: bytesTensor(frames) }) };
    for (let i = 0; i < 2; i++) {
      const response = await callUnary(client, infer, chunk);
      assert.equal(cacheHit(response), undefined);
      assert.ok(int64ResponseParameter(response, ParameterNames.computeUs) > 0);
      assert.equal(readChunkAnswer(response).answer.frames, 2);
    }
    assert.deepEqual(await counts('video-encoder'), { hits: 0, misses: 0 });
    assert.equal(contentNeeded(await callUnary(client, infer, digestOnlyRequest(chunk))), true, 'a sequence model holds no answers to find by digest');
  });
});
