/**
 * Video through the agent, end to end on real parts: clips encoded by ffmpeg,
 * decoded by ffmpeg, filtered and chunked on the device, and each chunk
 * placed: InceptionV3 in a real cloud tier over gRPC (with the video's
 * sequence state there) or the INT8 MobileNetV2 on the device. Chunk answers
 * come in order before the final clip summary.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CloudServer } from '../../cloud/server.js';
import { EdgeAgent } from '../../edge/agent.js';
import { loadEdgeConfig } from '../../edge/config.js';
import type { AgentRequest, AgentResponse, ChunkMessage } from '../../edge/request.js';
import { createLogger } from '../../shared/log.js';
import type { ChunkAnswer, ClipSummary } from '../../shared/video/chunk.js';
import { startTestCloud } from '../helpers/cloud.js';
import { startLinkEmulator } from '../helpers/link-emulator.js';
import { makeClip, sceneChangeMs, type ClipSpec } from '../helpers/video-clips.js';

const log = createLogger('edge-video-test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');

/** 4 s at 4 sampled frames/s: 16 frames, 4 chunks of 4; scene B from 2 s. */
const sceneChange: ClipSpec = { width: 320, height: 240, fps: 10, seconds: 4, scene: 'scene-change', format: 'h264/mp4', seed: 3 };

interface FinalVideo extends ClipSummary {
  framesDecoded: number;
  framesKept: number;
  framesDropped: number;
  framesSent: number;
  placed: { edge: number; cloud: number; failed: number; skipped: number };
  uplinkBytes: number;
}

/** Runs a request and collects its chunk messages in the order they were published. */
async function ask(agent: EdgeAgent, request: AgentRequest): Promise<{ response: AgentResponse; chunks: ChunkMessage[] }> {
  const chunks: ChunkMessage[] = [];
  const response = await agent.handle(request, (message) => chunks.push(message));
  return { response, chunks };
}

const finalVideo = (response: AgentResponse) => response.results.video as FinalVideo;

