/**
 * Video decode with the real ffmpeg on real clips: sampled frame counts and
 * times, the size rule, every container the agent accepts, the frame-list
 * form, damaged and foreign inputs, sources and their allowlist, the limits,
 * backpressure, and that no ffmpeg child outlives its decode.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { freeLoopbackPort } from '../../edge/local-stack.js';
import { checkContainerBytes, decodeVideo, type DecodeOptions, type VideoDecode, type VideoInput } from '../../edge/video/decode.js';
import { fitSize } from '../../edge/video/frame-list.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';
import { InferError } from '../../shared/errors.js';
import type { VideoFrame } from '../../shared/video/chunk.js';
import { makeClip, type ClipFormat, type ClipSpec } from '../helpers/video-clips.js';

const options: DecodeOptions = { sampleFps: 4, maxSide: 640, maxSeconds: 60, maxFrames: 1000 };
const threeSeconds: ClipSpec = { width: 1280, height: 720, fps: 30, seconds: 3, scene: 'moving', format: 'h264/mp4' };

const clipBytes = async (spec: ClipSpec) => new Uint8Array(await readFile(await makeClip(spec)));
const container = async (spec: ClipSpec): Promise<VideoInput> => ({ kind: 'container', bytes: await clipBytes(spec) });

async function readAll(decode: VideoDecode): Promise<VideoFrame[]> {
  const frames: VideoFrame[] = [];
  for await (const frame of decode) frames.push(frame);
  return frames;
}

/** Frames read before the decode failed, and its error. */
async function readUntilError(decode: VideoDecode): Promise<{ frames: VideoFrame[]; error: InferError }> {
  const frames: VideoFrame[] = [];
  try {
    for await (const frame of decode) frames.push(frame);
  } catch (err) {
    assert.ok(err instanceof InferError, `an InferError, got ${String(err)}`);
    return { frames, error: err };
  }
  assert.fail(`the decode ended without an error after ${frames.length} frames`);
}

/** After `exited`, the ffmpeg child is gone, not a zombie. */
async function assertChildGone(decode: VideoDecode, pid: number | undefined): Promise<void> {
  await decode.exited;
  assert.ok(pid !== undefined, 'an ffmpeg child was started');
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `ffmpeg ${pid} is still there`);
}

describe('video decode: frames and sizes', () => {
  test('a 3 s clip at 4 sampled frames/s gives 12 frames, 250 ms apart from 0', async () => {
    const decode = decodeVideo(await container(threeSeconds), options);
    const frames = await readAll(decode);
    assert.deepEqual(frames.map((f) => f.timeMs), [0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250, 2500, 2750]);
    assert.deepEqual(frames.map((f) => f.index), [...frames.keys()]);
    assert.equal(decode.live, false);
    assert.equal(decode.stats().durationMs, 3000);
    assert.ok(decode.stats().ffmpeg, 'names which ffmpeg decoded');
  });

  test('1280×720 with maxSide 640 decodes to 640×360 RGB', async () => {
    const [frame] = await readAll(decodeVideo(await container(threeSeconds), options));
    assert.deepEqual([frame!.width, frame!.height, frame!.data.length], [640, 360, 640 * 360 * 3]);
  });

  test('a portrait clip keeps its aspect; odd results round down to even sizes', async () => {
    const portrait = await container({ ...threeSeconds, width: 720, height: 1280 });
    const [frame] = await readAll(decodeVideo(portrait, options));
    assert.deepEqual([frame!.width, frame!.height], [360, 640]);
    const [odd] = await readAll(decodeVideo(await container(threeSeconds), { ...options, maxSide: 500 }));
    assert.deepEqual([odd!.width, odd!.height], [500, 280]);
    assert.deepEqual(fitSize(1280, 720, 500), { width: 500, height: 280 }, 'the frame-list form uses the same rule');
  });

  test('a clip smaller than maxSide is never upscaled', async () => {
    const [frame] = await readAll(decodeVideo(await container(threeSeconds), { ...options, maxSide: 4096 }));
    assert.deepEqual([frame!.width, frame!.height], [1280, 720]);
  });

  for (const format of ['h264/mp4', 'vp8/webm', 'h264/mkv', 'mjpeg/avi'] satisfies ClipFormat[]) {
    test(`${format} decodes`, async () => {
      const frames = await readAll(decodeVideo(await container({ ...threeSeconds, width: 640, height: 360, format }), options));
      assert.equal(frames.length, 12);
      assert.deepEqual([frames[0]!.width, frames[0]!.height], [640, 360]);
    });
  }
});

