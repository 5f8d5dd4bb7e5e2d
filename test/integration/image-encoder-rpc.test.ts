/**
 * The image-encoder pipeline served by the cloud tier over real gRPC: a
 * photo's JSON result and typed outputs (the embedding as FP32 for generic
 * KServe clients), and the InceptionV3 graph under its own name, loaded once
 * where video-encoder runs it too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import type { CloudServer } from '../../cloud/server.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { InferenceClient } from '../../shared/inference-client.js';
import { sessionWorker } from '../../shared/ort/session.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { readFixture } from '../helpers/inference.js';

describe('image-encoder pipeline over gRPC', () => {
  let cloud: { server: CloudServer; address: string };
  let client: InferenceClient;

  before(async () => {
    cloud = await startTestCloud({ models: ['image-encoder'] });
    client = new InferenceClient(cloud.address);
  });

  after(async () => {
    client?.close();
    await cloud?.server.drain(2_000);
  });

  test('a photo gives a 2048-D unit vector and five scores summing to 1, as JSON and as typed outputs', async () => {
    const photo = readFixture('photos', 'exif-js-go-kart.jpg');
    const answer = await client.inferPipeline('image-encoder', photo, { id: 'enc-1' });
    const result = answer.result as { model: string; embedding: number[]; labels: { label: string; score: number }[]; width: number; height: number };
    assert.equal(result.model, 'inception-v3');
    assert.equal(result.embedding.length, 2048);
    assert.ok(Math.abs(Math.hypot(...result.embedding) - 1) < 1e-5);
    assert.equal(result.labels.length, 5);
    assert.ok(Math.abs(result.labels.reduce((sum, l) => sum + l.score, 0) - 1) < 1e-5);
    assert.ok(result.labels.every((l, i) => i === 0 || l.score <= result.labels[i - 1]!.score), 'sorted by score');
    const { width, height } = await sharp(photo).metadata();
    assert.deepEqual([result.width, result.height], [width, height]);
    const embedding = answer.tensors.embedding!;
    assert.deepEqual([embedding.type, embedding.dims], ['float32', [2048]]);
    assert.ok(Math.abs((embedding.data as Float32Array)[7]! - result.embedding[7]!) < 1e-6);
    assert.ok(answer.computeUs > 0);
  });

  test('the graph is served under its own name, and metadata names the pipeline outputs', async () => {
    const meta = await callUnary(client.grpc, GRPCInferenceService.method.modelMetadata, { name: 'image-encoder' });
    assert.deepEqual(meta.outputs.map((o) => o.name), ['embedding', 'probabilities', 'result']);
    const graph = await callUnary(client.grpc, GRPCInferenceService.method.modelMetadata, { name: 'inception-v3' });
    assert.deepEqual(graph.inputs.map((i) => [i.name, i.shape.map(Number)]), [['input', [-1, 299, 299, 3]]]);
  });

  test('a corrupt image is INVALID_ARGUMENT and the next request is served', async () => {
    const png = readFixture('ocr', 'invoice.png');
    await assert.rejects(client.inferPipeline('image-encoder', png.subarray(0, 200), { id: 'bad' }), /INVALID_ARGUMENT|do not decode/);
    const ok = await client.inferPipeline('image-encoder', png, { id: 'after' });
    assert.equal((ok.result as { embedding: number[] }).embedding.length, 2048);
  });
});

describe('image-encoder and video-encoder on one cloud', () => {
  let cloud: { server: CloudServer; address: string };

  before(async () => {
    cloud = await startTestCloud({ models: ['image-encoder', 'video-encoder'] });
  });

  after(async () => {
    await cloud?.server.drain(2_000);
  });

  test('load InceptionV3 once: both pipelines run it on one worker, and unloading one leaves the other serving it, under its graph name too', async () => {
    const { repository } = cloud.server;
    const inception = (model: string) => {
      const served = repository.resolve(model);
      return served.kind === 'pipeline' ? served.loaded.sessions.get('inception-v3')! : assert.fail(`${model} is a pipeline`);
    };
    const image = inception('image-encoder');
    const video = inception('video-encoder');
    assert.ok(sessionWorker(image));
    assert.equal(sessionWorker(video), sessionWorker(image));

    const graph = () => {
      const served = repository.resolve('inception-v3');
      return [served.loaded.model.id, repository.serving('inception-v3')];
    };
    assert.deepEqual(graph(), ['image-encoder', true], 'the first loaded serves the graph name');
    await repository.unload('image-encoder');
    assert.equal(image.serving(), false);
    assert.equal(video.serving(), true);
    assert.deepEqual(graph(), ['video-encoder', true], 'handed over, not gone');
    const grpcClient = inferenceClient(cloud.address);
    try {
      const metadata = await callUnary(grpcClient, GRPCInferenceService.method.modelMetadata, { name: 'inception-v3' });
      assert.deepEqual(metadata.outputs.map((o) => o.name), ['probabilities', 'features', 'embedding']);
    } finally {
      grpcClient.close();
    }
    const frame = { type: 'float32' as const, dims: [1, 299, 299, 3], data: new Float32Array(299 * 299 * 3).fill(0.5) };
    const { outputs } = await video.run({ input: frame });
    assert.deepEqual(outputs.embedding!.dims, [1, 2048]);
  });
});
