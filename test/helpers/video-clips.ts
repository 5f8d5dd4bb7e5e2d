/**
 * Real video clips for the video tests and benchmark, encoded by the same
 * ffmpeg the agent decodes with, from photo-like stills
 * (models/image-encoder/photo-like-images.ts) so an encoder sees photo-like
 * content rather than test patterns. Clips are written once per parameter
 * set into one temp folder per process and removed when it exits.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findFfmpeg } from '../../edge/video/ffmpeg-binary.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';

/**
 * - `fixed-camera`: a still scene; every 4 s from t = 1 s a box crosses it for 1.5 s.
 * - `moving`: a slow pan over a scene, every frame different.
 * - `scene-change`: scene A, then from half the clip (sceneChangeMs) a different scene B.
 */
export type ClipScene = 'fixed-camera' | 'moving' | 'scene-change';
export type ClipFormat = 'h264/mp4' | 'vp8/webm' | 'h264/mkv' | 'mjpeg/avi';

export interface ClipSpec {
  width: number;
  height: number;
  fps: number;
  seconds: number;
  scene: ClipScene;
  format: ClipFormat;
  /** Picks the stills; the same seed gives the same scenes. */
  seed?: number;
}

const run = promisify(execFile);
let folder: string | undefined;
const clips = new Map<string, Promise<string>>();

function clipFolder(): string {
  if (!folder) {
    const dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-clips-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    folder = dir;
  }
  return folder;
}

/** When a scene-change clip switches from scene A to scene B. */
export const sceneChangeMs = (spec: Pick<ClipSpec, 'seconds'>): number => (spec.seconds * 1000) / 2;

/** Encoder options per format; the file extension is the format's second half. */
const encoders: Record<ClipFormat, string[]> = {
  'h264/mp4': ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'],
  'h264/mkv': ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'],
  'vp8/webm': ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '2M', '-pix_fmt', 'yuv420p'],
  'mjpeg/avi': ['-c:v', 'mjpeg', '-q:v', '5', '-pix_fmt', 'yuvj420p'],
};

function sceneFilter({ width: w, height: h, scene, seconds }: ClipSpec): string {
  const fill = (input: string, scale: number, label: string) =>
    `[${input}:v]scale=${w * scale}:${h * scale}:force_original_aspect_ratio=increase,crop=${w * scale}:${h * scale},setsar=1[${label}]`;
  switch (scene) {
    case 'fixed-camera': {
      const box = `color=c=0xc03020:s=${Math.round(w / 6)}x${Math.round(h / 4)}`;
      return `${fill('0', 1, 'bg')};${box}[box];` +
        `[bg][box]overlay=x='(mod(t,4)-1)/1.5*(W+w)-w':y='H/2-h/2':enable='between(mod(t,4),1,2.5)':shortest=1`;
    }
    case 'moving':
      return `${fill('0', 2, 'big')};[big]crop=${w}:${h}:x='(iw-ow)*(0.5+0.5*sin(t*0.7))':y='(ih-oh)*(0.5+0.5*cos(t*0.5))'`;
    case 'scene-change':
      return `${fill('0', 1, 'a')};${fill('1', 1, 'b')};[a][b]overlay=enable='gte(t,${seconds / 2})'`;
  }
}

async function encode(spec: ClipSpec): Promise<string> {
  const dir = clipFolder();
  const stills = await photoLikeImages(spec.scene === 'scene-change' ? 2 : 1, spec.seed ?? 7);
  const inputs: string[] = [];
  for (const still of stills) {
    const file = path.join(dir, still.name);
    await writeFile(file, still.bytes);
    inputs.push('-loop', '1', '-framerate', String(spec.fps), '-t', String(spec.seconds), '-i', file);
  }
  const out = path.join(dir, `${spec.scene}-${spec.width}x${spec.height}-${spec.fps}fps-${spec.seconds}s-${spec.seed ?? 7}.${spec.format.replace('/', '.')}`);
  const ffmpeg = await findFfmpeg();
  await run(ffmpeg.path, [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    ...inputs,
    // Sensor-like noise that changes every frame, as a real camera's does: bitrate and frame differences like a camera's, not a still's.
    '-filter_complex', `${sceneFilter(spec)},noise=alls=6:allf=t`,
    '-r', String(spec.fps), '-t', String(spec.seconds), '-an',
    ...encoders[spec.format], out,
  ]);
  return out;
}

/** The path of a clip made to `spec`, encoded on first use. */
export function makeClip(spec: ClipSpec): Promise<string> {
  const key = JSON.stringify(spec);
  let clip = clips.get(key);
  if (!clip) {
    clip = encode(spec);
    clips.set(key, clip);
  }
  return clip;
}