describe('video decode: a list of encoded frames', () => {
  test('decodes each frame lazily to the same shape, sampleFps apart', async () => {
    const stills = await photoLikeImages(3, 11);
    const decode = decodeVideo({ kind: 'frames', frames: stills.map((s) => s.bytes) }, { ...options, maxSide: 320 });
    const frames = await readAll(decode);
    assert.deepEqual(frames.map((f) => f.timeMs), [0, 250, 500]);
    for (const frame of frames) {
      assert.equal(Math.max(frame.width, frame.height), 320);
      assert.equal(frame.data.length, frame.width * frame.height * 3);
    }
  });

  test('a corrupt frame fails naming its index, after the frames before it', async () => {
    const [a, b] = await photoLikeImages(2, 12);
    const cut = b!.bytes.subarray(0, b!.bytes.length / 2);
    const { frames, error } = await readUntilError(decodeVideo({ kind: 'frames', frames: [a!.bytes, a!.bytes, cut] }, options));
    assert.equal(frames.length, 2);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.match(error.message, /video frame 2 does not decode/);
    const notImage = decodeVideo({ kind: 'frames', frames: [new TextEncoder().encode('hello')] }, options);
    await assert.rejects(readAll(notImage), /video frame 0: 5 bytes starting 68 65 6c 6c are not a JPEG/);
  });
});

describe('video decode: inputs ffmpeg cannot use', () => {
  const invalid = (pattern: RegExp) => (err: unknown) => err instanceof InferError && err.code === 'INVALID_ARGUMENT' && pattern.test(err.message);

  test('random bytes, a text file and an image are not video', async () => {
    const random = Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 2654435761) >>> 24);
    const [photo] = await photoLikeImages(1, 13);
    for (const bytes of [random, new TextEncoder().encode('just some text, not a video\n'), photo!.bytes]) {
      const { frames, error } = await readUntilError(decodeVideo({ kind: 'container', bytes }, options));
      assert.equal(frames.length, 0);
      assert.ok(invalid(/video input is not a container ffmpeg can read \(ffmpeg: .+\)/)(error), error.message);
      assert.doesNotMatch(error.message, /splitinfer-video-/, 'the temp file path stays out of the message');
    }
  });

  test('an empty input is refused at once', () => {
    assert.throws(() => decodeVideo({ kind: 'container', bytes: new Uint8Array() }, options), invalid(/video input is empty/));
  });

  test('container bytes over the limit are refused naming video.maxContainerBytes', () => {
    assert.throws(() => checkContainerBytes(new Uint8Array(2000), 1000), invalid(/2000 bytes, over video\.maxContainerBytes \(1000\)/));
    assert.doesNotThrow(() => checkContainerBytes(new Uint8Array(1000), 1000));
  });

  test('an MP4 cut in half (index at the end, so lost) fails naming the missing moov atom', async () => {
    const bytes = await clipBytes(threeSeconds);
    const { error } = await readUntilError(decodeVideo({ kind: 'container', bytes: bytes.subarray(0, bytes.length / 2) }, options));
    assert.ok(invalid(/moov atom not found/)(error), error.message);
  });

  test('a truncated MKV yields the frames that decoded, then fails saying it is truncated', async () => {
    const bytes = await clipBytes({ ...threeSeconds, format: 'h264/mkv' });
    const decode = decodeVideo({ kind: 'container', bytes: bytes.subarray(0, bytes.length / 2) }, options);
    const { frames, error } = await readUntilError(decode);
    assert.ok(frames.length > 0 && frames.length < 12, `${frames.length} frames`);
    assert.ok(invalid(new RegExp(`video input is truncated or damaged: ffmpeg decoded ${frames.length} sampled frames`))(error), error.message);
  });
});

