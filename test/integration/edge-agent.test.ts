/**
 * The edge agent against a real cloud tier over real gRPC, with real models on
 * both sides: placement, offload over one stream, image shrinking, input
 * checks, and what happens when the cloud stops or was never there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { freeLoopbackPort } from '../../edge/local-stack.js';
import { EdgeAgent, type EdgeAgentOptions } from '../../edge/agent.js';
import { loadEdgeConfig } from '../../edge/config.js';
import type { AgentRequest, AgentResponse, ChunkMessage } from '../../edge/request.js';
import type { CloudServer } from '../../cloud/server.js';
import { createLogger } from '../../shared/log.js';
import { startTestCloud } from '../helpers/cloud.js';
import { expectedOcrLines, readFixture, slowOcrPage, textIntentInCatalog, textIntentOptions } from '../helpers/inference.js';

const log = createLogger('edge-test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const cloudModels = ['image-ocr', 'audio-vad', ...(textIntentInCatalog ? ['text-intent'] : [])];

const speech = readFixture('audio', 'speech-en.wav');
const invoice = readFixture('ocr', 'invoice.png');
const notAnImage = new TextEncoder().encode('<!doctype html><html><body>not an image</body></html>');

const expectedTexts = (file: string) => expectedOcrLines[file]!.map((l) => l.text);
const ocrTexts = (result: unknown) => (result as { lines: { text: string }[] }).lines.map((l) => l.text);
const speechSegments = (result: unknown) => (result as { segments: unknown[] }).segments;

function startAgent(cloud: string, overrides: Record<string, unknown> = {}, options: EdgeAgentOptions = {}): Promise<EdgeAgent> {
  return EdgeAgent.start(loadEdgeConfig(undefined, { cloud, ...overrides }), log, options);
}

/** Every modality but video (edge-video.test.ts), text only once text-intent is trained. */
function mixedRequest(id: string, extra: Partial<AgentRequest> = {}): AgentRequest {
  return {
    id,
    inputs: { ...(textIntentInCatalog ? { text: 'I want my money back for this broken kettle' } : {}), audio: speech, image: invoice },
    ...extra,
  };
}

function assertNoErrors(response: AgentResponse): void {
  assert.equal(response.errors, undefined, `unexpected errors: ${JSON.stringify(response.errors)}`);
}

