/**
 * The image `encode` task end to end: a real agent with the INT8 MobileNetV2
 * on the device and a real cloud tier serving InceptionV3, over real gRPC.
 * The request's quality floor decides which model may answer, and every
 * answer names the model that gave it. With `localReference` the device
 * also holds InceptionV3, loaded on first need, and answers `best` itself
 * where placement puts it there (and always while the cloud is down).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CloudServer } from '../../cloud/server.js';
import { freeLoopbackPort } from '../../edge/local-stack.js';
import { EdgeAgent } from '../../edge/agent.js';
import { loadEdgeConfig } from '../../edge/config.js';
import type { AgentRequest, AgentResponse, Quality, Site } from '../../edge/request.js';
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
    assert.deepEqual([response.placement.image!.ran, response.placement.image!.variant, response.placement.image!.reasons], ['cloud', 'fp32', ['quality-floor']]);
  });

  test('with localReference, the first best task goes to the cloud while the device loads InceptionV3; then the edge answers it where the request prefers', async () => {
    const holding = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: cloud.address, modalities: { image: { encode: { localReference: true } } } }), log);
    try {
      const first = await holding.handle(encodeRequest('ref-1', 'best', 'edge'));
      assertEmbedding(first.results.image, 'inception-v3', 2048);
      assert.deepEqual([first.placement.image!.ran, first.placement.image!.reasons], ['cloud', ['quality-floor', 'reference-unavailable']]);
      assert.match(first.placement.image!.why, /does not hold it now: this device is still loading it/);
      let later: AgentResponse | undefined;
      for (let i = 0; i < 100 && later?.placement.image!.ran !== 'edge'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        later = await holding.handle(encodeRequest(`ref-${i + 2}`, 'best', 'edge'));
      }
      assert.equal(later!.errors, undefined, JSON.stringify(later!.errors));
      assertEmbedding(later!.results.image, 'inception-v3', 2048);
      const placement = later!.placement.image!;
      assert.deepEqual([placement.ran, placement.variant, placement.reasons], ['edge', 'fp32', ['edge-reference', 'preferred']]);
      // A floor the light variant meets is still the light variant's: nothing changes for it.
      const fast = await holding.handle(encodeRequest('ref-fast', 'fast', 'edge'));
      assertEmbedding(fast.results.image, 'mobilenet-v2-int8', 1280);
      assert.deepEqual([fast.placement.image!.variant, fast.placement.image!.reasons], ['mobilenet-v2-int8', ['preferred']]);
    } finally {
      await holding.close();
    }
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
    assert.deepEqual([response.placement.image!.variant, response.placement.image!.reasons], ['mobilenet-v2-int8', ['cloud-down']]);
  });
});

describe('image encode with the cloud tier unreachable and InceptionV3 allowed on the device (localReference)', () => {
  const holdingConfig = async () => loadEdgeConfig(undefined, { cloud: `127.0.0.1:${await freeLoopbackPort()}`, modalities: { image: { encode: { localReference: true } } } });
  let agent: EdgeAgent;

  before(async () => {
    agent = await EdgeAgent.start(await holdingConfig(), log);
  });

  after(async () => {
    await agent?.close();
  });

  test('a task whose deadline runs out while InceptionV3 loads is not held up by the load', async () => {
    const started = performance.now();
    const response = await agent.handle({ ...encodeRequest('ref-down-short', 'best'), deadlineMs: 50 });
    assert.ok(performance.now() - started < 1_000, 'answered about its deadline, not after the load');
    assert.equal(response.errors?.image?.code, 'UNAVAILABLE');
    assert.deepEqual(response.placement.image!.reasons, ['quality-floor', 'reference-unavailable', 'cloud-down']);
    assert.match(response.placement.image!.why, /does not hold it now: this device is still loading it/);
  });

  test("quality 'best': the edge loads InceptionV3 on this first need and answers with it, and says why", async () => {
    for (const id of ['ref-down-1', 'ref-down-2']) {
      const response = await agent.handle(encodeRequest(id, 'best'));
      assert.equal(response.errors, undefined, JSON.stringify(response.errors));
      assertEmbedding(response.results.image, 'inception-v3', 2048);
      const placement = response.placement.image!;
      assert.deepEqual([placement.decided, placement.ran, placement.variant, placement.reasons], ['edge', 'edge', 'fp32', ['edge-reference', 'cloud-down']]);
      assert.match(placement.why, /^the quality floor for image\.encode is best, which rules out the local mobilenet-v2-int8 variant, so the edge runs the reference fp32 variant it holds; the cloud is unavailable/);
    }
  });

  test("quality 'fast' still runs the light model", async () => {
    const response = await agent.handle(encodeRequest('ref-down-fast', 'fast'));
    assertEmbedding(response.results.image, 'mobilenet-v2-int8', 1280);
    assert.deepEqual([response.placement.image!.variant, response.placement.image!.reasons], ['mobilenet-v2-int8', ['cloud-down']]);
  });

  test("a device short of memory refuses to load it: 'best' fails fast with UNAVAILABLE naming the memory, and the agent keeps answering", async () => {
    let readings = 0;
    const short = await EdgeAgent.start(await holdingConfig(), log, {
      availableMemory: async () => {
        readings++;
        return 200e6;
      },
    });
    try {
      for (const id of ['ref-short-1', 'ref-short-2']) {
        const response = await short.handle(encodeRequest(id, 'best'));
        assert.equal(response.errors?.image?.code, 'UNAVAILABLE');
        assert.match(response.errors!.image!.message, /this device has 200 MB of memory available, and loading image-encoder's reference variant fp32 needs \d+ MB .*; ask for a lower quality/);
        const placement = response.placement.image!;
        assert.deepEqual([placement.ran, placement.variant, placement.reasons], [null, null, ['quality-floor', 'reference-unavailable', 'cloud-down']]);
      }
      assert.equal(readings, 1, 'the refusal is remembered, not tried again on every request');
      const fast = await short.handle(encodeRequest('ref-short-fast', 'fast'));
      assertEmbedding(fast.results.image, 'mobilenet-v2-int8', 1280);
    } finally {
      await short.close();
    }
  });
});
