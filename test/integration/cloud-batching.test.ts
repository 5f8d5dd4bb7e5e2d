/**
 * Dynamic batching in the cloud tier over real gRPC, on MobileNetV2 (the
 * image encoder's [-1, 224, 224, 3] graph): concurrent requests share one
 * session run, answer what they answer alone, say so in `batch_size`, and a
 * full queue refuses with RESOURCE_EXHAUSTED.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Client } from '@grpc/grpc-js';
import { startCloudServer, type CloudServer } from '../../cloud/server.js';
import { loadCloudConfig } from '../../cloud/config.js';
import { GRPCInferenceService, type ModelInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { ParameterNames } from '../../shared/infer-parameters.js';
import { createLogger } from '../../shared/log.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { decodeInferOutputs } from '../../shared/tensor-codec.js';
import { float32 } from '../../shared/tensor.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { assertStatus, graphRequest, grpcFailure, int64ResponseParameter, metricValue, pipelineRequest, scrapeMetrics } from '../helpers/inference.js';

const infer = GRPCInferenceService.method.modelInfer;
const encoder = { models: ['image-encoder'], variant: 'mobilenet-v2' };

/** Largest absolute difference between two responses' float32 outputs. */
function maxDifference(a: ModelInferResponse, b: ModelInferResponse, names: string[]): number {
  const [x, y] = [decodeInferOutputs(a), decodeInferOutputs(b)];
  let worst = 0;
  for (const name of names) {
    const [p, q] = [x[name]!.data as Float32Array, y[name]!.data as Float32Array];
    assert.equal(p.length, q.length, `${name}: same length`);
    p.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - q[i]!))));
  }
  return worst;
}

describe('dynamic batching over gRPC', () => {
  let batched: { server: CloudServer; address: string };
  let alone: { server: CloudServer; address: string };
  let batchedClient: Client;
  let aloneClient: Client;
  let photos: Uint8Array[];

  before(async () => {
    // A long delay: the test's requests meet at the batcher whatever the machine's load; 4 rows fill a batch and send it at once.
    batched = await startTestCloud({ ...encoder, batching: { 'image-encoder': { maxBatchSize: 4, maxQueueDelayUs: 2_000_000 } } });
    alone = await startTestCloud(encoder);
    batchedClient = inferenceClient(batched.address);
    aloneClient = inferenceClient(alone.address);
    photos = (await photoLikeImages(4, 11)).map((p) => p.bytes);
  });

  after(async () => {
    batchedClient?.close();
    aloneClient?.close();
    await Promise.all([batched?.server.drain(2_000), alone?.server.drain(2_000)]);
  });

  test('four concurrent pipeline requests share one run and answer what each answers alone', async () => {
    const together = await Promise.all(photos.map((photo, i) => callUnary(batchedClient, infer, pipelineRequest('image-encoder', photo, `b${i}`))));
    assert.deepEqual(together.map((r) => int64ResponseParameter(r, ParameterNames.batchSize)), [4, 4, 4, 4]);
    assert.deepEqual(together.map((r) => r.id), ['b0', 'b1', 'b2', 'b3'], 'each answer is its own request');
    for (const [i, photo] of photos.entries()) {
      const single = await callUnary(aloneClient, infer, pipelineRequest('image-encoder', photo));
      assert.equal(int64ResponseParameter(single, ParameterNames.batchSize), 1);
      // Batched GEMMs may sum in another order: equal to float32 rounding, not bit for bit.
      assert.ok(maxDifference(together[i]!, single, ['embedding', 'probabilities']) < 1e-5, `photo ${i}: batched equals unbatched`);
    }
    const metrics = await scrapeMetrics(batched.server.metricsPort);
    assert.equal(metricValue(metrics, 'splitinfer_batch_size_sum', { model: 'image-encoder' }), 16, 'the histogram saw four requests in batches of four');
  });

  test('raw graph requests with one and two rows batch by rows, and each gets its own rows back', async () => {
    const random = seededRandom(5);
    const input = (rows: number) => float32([rows, 224, 224, 3], Float32Array.from({ length: rows * 224 * 224 * 3 }, () => random()));
    const inputs = [input(1), input(2), input(1)];
    const together = await Promise.all(inputs.map((x) => callUnary(batchedClient, infer, graphRequest('mobilenet-v2', { input: x }))));
    assert.deepEqual(together.map((r) => int64ResponseParameter(r, ParameterNames.batchSize)), [3, 3, 3], '1 + 2 + 1 rows fill maxBatchSize 4');
    for (const [i, x] of inputs.entries()) {
      const single = await callUnary(aloneClient, infer, graphRequest('mobilenet-v2', { input: x }));
      assert.deepEqual(decodeInferOutputs(together[i]!).probabilities!.dims, [x.dims[0], 5]);
      assert.ok(maxDifference(together[i]!, single, ['embedding', 'probabilities']) < 1e-5, `request ${i}: batched equals unbatched`);
    }
  });

  test('beyond maxQueueSize waiting requests, the model refuses with RESOURCE_EXHAUSTED naming the setting', async () => {
    const tight = await startTestCloud({ ...encoder, batching: { 'image-encoder': { maxBatchSize: 1, maxQueueSize: 1 } } });
    const client = inferenceClient(tight.address);
    try {
      // Two requests in (twice maxBatchSize), one waiting, the rest refused at once.
      const calls = Array.from({ length: 8 }, () => callUnary(client, infer, pipelineRequest('image-encoder', photos[0]!)).then(() => undefined, (err: grpc.ServiceError) => err));
      const failures = (await Promise.all(calls)).filter((e) => e !== undefined);
      assert.ok(failures.length >= 4, `at most 3 of 8 admitted, got ${8 - failures.length}`);
      assertStatus(failures[0]!, grpc.status.RESOURCE_EXHAUSTED, /queue is full \(1 waiting\); retry later or raise batching\.maxQueueSize/);
      await callUnary(client, infer, pipelineRequest('image-encoder', photos[0]!));
    } finally {
      client.close();
      await tight.server.drain(2_000);
    }
  });

  test('a model that is not batched answers batch_size 1; batching an unknown model fails at start', async () => {
    const response = await callUnary(aloneClient, infer, pipelineRequest('image-encoder', photos[1]!));
    assert.equal(int64ResponseParameter(response, ParameterNames.batchSize), 1);
    const config = loadCloudConfig(undefined, { host: '127.0.0.1', port: 0, metricsPort: -1, models: ['text-intent'], batching: { 'image-encodr': { maxBatchSize: 4 } } });
    await assert.rejects(startCloudServer(config, createLogger('test', 'silent')), /batching names model 'image-encodr', which this server does not serve/);
    await assert.rejects(
      startTestCloud({ models: ['text-intent'], batching: { 'text-intent': { maxBatchSize: 4, preferredBatchSizes: [8] } } }),
      /preferredBatchSizes \[8\] exceed maxBatchSize 4/,
    );
  });

  test('a request of the wrong shape is refused on its own before it reaches the batcher', async () => {
    const err = await grpcFailure(callUnary(batchedClient, infer, graphRequest('mobilenet-v2', { input: float32([1, 224, 224, 2], new Float32Array(224 * 224 * 2)) })));
    assertStatus(err, grpc.status.INVALID_ARGUMENT, /expected FP32 \[-1,224,224,3\]/);
  });
});
