/**
 * The image `encode` task end to end: a real agent with the INT8 MobileNetV2
 * on the device and a real cloud tier serving InceptionV3, over real gRPC.
 * The request's quality floor decides which model may answer, and every
 * answer names the model that gave it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CloudServer } from '../../cloud/server.js';
import { freeLoopbackPort } from '../../edge/local-stack.js';
import { EdgeAgent } from '../../edge/agent.js';
import { loadEdgeConfig } from '../../edge/config.js';
import type { AgentRequest, Quality, Site } from '../../edge/request.js';
import { createLogger } from '../../shared/log.js';
import { startTestCloud } from '../helpers/cloud.js';
import { readFixture } from '../helpers/inference.js';

const log = createLogger('edge-encode-test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const photo = readFixture('ocr', 'shipped-zh.jpg');

interface Embedding {
  model: string;
  embedding: number[];
  labels: { label: string; score: number }[];
}

const encodeRequest = (id: string, quality?: Quality, prefer?: Site): AgentRequest => ({
  id,
  inputs: { image: photo },
  task: { image: 'encode' },
  ...(quality === undefined ? {} : { quality: { image: quality } }),
  ...(prefer ? { prefer: { image: prefer } } : {}),
});

function assertEmbedding(result: unknown, model: string, dimensions: number): void {
  const answer = result as Embedding;
  assert.equal(answer.model, model);
  assert.equal(answer.embedding.length, dimensions);
  assert.ok(Math.abs(Math.hypot(...answer.embedding) - 1) < 1e-3, 'the embedding is L2-normalised');
  assert.equal(answer.labels.length, 5);
}

describe('image encode with the cloud tier up', () => {
  let cloud: { server: CloudServer; address: string };
  let agent: EdgeAgent;

  before(async () => {
    cloud = await startTestCloud({ models: ['image-encoder'] });
    agent = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: cloud.address }), log);
  });

  after(async () => {
    await agent?.close();
    await cloud?.server.drain(2_000);
  });

  test('by default the cloud answers with InceptionV3 (2048-D)', async () => {
    const response = await agent.handle(encodeRequest('enc-1'));
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assertEmbedding(response.results.image, 'inception-v3', 2048);
    assert.deepEqual([response.placement.image!.ran, response.placement.image!.reasons], ['cloud', ['configured']]);
  });

  test("quality 'fast' and a preference for the edge: the local INT8 MobileNetV2 answers (1280-D)", async () => {
    const response = await agent.handle(encodeRequest('enc-2', 'fast', 'edge'));
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assertEmbedding(response.results.image, 'mobilenet-v2-int8', 1280);
    assert.deepEqual([response.placement.image!.ran, response.placement.image!.reasons], ['edge', ['preferred']]);
  });

  test('the confidence strategy runs the light encoder first and asks the heavy one when the top label is unsure', async () => {
    const doubtful = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: cloud.address, policy: { strategy: 'confidence', confidenceThreshold: 1 } }), log);
    const trusting = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: cloud.address, policy: { strategy: 'confidence', confidenceThreshold: 0 } }), log);
    try {
      const escalated = await doubtful.handle(encodeRequest('enc-hard'));
      assertEmbedding(escalated.results.image, 'inception-v3', 2048);
      const placement = escalated.placement.image!;
      assert.deepEqual([placement.decided, placement.ran, placement.reasons, placement.escalation], ['edge', 'cloud', ['fixed-side', 'escalated-low-confidence'], { outcome: 'cloud-answered' }]);
      const kept = await trusting.handle(encodeRequest('enc-easy'));
      assertEmbedding(kept.results.image, 'mobilenet-v2-int8', 1280);
      assert.deepEqual([kept.placement.image!.ran, kept.placement.image!.escalation], ['edge', undefined]);
    } finally {
      await doubtful.close();
      await trusting.close();
    }
  });

  test("quality 'best' overrides the preference for the edge: InceptionV3 answers, and the reasons say why", async () => {
    const response = await agent.handle(encodeRequest('enc-3', 'best', 'edge'));
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assertEmbedding(response.results.image, 'inception-v3', 2048);
    assert.deepEqual([response.placement.image!.ran, response.placement.image!.reasons], ['cloud', ['quality-floor']]);
  });
});

describe('image encode with the cloud tier unreachable', () => {
  let agent: EdgeAgent;

  before(async () => {
    agent = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: `127.0.0.1:${await freeLoopbackPort()}` }), log);
  });

  after(async () => {
    await agent?.close();
  });

  test("quality 'best' fails fast with UNAVAILABLE naming the quality floor", async () => {
    const started = performance.now();
    const response = await agent.handle(encodeRequest('enc-4', 'best'));
    assert.ok(performance.now() - started < 1_000, 'it fails without waiting for the deadline');
    assert.equal(response.errors?.image?.code, 'UNAVAILABLE');
    assert.match(response.errors!.image!.message, /quality floor for image\.encode is best/);
    assert.deepEqual(response.placement.image!.reasons, ['quality-floor', 'cloud-down']);
  });

  test("quality 'fast': the local model answers instead", async () => {
    const response = await agent.handle(encodeRequest('enc-5', 'fast'));
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assertEmbedding(response.results.image, 'mobilenet-v2-int8', 1280);
    assert.deepEqual(response.placement.image!.reasons, ['cloud-down']);
  });
});