describe('video decode: limits', () => {
  test('a clip over maxFrames fails naming video.maxFrames', async () => {
    const { frames, error } = await readUntilError(decodeVideo(await container(threeSeconds), { ...options, maxFrames: 5 }));
    assert.equal(frames.length, 5);
    assert.match(error.message, /video\.maxFrames \(5\)/);
  });

  test('a clip longer than maxSeconds is refused before its first frame, naming video.maxSeconds', async () => {
    const decode = decodeVideo(await container(threeSeconds), { ...options, maxSeconds: 2 });
    const { frames, error } = await readUntilError(decode);
    assert.equal(frames.length, 0);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.match(error.message, /3\.00 s, over video\.maxSeconds \(2 s\)/);
    await assertChildGone(decode, decode.stats().pid);
  });

  test('a list of frames over the limits is refused at once', () => {
    const frames = Array.from({ length: 9 }, () => new Uint8Array([0xff, 0xd8, 0xff]));
    assert.throws(() => decodeVideo({ kind: 'frames', frames }, { ...options, maxFrames: 8 }), /video\.maxFrames \(8\)/);
    assert.throws(() => decodeVideo({ kind: 'frames', frames }, { ...options, maxSeconds: 2 }), /over video\.maxSeconds \(2 s\)/);
  });
});

describe('video decode: sources on the device', () => {
  const refused = (pattern: RegExp) => (err: unknown) => err instanceof InferError && err.code === 'INVALID_ARGUMENT' && pattern.test(err.message);

  test('sources not allowlisted, of another scheme, or escaping with .. are refused before ffmpeg runs', async () => {
    const clip = await makeClip(threeSeconds);
    const folder = pathToFileURL(path.dirname(clip)).href + '/';
    const source = (s: string): VideoInput => ({ kind: 'source', source: s, seconds: 1 });
    assert.throws(() => decodeVideo(source(pathToFileURL(clip).href), options), refused(/video\.sources is empty/));
    assert.throws(() => decodeVideo(source('http://127.0.0.1/x.mp4'), { ...options, allowedSources: ['http://127.0.0.1/'] }), refused(/not one the device opens/));
    assert.throws(() => decodeVideo(source(`${folder}sub/../../${path.basename(clip)}`), { ...options, allowedSources: [folder] }), refused(/not in video\.sources/));
  });

  test('an allowlisted file:// clip decodes for the seconds asked', async () => {
    const clip = await makeClip(threeSeconds);
    const allowedSources = [pathToFileURL(path.dirname(clip)).href + '/'];
    const decode = decodeVideo({ kind: 'source', source: pathToFileURL(clip).href, seconds: 2 }, { ...options, allowedSources });
    assert.equal(decode.live, false);
    const frames = await readAll(decode);
    assert.deepEqual(frames.map((f) => f.timeMs), [0, 250, 500, 750, 1000, 1250, 1500, 1750]);
  });

  test('a source asking for more than the limits is refused at once', () => {
    const input: VideoInput = { kind: 'source', source: '/dev/video0', seconds: 30 };
    const allowedSources = ['/dev/video0'];
    assert.throws(() => decodeVideo(input, { ...options, allowedSources, maxSeconds: 10 }), refused(/video\.maxSeconds \(10 s\)/));
    assert.throws(() => decodeVideo(input, { ...options, allowedSources, maxFrames: 100 }), refused(/video\.maxFrames \(100\)/));
  });

  test('an RTSP camera nobody listens for is UNAVAILABLE within seconds', async () => {
    const port = await freeLoopbackPort();
    const source = `rtsp://127.0.0.1:${port}/stream`;
    const started = performance.now();
    const decode = decodeVideo({ kind: 'source', source, seconds: 5 }, { ...options, allowedSources: [`rtsp://127.0.0.1:${port}/`] });
    assert.equal(decode.live, true);
    const { error } = await readUntilError(decode);
    assert.equal(error.code, 'UNAVAILABLE');
    assert.match(error.message, new RegExp(`video source rtsp://127.0.0.1:${port}/stream is unreachable \\(ffmpeg: .*Connection refused`));
    assert.ok(performance.now() - started < 5_000, `failed after ${Math.round(performance.now() - started)} ms`);
    await assertChildGone(decode, decode.stats().pid);
  });

  test('a missing V4L2 device is UNAVAILABLE', async () => {
    const decode = decodeVideo({ kind: 'source', source: '/dev/video99', seconds: 1 }, { ...options, allowedSources: ['/dev/video99'] });
    const { error } = await readUntilError(decode);
    assert.equal(error.code, 'UNAVAILABLE');
    assert.match(error.message, /\/dev\/video99 is unreachable .*No such file or directory/);
  });

  test('a camera that accepts and then says nothing fails after stallMs and its ffmpeg is killed', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const decode = decodeVideo({ kind: 'source', source: `rtsp://127.0.0.1:${port}/x`, seconds: 5 }, { ...options, stallMs: 1000, allowedSources: [`rtsp://127.0.0.1:${port}/`] });
      const { error } = await readUntilError(decode);
      assert.equal(error.code, 'UNAVAILABLE');
      assert.match(error.message, /gave no frame for 1 s/);
      await assertChildGone(decode, decode.stats().pid);
    } finally {
      silent.close();
    }
  });
});

