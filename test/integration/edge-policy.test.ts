/**
 * Placement strategies in the real agent against a real cloud tier: the
 * adaptive strategy on loopback (images offloaded, estimates reported), when
 * the cloud goes away (local answers within the deadline), over an
 * emulated slow uplink (images move to the edge once the link is measured)
 * and through an emulated outage (the stall is found and tasks run locally);
 * and the confidence strategy's run-locally-then-maybe-in-the-cloud path.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { EdgeAgent } from '../../edge/agent.js';
import { loadEdgeConfig } from '../../edge/config.js';
import type { AgentResponse } from '../../edge/request.js';
import type { CloudServer } from '../../cloud/server.js';
import { createLogger } from '../../shared/log.js';
import { startTestCloud } from '../helpers/cloud.js';
import { expectedOcrLines, readFixture, textIntentInCatalog, textIntentOptions } from '../helpers/inference.js';
import { startLinkEmulator, type LinkEmulator } from '../helpers/link-emulator.js';

const log = createLogger('edge-policy-test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const cloudModels = ['image-ocr', 'audio-vad', ...(textIntentInCatalog ? ['text-intent'] : [])];
const images = ['invoice.png', 'shipped-zh.jpg', 'welcome-zh.png'];

const ocrTexts = (result: unknown) => (result as { lines: { text: string }[] }).lines.map((l) => l.text);
const expectedTexts = (file: string) => expectedOcrLines[file]!.map((l) => l.text);

function startAgent(cloud: string, policy: Record<string, unknown>): Promise<EdgeAgent> {
  return EdgeAgent.start(loadEdgeConfig(undefined, { cloud, policy }), log, { breaker: { coolDownMs: 200, maxCoolDownMs: 1_000 } });
}

function assertNoErrors(response: AgentResponse): void {
  assert.equal(response.errors, undefined, `unexpected errors: ${JSON.stringify(response.errors)}`);
}

interface CloudRow {
  option: string;
  expectedMs?: number;
  payloadBytes: number;
  missing?: string[];
}

describe('adaptive placement with a real cloud tier on loopback', () => {
  let cloud: { server: CloudServer; address: string };
  let agent: EdgeAgent;

  before(async () => {
    cloud = await startTestCloud({ models: cloudModels, intraOpThreads: 2 });
    // Here the cloud tier shares this machine's CPU and runs the same fp32 model, so its compute is
    // about the edge's and either side may look faster by a few tens of percent; a wide hysteresis
    // margin keeps images where config places them, which is what a real cloud's speed would do.
    agent = await startAgent(cloud.address, { strategy: 'adaptive', hysteresis: 0.5 });
  });

  after(async () => {
    await agent?.close();
    await cloud?.server.drain(2_000);
  });

  test('images are offloaded, and each answer reports the comparison and the estimates per shaping option', async () => {
    const responses: AgentResponse[] = [];
    for (const [i, file] of [...images, ...images].entries()) {
      const response = await agent.handle({ id: `loopback-${i}`, inputs: { image: readFixture('ocr', file) } });
      assertNoErrors(response);
      assert.deepEqual(ocrTexts(response.results.image), expectedTexts(file), response.id);
      responses.push(response);
    }
    for (const response of responses) assert.equal(response.placement.image?.ran, 'cloud', `${response.id}: ${response.placement.image?.why}`);
    const first = responses[0]!.placement.image!;
    assert.deepEqual(first.reasons, ['no-estimate']);
    const last = responses.at(-1)!.placement.image!;
    assert.ok(['faster', 'within-hysteresis'].includes(last.reasons[0]!), last.why);
    assert.match(last.why, /^cloud at \d+px q\d+ \d+ ms \(shrink \d+ \+ rtt \d+ \+ upload \d+ \+ queue \d+ \+ compute \d+\) vs edge \d+ ms/);
    const rows = last.estimates.cloud as CloudRow[];
    assert.ok(rows.length > 1, 'one estimate per shaping option of image-ocr');
    assert.ok(rows.every((r) => typeof r.expectedMs === 'number' && r.missing === undefined), JSON.stringify(rows));
    assert.equal(last.estimates.strategy, 'adaptive');
    assert.equal(typeof (last.estimates.edge as { expectedMs: unknown }).expectedMs, 'number');
    assert.equal(typeof (last.estimates.link as { rttMs: unknown }).rttMs, 'number');
  });

  test('text and audio stay on the edge, where config places them, until the cloud has been measured for them', textIntentOptions, async () => {
    const response = await agent.handle({ id: 'loopback-text', inputs: { text: 'Where is my order?', audio: readFixture('audio', 'speech-en.wav') } });
    assertNoErrors(response);
    for (const modality of ['text', 'audio'] as const) {
      assert.equal(response.placement[modality]?.ran, 'edge', response.placement[modality]?.why);
      assert.deepEqual(response.placement[modality]!.reasons, ['no-estimate']);
    }
  });

  test('after the cloud is drained, images are answered on the edge within their deadline', async () => {
    await cloud.server.drain(5_000);
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const response = await agent.handle({ id: `drained-${i}`, inputs: { image: readFixture('ocr', 'invoice.png') }, deadlineMs: 3_000 });
      const elapsedMs = performance.now() - started;
      assertNoErrors(response);
      assert.deepEqual(ocrTexts(response.results.image), expectedTexts('invoice.png'));
      assert.equal(response.placement.image?.ran, 'edge', response.placement.image?.why);
      assert.ok(elapsedMs < 3_000, `answered after ${elapsedMs} ms`);
    }
    assert.notEqual(agent.stats().cloud.state, 'closed');
  });
});

describe('adaptive placement over an emulated slow uplink', () => {
  let cloud: { server: CloudServer; address: string };
  let link: LinkEmulator;
  let agent: EdgeAgent;
  let photo: Uint8Array;

  before(async () => {
    cloud = await startTestCloud({ models: ['image-ocr'] });
    link = await startLinkEmulator({ targetPort: Number(cloud.address.split(':')[1]), rttMs: 60, uplink: 0.5, downlink: 20 });
    // Exploration allowed early, so a path without estimates gets measured within a few requests.
    agent = await startAgent(link.address, { strategy: 'adaptive', exploreShare: 0.25 });
    // A camera-like 1600×1200 photo of the invoice: light sensor noise keeps its JPEG big.
    const tile = await sharp(readFixture('ocr', 'invoice.png')).resize({ width: 960 }).toBuffer();
    photo = new Uint8Array(
      await sharp({ create: { width: 1600, height: 1200, channels: 3, background: '#f4f4f4', noise: { type: 'gaussian', mean: 240, sigma: 6 } } })
        .composite([{ input: tile, left: 300, top: 400 }])
        .jpeg({ quality: 90 })
        .toBuffer(),
    );
  });

  after(async () => {
    await agent?.close();
    await link?.close();
    await cloud?.server.drain(2_000);
  });

  test('once the uplink is measured, a large image runs on the edge, and why says the edge is faster', async () => {
    const sites: string[] = [];
    const whys: string[] = [];
    let last: AgentResponse | undefined;
    for (let i = 0; i < 7; i++) {
      last = await agent.handle({ id: `slow-${i}`, inputs: { image: photo }, deadlineMs: 30_000 });
      assertNoErrors(last);
      assert.ok(ocrTexts(last.results.image).includes(expectedTexts('invoice.png')[0]!), JSON.stringify(ocrTexts(last.results.image)));
      sites.push(last.placement.image!.ran ?? 'none');
      whys.push(last.placement.image!.why);
    }
    assert.equal(sites[0], 'cloud', 'config places images in the cloud until the link is measured');
    assert.match(whys[0]!, /\(uplink bandwidth, cloud compute not measured\), so it stays in the cloud$/);
    assert.deepEqual(sites.slice(-2), ['edge', 'edge'], whys.join('\n'));
    assert.deepEqual(last!.placement.image!.reasons, ['faster']);
    const uplinkMbps = (last!.placement.image!.estimates.link as { uplinkMbps: number }).uplinkMbps;
    assert.ok(uplinkMbps > 0.25 && uplinkMbps < 1, `uplink estimate ${uplinkMbps} Mbit/s over a 0.5 Mbit/s link`);
  });
});

describe('adaptive placement when the emulated link stalls', () => {
  let cloud: { server: CloudServer; address: string };
  let link: LinkEmulator;
  let agent: EdgeAgent;

  before(async () => {
    cloud = await startTestCloud({ models: ['image-ocr'] });
    link = await startLinkEmulator({ targetPort: Number(cloud.address.split(':')[1]), rttMs: 40, uplink: 20 });
    // The wide margin keeps images in the cloud while the link is up (both tiers share this CPU).
    agent = await startAgent(link.address, { strategy: 'adaptive', hysteresis: 0.5, exploreShare: 0, stallSilenceMs: 300 });
  });

  after(async () => {
    await agent?.close();
    await link?.close();
    await cloud?.server.drain(2_000);
  });

  test('a stall is found by the probe within a second; tasks with a local variant are answered on the edge within their deadline', async () => {
    const image = readFixture('ocr', 'invoice.png');
    for (let i = 0; i < 3; i++) {
      const response = await agent.handle({ id: `up-${i}`, inputs: { image }, deadlineMs: 10_000 });
      assertNoErrors(response);
      assert.equal(response.placement.image?.ran, 'cloud', response.placement.image?.why);
    }
    // Coverage lost: nothing flows either way, connections stay open.
    link.setConditions({ outages: [{ startS: 0 }], outageMode: 'stall' });
    const stalledAt = performance.now();
    const inFlight = agent.handle({ id: 'caught', inputs: { image }, deadlineMs: 8_000 });
    while (agent.stats().cloud.state === 'closed' && performance.now() - stalledAt < 5_000) await new Promise((resolve) => setTimeout(resolve, 20));
    const detectedMs = performance.now() - stalledAt;
    assert.notEqual(agent.stats().cloud.state, 'closed', 'the circuit opened');
    assert.ok(detectedMs < 1_500, `stall found after ${Math.round(detectedMs)} ms`);
    assert.match(agent.stats().cloud.lastError ?? '', /^the link stalled: 1 offload\(s\) unanswered for \d+ ms and no answer to a ServerLive probe within \d+ ms$/);

    const started = performance.now();
    const during = await agent.handle({ id: 'during', inputs: { image }, deadlineMs: 3_000 });
    assertNoErrors(during);
    assert.equal(during.placement.image?.ran, 'edge');
    assert.deepEqual(during.placement.image!.reasons, ['cloud-down']);
    assert.match(during.placement.image!.why, /the cloud is unavailable \(circuit (open|half-open): the link stalled/);
    assert.deepEqual(ocrTexts(during.results.image), expectedTexts('invoice.png'));
    assert.ok(performance.now() - started < 3_000);
    // The task caught in flight was retried on the edge as soon as the stall was found, not at its deadline.
    const caught = await inFlight;
    assertNoErrors(caught);
    assert.equal(caught.placement.image?.ran, 'edge', caught.placement.image?.why);
    assert.deepEqual([caught.placement.image!.decided, caught.placement.image!.reasons.at(-1)], ['cloud', 'fallback-after-cloud-error']);
    assert.equal(caught.placement.image!.fallback?.code, 'UNAVAILABLE');
    assert.match(caught.placement.image!.fallback!.message, /the link to the cloud tier at \S+ stalled \(the link stalled: /);
    assert.ok(caught.timings.image!.totalMs < 2_500, `caught task answered after ${caught.timings.image!.totalMs} ms`);

    // The link comes back: the probe waiting on it gets through at once and the cloud answers again.
    link.setConditions({ outages: [] });
    const recoveredAt = performance.now();
    while (agent.stats().cloud.state !== 'closed' && performance.now() - recoveredAt < 5_000) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(agent.stats().cloud.state, 'closed', 'the circuit closed again');
    assert.ok(performance.now() - recoveredAt < 1_000, `closed ${Math.round(performance.now() - recoveredAt)} ms after the link came back`);
    const afterwards = await agent.handle({ id: 'after', inputs: { image }, deadlineMs: 10_000, prefer: { image: 'cloud' } });
    assertNoErrors(afterwards);
    assert.equal(afterwards.placement.image?.ran, 'cloud', afterwards.placement.image?.why);
  });
});

describe('confidence strategy with a real cloud tier', () => {
  let cloud: { server: CloudServer; address: string };

  before(async () => {
    cloud = await startTestCloud({ models: cloudModels });
  });

  after(async () => {
    await cloud?.server.drain(2_000);
  });

  test('a doubtful edge result is run again in the cloud, whose answer is returned; a confident one stays on the edge', async () => {
    const doubtful = await startAgent(cloud.address, { strategy: 'confidence', confidenceThreshold: 1 });
    const trusting = await startAgent(cloud.address, { strategy: 'confidence', confidenceThreshold: 0 });
    try {
      const escalated = await doubtful.handle({ id: 'hard-1', inputs: { image: readFixture('ocr', 'invoice.png') } });
      assertNoErrors(escalated);
      assert.equal(escalated.placement.image?.ran, 'cloud');
      assert.deepEqual(escalated.placement.image!.reasons, ['fixed-side', 'escalated-low-confidence']);
      assert.deepEqual([escalated.placement.image!.decided, escalated.placement.image!.escalation], ['edge', { outcome: 'cloud-answered' }]);
      assert.deepEqual(ocrTexts(escalated.results.image), expectedTexts('invoice.png'));
      const kept = await trusting.handle({ id: 'easy-1', inputs: { image: readFixture('ocr', 'invoice.png') } });
      assert.equal(kept.placement.image?.ran, 'edge');
      assert.equal(kept.timings.image?.transferMs, 0);
    } finally {
      await doubtful.close();
      await trusting.close();
    }
  });
});