describe('edge agent with a healthy cloud tier', () => {
  let cloud: { server: CloudServer; address: string };
  let agent: EdgeAgent;

  before(async () => {
    cloud = await startTestCloud({ models: cloudModels });
    agent = await startAgent(cloud.address);
  });

  after(async () => {
    await agent?.close();
    await cloud?.server.drain(2_000);
  });

  test('text is classified on the edge by its local variant', textIntentOptions, async () => {
    const response = await agent.handle({ id: 'text-1', inputs: { text: 'Where is my order?' } });
    assertNoErrors(response);
    const result = response.results.text as { intent: string; confidence: number };
    assert.equal(typeof result.intent, 'string');
    assert.ok(result.confidence > 0 && result.confidence <= 1);
    assert.equal(response.placement.text?.ran, 'edge');
    assert.deepEqual(response.placement.text!.reasons, ['configured']);
  });

  test('audio runs on the edge and finds both sentences of the recording', async () => {
    const response = await agent.handle({ id: 'audio-1', inputs: { audio: speech } });
    assertNoErrors(response);
    assert.equal(speechSegments(response.results.audio).length, 2);
    assert.deepEqual(response.placement.audio, {
      decided: 'edge',
      ran: 'edge',
      variant: 'int8',
      reasons: ['configured'],
      why: 'config places audio on the edge (local int8 variant)',
      estimates: { rule: 'config', wanted: 'edge', localVariant: 'int8' },
    });
    assert.ok(Object.isFrozen(response.placement.audio), 'the record cannot change once built');
    const timings = response.timings.audio!;
    assert.equal(timings.transferMs, 0);
    assert.ok(timings.computeMs > 0 && timings.totalMs >= timings.computeMs);
  });

  test("image is offloaded to the cloud, read correctly, with the server's queue/compute and the transfer time", async () => {
    const response = await agent.handle({ id: 'image-1', inputs: { image: invoice } });
    assertNoErrors(response);
    assert.deepEqual(ocrTexts(response.results.image), expectedTexts('invoice.png'));
    assert.equal(response.placement.image?.ran, 'cloud');
    assert.deepEqual(response.placement.image?.reasons, ['configured']);
    const { totalMs, queueMs, computeMs, transferMs } = response.timings.image!;
    assert.ok(computeMs > 0, `computeMs ${computeMs}`);
    assert.ok(transferMs > 0, `transferMs ${transferMs}`);
    assert.ok(queueMs + computeMs + transferMs <= totalMs + 0.5, JSON.stringify(response.timings.image));
  });

  test('a mixed request answers every modality in one response, each with where it ran, why, and timings', async () => {
    const request = mixedRequest('mixed-1');
    const response = await agent.handle(request);
    assertNoErrors(response);
    const sent = Object.keys(request.inputs).sort();
    assert.deepEqual(Object.keys(response.results).sort(), sent);
    assert.deepEqual(Object.keys(response.placement).sort(), sent);
    assert.deepEqual(Object.keys(response.timings).sort(), sent);
    assert.deepEqual(
      Object.fromEntries(Object.entries(response.placement).map(([m, p]) => [m, p.ran])),
      { ...(textIntentInCatalog ? { text: 'edge' } : {}), audio: 'edge', image: 'cloud' },
    );
    for (const placement of Object.values(response.placement)) assert.deepEqual(placement.reasons, ['configured']);
    assert.deepEqual(ocrTexts(response.results.image), expectedTexts('invoice.png'));
  });

  test("the request's prefer moves audio to the cloud and image to the edge, with the same results", async () => {
    const response = await agent.handle({ id: 'prefer-1', inputs: { audio: speech, image: invoice }, prefer: { audio: 'cloud', image: 'edge' } });
    assertNoErrors(response);
    assert.equal(response.placement.audio?.ran, 'cloud');
    assert.deepEqual(response.placement.audio?.reasons, ['preferred']);
    assert.equal(response.placement.image?.ran, 'edge');
    assert.deepEqual(response.placement.image?.reasons, ['preferred']);
    assert.equal(speechSegments(response.results.audio).length, 2);
    assert.deepEqual(ocrTexts(response.results.image), expectedTexts('invoice.png'));
  });

  test('a big PNG is shrunk to a JPEG within imageMaxSide before offload: far fewer bytes cross the link, and the text is still read', async () => {
    // 2400×1600 with a light noisy background (as a camera gives), the invoice scaled 2×: a multi-megabyte PNG.
    const tile = await sharp(invoice).resize({ width: 960 }).toBuffer();
    const bigPng = new Uint8Array(
      await sharp({ create: { width: 2400, height: 1600, channels: 3, background: '#f4f4f4', noise: { type: 'gaussian', mean: 240, sigma: 6 } } })
        .composite([{ input: tile, left: 300, top: 400 }])
        .png()
        .toBuffer(),
    );
    const before = agent.stats().offload;
    const response = await agent.handle({ id: 'big-png', inputs: { image: bigPng }, deadlineMs: 30_000 });
    const afterStats = agent.stats().offload;
    assertNoErrors(response);
    assert.equal(response.placement.image?.ran, 'cloud');
    assert.equal(afterStats.bytesBeforeShrink - before.bytesBeforeShrink, bigPng.length);
    const sent = afterStats.bytesSent - before.bytesSent;
    assert.ok(sent < bigPng.length / 4, `sent ${sent} bytes for a ${bigPng.length}-byte PNG`);
    assert.ok(ocrTexts(response.results.image).includes(expectedTexts('invoice.png')[0]!), JSON.stringify(ocrTexts(response.results.image)));
  });

  test('concurrent requests are multiplexed on the one stream, each answered with its own result', async () => {
    const before = agent.stats().offload;
    const images = ['invoice.png', 'shipped-zh.jpg', 'welcome-zh.png'];
    const requests = Array.from({ length: 6 }, (_, i) => ({ file: images[i % images.length]!, id: `concurrent-${i}` }));
    const responses = await Promise.all(
      requests.map(({ file, id }) => agent.handle({ id, inputs: { image: readFixture('ocr', file), audio: speech }, prefer: { audio: 'cloud' } })),
    );
    for (const [i, response] of responses.entries()) {
      assertNoErrors(response);
      assert.equal(response.id, requests[i]!.id);
      assert.deepEqual(ocrTexts(response.results.image), expectedTexts(requests[i]!.file), response.id);
      assert.equal(response.placement.audio?.ran, 'cloud');
    }
    const afterStats = agent.stats().offload;
    assert.equal(afterStats.streamsOpened, 1, 'every task since start went over one stream');
    assert.equal(afterStats.tasks - before.tasks, 12);
    assert.ok(afterStats.peakPending >= 2, `peak pending ${afterStats.peakPending}: tasks were not in flight together`);
  });

  test('bytes that are not an image are refused as INVALID_ARGUMENT for image only; the other modalities are answered', async () => {
    const response = await agent.handle({ id: 'bad-image', inputs: { image: notAnImage, audio: speech } });
    assert.deepEqual(Object.keys(response.errors ?? {}), ['image']);
    assert.equal(response.errors!.image!.code, 'INVALID_ARGUMENT');
    assert.match(response.errors!.image!.message, /^image input: \d+ bytes starting 3c 21 64 6f are not a JPEG\/PNG\/WebP image/);
    assert.equal(response.placement.image, undefined, 'refused before placement');
    assert.equal(speechSegments(response.results.audio).length, 2);

    const video = await agent.handle({ id: 'bad-frame', inputs: { video: [readFixture('ocr', 'shipped-zh.jpg'), notAnImage] } });
    assert.equal(video.errors?.video?.code, 'INVALID_ARGUMENT');
    assert.match(video.errors!.video!.message, /^video frame 1: /);
  });

  test('an image that looks like a PNG but does not decode is refused by the cloud as INVALID_ARGUMENT, not retried on the edge', async () => {
    const truncated = invoice.subarray(0, 200);
    const fallbacksBefore = agent.stats().tasks.image?.fallbacks ?? 0;
    const response = await agent.handle({ id: 'truncated-png', inputs: { image: truncated } });
    assert.equal(response.errors?.image?.code, 'INVALID_ARGUMENT');
    assert.match(response.errors!.image!.message, /^cloud: image input: .*do not decode/);
    assert.equal(response.placement.image?.ran, 'cloud');
    assert.equal(agent.stats().tasks.image?.fallbacks ?? 0, fallbacksBefore);
    assert.equal(agent.stats().cloud.state, 'closed', "the request's fault does not count against the cloud");
  });

  test('a request with no inputs gets a request-level INVALID_ARGUMENT', async () => {
    const response = await agent.handle({ id: 'empty', inputs: {} });
    assert.equal(response.errors?.request?.code, 'INVALID_ARGUMENT');
    assert.match(response.errors!.request!.message, /has no inputs/);
    assert.deepEqual(response.results, {});
  });

  test('a configured model the catalog does not list is reported as NOT_FOUND for that modality only, without running anywhere', async () => {
    const cloudOnly = await startAgent(cloud.address, {
      modalities: { audio: { model: 'no-such-model', localVariant: '' }, text: { localVariant: '' }, image: { localVariant: '' }, video: { localVariant: '' } },
    });
    try {
      const response = await cloudOnly.handle({ id: 'unknown-model', inputs: { audio: speech, image: invoice } });
      assert.deepEqual(Object.keys(response.errors ?? {}), ['audio']);
      assert.equal(response.errors!.audio!.code, 'NOT_FOUND');
      assert.match(response.errors!.audio!.message, /unknown model 'no-such-model'/);
      assert.equal(response.placement.audio, undefined, 'without its handler the edge cannot check or place it');
      assert.deepEqual(ocrTexts(response.results.image), expectedTexts('invoice.png'));
    } finally {
      await cloudOnly.close();
    }
  });

  test('an offloaded task the cloud cannot finish in time fails with DEADLINE_EXCEEDED by its deadline when there is no local variant', async () => {
    const cloudOnly = await startAgent(cloud.address, { modalities: { text: { localVariant: '' }, audio: { localVariant: '' }, image: { localVariant: '' }, video: { localVariant: '' } } });
    try {
      const slowPage = await slowOcrPage();
      const started = performance.now();
      const response = await cloudOnly.handle({ id: 'too-slow', inputs: { image: slowPage }, deadlineMs: 250 });
      const elapsedMs = performance.now() - started;
      assert.equal(response.errors?.image?.code, 'DEADLINE_EXCEEDED', JSON.stringify(response.errors));
      assert.ok(elapsedMs < 250 + 150, `answered after ${elapsedMs} ms`);
    } finally {
      await cloudOnly.close();
    }
  });
});

