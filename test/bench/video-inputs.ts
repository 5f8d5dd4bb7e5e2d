/**
 * bench:video's inputs: clips made by ffmpeg (test/helpers/video-clips.ts),
 * a long stream looped from a short clip without re-encoding (a 10-minute
 * 720p encode with the noise filter takes minutes on a small box; the loop
 * takes a second and is the same media), and what sending every sampled
 * frame as a JPEG would cost: the agent's decode and its default shaping,
 * with no frame filter.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EdgeConfig } from '../../edge/config.js';
import { defaultShaping, shapeFrames } from '../../edge/offload/image-shaping.js';
import { decodeVideo } from '../../edge/video/decode.js';
import { findFfmpeg } from '../../edge/video/ffmpeg-binary.js';
import type { VideoFrame } from '../../shared/video/chunk.js';
import { makeClip, type ClipScene, type ClipSpec } from '../helpers/video-clips.js';

const run = promisify(execFile);

export interface BenchClip {
  /** e.g. `fixed-camera-720p`. */
  name: string;
  scene: ClipScene;
  /** e.g. `1280x720`. */
  resolution: string;
  file: string;
  seconds: number;
}

export const resolutions = { '720p': { width: 1280, height: 720 }, '1080p': { width: 1920, height: 1080 } } as const;
export type ResolutionName = keyof typeof resolutions;

/** A 30 fps H.264 clip of `scene` (the fixed camera's events repeat every 4 s, so a multiple of 4 s loops seamlessly). */
export async function benchClip(scene: ClipScene, resolution: ResolutionName | { width: number; height: number }, seconds: number): Promise<BenchClip> {
  const size = typeof resolution === 'string' ? resolutions[resolution] : resolution;
  const spec: ClipSpec = { ...size, fps: 30, seconds, scene, format: 'h264/mp4', seed: 7 };
  const label = typeof resolution === 'string' ? resolution : `${size.width}x${size.height}`;
  return { name: `${scene}-${label}`, scene, resolution: `${size.width}x${size.height}`, file: await makeClip(spec), seconds };
}

/** `clip` played `loops` times in a row, as one file next to it (stream copy: no re-encode). */
export async function loopedClip(clip: BenchClip, loops: number): Promise<BenchClip> {
  const seconds = clip.seconds * loops;
  const out = path.join(path.dirname(clip.file), `${path.basename(clip.file, '.mp4')}-x${loops}.mp4`);
  const ffmpeg = await findFfmpeg();
  await run(ffmpeg.path, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-stream_loop', String(loops - 1), '-i', clip.file, '-c', 'copy', '-t', String(seconds), out]);
  return { ...clip, name: `${clip.name}-${seconds / 60}min`, file: out, seconds };
}

/** Bytes of every sampled frame of the clip as a JPEG at the default shaping (`offload.imageMaxSide`, `offload.jpegQuality`): the uplink without the frame filter. */
export async function allFramesJpegBytes(clip: BenchClip, config: Pick<EdgeConfig, 'video' | 'offload'>): Promise<{ frames: number; bytes: number }> {
  const { video } = config;
  const decode = decodeVideo(
    { kind: 'source', source: `file://${clip.file}`, seconds: clip.seconds },
    { sampleFps: video.sampleFps, maxSide: video.decodeMaxSide, maxSeconds: video.maxSeconds, maxFrames: video.maxFrames, allowedSources: [`file://${path.dirname(clip.file)}/`] },
  );
  const option = defaultShaping(config.offload);
  let frames = 0;
  let bytes = 0;
  let batch: VideoFrame[] = [];
  const flush = async () => {
    const { payloads } = await shapeFrames(batch, option);
    bytes += payloads.reduce((sum, p) => sum + p.length, 0);
    batch = [];
  };
  try {
    for await (const frame of decode) {
      frames++;
      batch.push(frame);
      if (batch.length === video.chunkFrames) await flush();
    }
    if (batch.length > 0) await flush();
  } finally {
    decode.close();
  }
  return { frames, bytes };
}