describe('video through the agent', () => {
  let cloud: { server: CloudServer; address: string };
  let agent: EdgeAgent;
  let clipFile: string;
  let clip: Uint8Array;

  before(async () => {
    cloud = await startTestCloud({ models: ['video-encoder'] });
    clipFile = await makeClip(sceneChange);
    clip = new Uint8Array(await readFile(clipFile));
    agent = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: cloud.address, video: { chunkFrames: 4, sources: [`file://${path.dirname(clipFile)}/`] } }), log);
  });

  after(async () => {
    await agent?.close();
    await cloud?.server.drain(2_000);
  });

  test('a clip is answered chunk by chunk in order by the cloud, then summarised; the cloud frees the sequence at its end', async () => {
    const { response, chunks } = await ask(agent, { id: 'v-cloud', inputs: { video: clip } });
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assert.equal(response.final, true);
    assert.deepEqual(chunks.map((c) => [c.id, c.chunk, c.final, c.placement.video?.ran]), [0, 1, 2, 3].map((k) => ['v-cloud', k, false, 'cloud']));
    const answers = chunks.map((c) => c.results.video as ChunkAnswer);
    assert.deepEqual(answers.map((a) => [a.chunk, a.startMs, a.model]), [0, 1, 2, 3].map((k) => [k, k * 1000, 'inception-v3']));
    const video = finalVideo(response);
    assert.equal(video.framesDecoded, 16);
    assert.equal(video.framesKept + video.framesDropped, 16);
    assert.equal(video.chunks, 4);
    assert.deepEqual(video.placed, { edge: 0, cloud: 4, failed: 0, skipped: 0 });
    assert.deepEqual(video.boundaries, [sceneChangeMs(sceneChange)], 'the cut is found across the chunks, from the state the cloud kept');
    assert.deepEqual(video.embeddings.map((e) => [e.model, e.embedding.length, e.frames]), [['inception-v3', 2048, video.framesKept]]);
    assert.equal(video.framesSent, video.framesKept);
    assert.ok(video.uplinkBytes > 0);
    assert.equal(cloud.server.sequences.size, 0);
  });

  test('on the edge (quality fast, preferred there) the INT8 MobileNetV2 answers every chunk and finds the same cut', async () => {
    const { response, chunks } = await ask(agent, { id: 'v-edge', inputs: { video: clip }, prefer: { video: 'edge' }, quality: { video: 'fast' } });
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assert.deepEqual(chunks.map((c) => [c.chunk, c.placement.video?.ran, (c.results.video as ChunkAnswer).model]), [0, 1, 2, 3].map((k) => [k, 'edge', 'mobilenet-v2-int8']));
    const video = finalVideo(response);
    assert.deepEqual(video.boundaries, [sceneChangeMs(sceneChange)]);
    assert.deepEqual([video.uplinkBytes, video.placed.edge], [0, 4]);
  });

  test('stream: false publishes nothing before the final answer; a JPEG frame list is a video too', async () => {
    const frames = await Promise.all([0, 1, 2].map(() => readFile(new URL('../../../models/samples/ocr/shipped-zh.jpg', import.meta.url))));
    const { response, chunks } = await ask(agent, { id: 'v-list', inputs: { video: frames.map((f) => new Uint8Array(f)) }, stream: false });
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assert.deepEqual(chunks, []);
    assert.equal(response.final, undefined);
    const video = finalVideo(response);
    assert.deepEqual([video.framesDecoded, video.framesKept, video.chunks], [3, 1, 1], 'three equal frames: the filter keeps the first');
  });

  test('an allowed file source is read for the seconds asked; one outside video.sources is refused', async () => {
    const { response } = await ask(agent, { id: 'v-src', inputs: { video: { source: `file://${clipFile}`, seconds: 2 } } });
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assert.equal(finalVideo(response).framesDecoded, 8);
    const refused = await ask(agent, { id: 'v-src-2', inputs: { video: { source: 'file:///etc/passwd', seconds: 2 } } });
    assert.equal(refused.response.errors?.video?.code, 'INVALID_ARGUMENT');
    assert.match(refused.response.errors!.video!.message, /not in video\.sources/);
  });

  test('a corrupt video fails alone, naming the problem; the other modalities of the request are answered', async () => {
    const corrupt = clip.slice(0, 4096);
    const { response } = await ask(agent, { id: 'v-bad', inputs: { video: corrupt, text: 'Where is my order?' } });
    assert.equal(response.errors?.video?.code, 'INVALID_ARGUMENT');
    assert.match(response.errors!.video!.message, /moov atom not found|truncated|damaged/);
    assert.equal((response.results.text as { intent: string }).intent, 'order_status');
  });

  test('a video that outruns a slow link waits for it: one chunk in flight, a few decoded frames waiting at most, every chunk answered in the cloud', async () => {
    const link = await startLinkEmulator({ targetPort: Number(cloud.address.split(':')[1]), rttMs: 20, uplink: 0.5 });
    const slow = await EdgeAgent.start(
      loadEdgeConfig(undefined, { cloud: link.address, policy: { strategy: 'always-cloud' }, video: { chunkFrames: 4, chunksInFlight: 1, filterThreshold: 0 } }),
      log,
    );
    try {
      const { response, chunks } = await ask(slow, { id: 'v-slow', inputs: { video: clip }, deadlineMs: 30_000 });
      assert.equal(response.errors, undefined, JSON.stringify(response.errors));
      assert.deepEqual(chunks.map((c) => c.placement.video?.ran), ['cloud', 'cloud', 'cloud', 'cloud']);
      const counts = slow.stats().video;
      assert.deepEqual([counts.peakChunksInFlight, counts.framesDecoded], [1, 16]);
      // Two waiting frames pause ffmpeg's pipe; the read already under way may complete one more.
      assert.ok(counts.peakBufferedFrames <= 3, `the decoder held ${counts.peakBufferedFrames} frames`);
      assert.ok(link.stats().uplinkBytes >= finalVideo(response).uplinkBytes, 'every frame sent crossed the slow link');
    } finally {
      await slow.close();
      await link.close();
    }
  });

  test('with the cloud unreachable, every chunk runs on the edge', async () => {
    const alone = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: '127.0.0.1:9', video: { chunkFrames: 8 } }), log);
    try {
      const { response, chunks } = await ask(alone, { id: 'v-alone', inputs: { video: clip } });
      assert.equal(response.errors, undefined, JSON.stringify(response.errors));
      assert.deepEqual(chunks.map((c) => [c.placement.video?.ran, c.placement.video?.reasons[0]]), [['edge', 'cloud-down'], ['edge', 'cloud-down']]);
      assert.deepEqual(finalVideo(response).placed, { edge: 2, cloud: 0, failed: 0, skipped: 0 });
    } finally {
      await alone.close();
    }
  });

  test('more videos at once than video.maxSessions are refused with RESOURCE_EXHAUSTED', async () => {
    const one = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: cloud.address, video: { chunkFrames: 4, maxSessions: 1 } }), log);
    try {
      const [first, second] = await Promise.all([ask(one, { id: 'v-a', inputs: { video: clip } }), ask(one, { id: 'v-b', inputs: { video: clip } })]);
      assert.equal(first.response.errors, undefined);
      assert.equal(second.response.errors?.video?.code, 'RESOURCE_EXHAUSTED');
      assert.match(second.response.errors!.video!.message, /video\.maxSessions/);
    } finally {
      await one.close();
    }
  });
});