describe('edge agent when the cloud tier stops mid-run', () => {
  let cloud: { server: CloudServer; address: string };
  let withLocalImage: EdgeAgent;
  let withoutLocalImage: EdgeAgent;

  before(async () => {
    cloud = await startTestCloud({ models: cloudModels });
    // Short probe cool-downs, so the test of the cloud's return need not wait out the default backoff.
    withLocalImage = await startAgent(cloud.address, {}, { breaker: { coolDownMs: 100, maxCoolDownMs: 400 } });
    withoutLocalImage = await startAgent(cloud.address, { modalities: { image: { localVariant: '' }, video: { localVariant: '' } } });
  });

  after(async () => {
    await withLocalImage?.close();
    await withoutLocalImage?.close();
    await cloud?.server.drain(2_000);
  });

  test('every request is answered: text and audio stay on the edge, image falls back to its local variant and says why', async () => {
    const first = await withLocalImage.handle(mixedRequest('before-stop'));
    assertNoErrors(first);
    assert.equal(first.placement.image?.ran, 'cloud');
    assert.equal((await withoutLocalImage.handle({ id: 'before-stop', inputs: { image: invoice } })).placement.image?.ran, 'cloud');

    const during = [0, 1, 2].map((i) => withLocalImage.handle(mixedRequest(`during-stop-${i}`)));
    await cloud.server.drain(5_000);
    const afterStop = [];
    for (let i = 0; i < 3; i++) afterStop.push(await withLocalImage.handle(mixedRequest(`after-stop-${i}`)));

    for (const response of [...(await Promise.all(during)), ...afterStop]) {
      assertNoErrors(response);
      assert.deepEqual(ocrTexts(response.results.image), expectedTexts('invoice.png'), response.id);
      assert.equal(speechSegments(response.results.audio).length, 2, response.id);
      assert.equal(response.placement.audio?.ran, 'edge');
      if (textIntentInCatalog) assert.equal(response.placement.text?.ran, 'edge');
    }
    const last = afterStop.at(-1)!;
    assert.equal(last.placement.image?.ran, 'edge');
    assert.deepEqual(last.placement.image!.reasons, ['cloud-down']);
    assert.ok(afterStop.some((r) => r.placement.image?.ran === 'edge'));
    assert.notEqual(withLocalImage.stats().cloud.state, 'closed');
  });

  test('without a local variant, image fails with a clear UNAVAILABLE well within the deadline, and audio is still answered', async () => {
    const started = performance.now();
    const response = await withoutLocalImage.handle({ id: 'no-fallback', inputs: { image: invoice, audio: speech }, deadlineMs: 3_000 });
    const elapsedMs = performance.now() - started;
    assert.deepEqual(Object.keys(response.errors ?? {}), ['image']);
    assert.equal(response.errors!.image!.code, 'UNAVAILABLE');
    assert.match(response.errors!.image!.message, /cloud tier .* (unavailable|broke)/);
    assert.match(response.errors!.image!.message, /image has no local variant to fall back to \(set modalities\.image\.localVariant/);
    // Placed in the cloud, it never left the device: the circuit was already open.
    assert.deepEqual([response.placement.image?.decided, response.placement.image?.ran], ['cloud', null]);
    assert.equal(speechSegments(response.results.audio).length, 2);
    assert.ok(elapsedMs < 3_000, `answered after ${elapsedMs} ms`);
  });

  test('once the cloud tier is back, a probe closes the circuit and image is offloaded again on a new stream', async () => {
    const port = Number(cloud.address.split(':')[1]);
    cloud = await startTestCloud({ models: ['image-ocr'], port });
    const deadline = Date.now() + 10_000;
    while (withLocalImage.stats().cloud.state !== 'closed') {
      assert.ok(Date.now() < deadline, `circuit still ${withLocalImage.stats().cloud.state} 10 s after the cloud came back`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const response = await withLocalImage.handle({ id: 'cloud-back', inputs: { image: invoice } });
    assertNoErrors(response);
    assert.equal(response.placement.image?.ran, 'cloud');
    assert.deepEqual(response.placement.image?.reasons, ['configured']);
    assert.equal(withLocalImage.stats().offload.streamsOpened, 2);
  });
});

describe('edge agent started while the cloud tier is unreachable', () => {
  let agent: EdgeAgent;

  before(async () => {
    agent = await startAgent(`127.0.0.1:${await freeLoopbackPort()}`, { modalities: { video: { localVariant: '' } } });
  });

  after(async () => {
    await agent?.close();
  });

  test('start-up succeeds with the circuit open, and the reason says the cloud is unreachable', () => {
    const { cloud } = agent.stats();
    assert.equal(cloud.state, 'open');
    assert.match(cloud.lastError ?? '', /unreachable/);
  });

  test('image runs locally with a why that names the unreachable cloud; video, with no local variant, fails fast with UNAVAILABLE', async () => {
    const started = performance.now();
    const chunks: ChunkMessage[] = [];
    const response = await agent.handle({ id: 'offline', inputs: { image: invoice, audio: speech, video: [readFixture('ocr', 'shipped-zh.jpg')] }, deadlineMs: 5_000 }, (m) => chunks.push(m));
    assert.deepEqual(ocrTexts(response.results.image), expectedTexts('invoice.png'));
    assert.equal(response.placement.image?.ran, 'edge');
    assert.deepEqual(response.placement.image!.reasons, ['cloud-down']);
    assert.match(response.placement.image!.why, /^the cloud is unavailable \(circuit (open|half-open): unreachable/);
    // Video has nowhere to run: its one chunk, placed in the cloud, never left the device.
    const chunk = chunks[0]!.placement.video;
    assert.deepEqual([chunks.length, chunk?.decided, chunk?.ran, chunk?.reasons], [1, 'cloud', null, ['no-local-variant', 'cloud-down']]);
    assert.equal(speechSegments(response.results.audio).length, 2);
    assert.deepEqual(Object.keys(response.errors ?? {}), ['video']);
    assert.equal(response.errors!.video!.code, 'UNAVAILABLE');
    assert.match(response.errors!.video!.message, /video has no local variant/);
    assert.ok(performance.now() - started < 5_000);
  });
});

describe('edge agent when the cloud tier is busy, with a pixel budget of one and a half invoices', () => {
  let cloud: { server: CloudServer; address: string };
  let agent: EdgeAgent;
  let invoicePixels: number;

  before(async () => {
    // One image at a time and no queue: every other concurrent image is refused with RESOURCE_EXHAUSTED.
    cloud = await startTestCloud({ models: ['image-ocr'], limits: { concurrencyPerModel: 1, maxQueuePerModel: 0 } });
    const { width, height } = await sharp(invoice).metadata();
    invoicePixels = width! * height!;
    agent = await startAgent(cloud.address, { limits: { maxDecodedPixels: Math.round(invoicePixels * 1.5) } });
  });

  after(async () => {
    await agent?.close();
    await cloud?.server.drain(2_000);
  });

  test("a cloud RESOURCE_EXHAUSTED falls back to the edge's local variant and keeps the circuit closed", async () => {
    const responses = await Promise.all([0, 1, 2, 3].map((i) => agent.handle({ id: `busy-${i}`, inputs: { image: invoice } })));
    for (const response of responses) {
      assertNoErrors(response);
      assert.deepEqual(ocrTexts(response.results.image), expectedTexts('invoice.png'), response.id);
    }
    const fellBack = responses.filter((r) => r.placement.image?.fallback);
    assert.ok(fellBack.length > 0, 'some images were refused by the busy cloud');
    for (const response of fellBack) {
      assert.equal(response.placement.image!.ran, 'edge');
      assert.equal(response.placement.image!.fallback!.code, 'RESOURCE_EXHAUSTED');
    }
    assert.deepEqual(agent.stats().cloud, { state: 'closed', consecutiveFailures: 0 });
  });

  test('an image over limits.maxDecodedPixels is refused before decoding; audio is still answered', async () => {
    const twice = await sharp(invoice).resize({ width: 2 * (await sharp(invoice).metadata()).width! }).png().toBuffer();
    const response = await agent.handle({ id: 'too-many-pixels', inputs: { image: new Uint8Array(twice), audio: speech } });
    assert.equal(response.errors?.image?.code, 'INVALID_ARGUMENT');
    assert.match(response.errors!.image!.message, /^the request's images hold [\d.]+ MP, over the limit of [\d.]+ MP per request \(limits\.maxDecodedPixels\)/);
    assert.equal(response.placement.image, undefined, 'never placed');
    assert.equal(speechSegments(response.results.audio).length, 2);
  });
});