describe('video decode: backpressure and the ffmpeg child', () => {
  const long: ClipSpec = { width: 640, height: 360, fps: 30, seconds: 20, scene: 'fixed-camera', format: 'h264/mp4' };

  test('a slow reader keeps at most a few decoded frames waiting, however long the clip', async () => {
    const decode = decodeVideo(await container(long), { ...options, sampleFps: 30 });
    let read = 0;
    for await (const _ of decode) {
      read++;
      // Long enough for ffmpeg to decode the whole clip if nothing held it back.
      await sleep(150);
      const stats = decode.stats();
      assert.ok(stats.framesDecoded <= read + 3, `${stats.framesDecoded} frames decoded for ${read} read`);
      if (read === 8) break;
    }
    assert.ok(decode.stats().peakBufferedFrames <= 2, `peak ${decode.stats().peakBufferedFrames} frames buffered`);
  });

  test('breaking out of the loop early kills ffmpeg', async () => {
    const decode = decodeVideo(await container(long), options);
    for await (const frame of decode) if (frame.index === 1) break;
    await assertChildGone(decode, decode.stats().pid);
  });

  test('close() stops the frames and kills ffmpeg; calling it again is harmless', async () => {
    const decode = decodeVideo(await container(long), options);
    const iterator = decode[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).done, false);
    decode.close();
    decode.close();
    assert.equal((await iterator.next()).done, true);
    await assertChildGone(decode, decode.stats().pid);
  });

  test('an abort signal ends the decode with its reason and kills ffmpeg', async () => {
    const controller = new AbortController();
    const decode = decodeVideo(await container(long), { ...options, signal: controller.signal });
    const reason = new InferError('DEADLINE_EXCEEDED', 'request deadline passed');
    await assert.rejects(async () => {
      for await (const frame of decode) if (frame.index === 2) controller.abort(reason);
    }, (err) => err === reason);
    await assertChildGone(decode, decode.stats().pid);
  });

  test('a decode closed or aborted before it is read starts no ffmpeg', async () => {
    const closed = decodeVideo(await container(long), options);
    closed.close();
    await closed.exited;
    assert.equal((await closed[Symbol.asyncIterator]().next()).done, true);
    assert.equal(closed.stats().pid, undefined);
    const aborted = decodeVideo(await container(long), { ...options, signal: AbortSignal.abort(new Error('shutting down')) });
    await aborted.exited;
    await assert.rejects(aborted[Symbol.asyncIterator]().next(), /shutting down/);
    assert.equal(aborted.stats().pid, undefined);
  });

  test('an error ends ffmpeg too', async () => {
    const decode = decodeVideo(await container(long), { ...options, maxFrames: 3 });
    await readUntilError(decode);
    await assertChildGone(decode, decode.stats().pid);
  });
});
