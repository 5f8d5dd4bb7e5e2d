/**
 * `inputs.video` to sampled RGB frames, one at a time: container bytes and
 * allowlisted sources through an ffmpeg child (ffmpeg-frames.ts), a list of
 * encoded frames through sharp (frame-list.ts). Frames are `sampleFps` apart
 * from the first, so frame i is at i × 1000 / sampleFps ms.
 *
 * Limits: a source asking for more than `video.maxSeconds` or
 * `video.maxFrames` is refused before it is opened; a container longer than
 * `video.maxSeconds` is refused (its header's duration before the first
 * frame, else the first frame past the limit), never cut short silently. A
 * truncated or damaged container yields the frames that decoded, then fails
 * with INVALID_ARGUMENT saying so: a caller streaming chunk answers has
 * already used them, and the error tells the client its answer is partial.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { InferError } from '../../shared/errors.js';
import type { RgbImage } from '../../shared/handlers/image-decode.js';
import type { VideoFrame } from '../../shared/video/chunk.js';
import { findFfmpeg, type FfmpegOrigin } from './ffmpeg-binary.js';
import { FfmpegFrames, type FfmpegFramesStats } from './ffmpeg-frames.js';
import { decodeListedFrame } from './frame-list.js';
import { checkVideoSource, type CheckedSource } from './video-source.js';

export type VideoInput =
  | { kind: 'container'; bytes: Uint8Array }
  | { kind: 'frames'; frames: Uint8Array[] }
  | { kind: 'source'; source: string; seconds: number };

export interface DecodeOptions {
  sampleFps: number;
  /** Long side of the frames at most this, aspect kept, even sizes, never upscaled. */
  maxSide: number;
  maxSeconds: number;
  maxFrames: number;
  /** `video.sources`: what a source input may open (empty refuses every source). */
  allowedSources?: readonly string[];
  /** `video.ffmpegPath`; else ffmpeg on PATH, else the npm package's. */
  ffmpegPath?: string;
  /** How long a waiting reader accepts no frame from ffmpeg before the decode fails (default 10 s). */
  stallMs?: number;
  /** Decoder threads; 2 by default (one core already decodes 1080p30 many times faster than real time), leaving cores for the models. */
  threads?: number;
  signal?: AbortSignal;
}

export interface VideoDecodeStats extends Omit<FfmpegFramesStats, 'pid'> {
  /** The ffmpeg child's process id while one was started. */
  pid: number | undefined;
  ffmpeg: FfmpegOrigin | undefined;
}

export interface VideoDecode extends AsyncIterable<VideoFrame> {
  /** A source that keeps producing whether it is read or not (RTSP, /dev/video). */
  readonly live: boolean;
  /** Settles once ffmpeg has exited and temporary files are gone (at once when none was started). */
  readonly exited: Promise<void>;
  stats(): VideoDecodeStats;
  /** Stops decoding and kills ffmpeg; idempotent. Iteration then ends. */
  close(): void;
}

/** Containers ffmpeg may open from caller bytes or a clip file; anything else (HLS and concat playlists that open other files or URLs, text rendered as video) is refused. */
const containerFormats = 'mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts';
const containerInputArgs = ['-format_whitelist', containerFormats, '-protocol_whitelist', 'file'];
/** Unread frames before ffmpeg is made to wait. */
const highWaterFrames = 2;

/** INVALID_ARGUMENT when container bytes are empty or over `video.maxContainerBytes`. */
export function checkContainerBytes(bytes: Uint8Array, maxBytes: number): void {
  if (bytes.length === 0) throw new InferError('INVALID_ARGUMENT', 'video input is empty — send the bytes of a video file (MP4, MKV, WebM, AVI)');
  if (bytes.length > maxBytes) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `video input is ${bytes.length} bytes, over video.maxContainerBytes (${maxBytes}) — send a shorter or more compressed clip, or give the device a source to read`,
    );
  }
}

function positive(value: number, what: string): void {
  if (!(Number.isFinite(value) && value > 0)) throw new InferError('INVALID_ARGUMENT', `${what} must be a positive number, got ${value}`);
}

const overFrames = (maxFrames: number, fps: number) =>
  new InferError('INVALID_ARGUMENT', `video has more than video.maxFrames (${maxFrames}) frames at ${fps} sampled frames/s — send a shorter clip`);
const overSeconds = (maxSeconds: number, ms?: number) =>
  new InferError(
    'INVALID_ARGUMENT',
    `video is ${ms === undefined ? 'longer than' : `${(ms / 1000).toFixed(2)} s, over`} video.maxSeconds (${maxSeconds} s) — send a shorter clip`,
  );

/** Frames of the input, decoded as they are pulled; limits that can be checked up front throw here. */
export function decodeVideo(input: VideoInput, options: DecodeOptions): VideoDecode {
  positive(options.sampleFps, 'video sample rate (frames/s)');
  if (input.kind === 'frames') {
    if (input.frames.length === 0) throw new InferError('INVALID_ARGUMENT', 'video frame list is empty — send at least one frame');
    if (input.frames.length > options.maxFrames) throw overFrames(options.maxFrames, options.sampleFps);
    const ms = ((input.frames.length - 1) * 1000) / options.sampleFps;
    if (ms >= options.maxSeconds * 1000) throw overSeconds(options.maxSeconds, ms);
  }
  if (input.kind === 'container' && input.bytes.length === 0) checkContainerBytes(input.bytes, Infinity);
  const source = input.kind === 'source' ? checkVideoSource(input.source, options.allowedSources ?? []) : undefined;
  if (input.kind === 'source') {
    positive(input.seconds, 'video source seconds');
    const asked = `video source ${source!.shown}: ${input.seconds} s asked`;
    if (input.seconds > options.maxSeconds) {
      throw new InferError('INVALID_ARGUMENT', `${asked}, over video.maxSeconds (${options.maxSeconds} s) — ask for fewer seconds`);
    }
    if (Math.ceil(input.seconds * options.sampleFps) > options.maxFrames) {
      throw new InferError(
        'INVALID_ARGUMENT',
        `${asked} at ${options.sampleFps} frames/s is over video.maxFrames (${options.maxFrames}) — ask for fewer seconds or a lower sample rate`,
      );
    }
  }
  return new VideoDecoder(input, options, source);
}

class VideoDecoder implements VideoDecode {
  readonly live: boolean;
  readonly exited: Promise<void>;
  private markExited!: () => void;
  private ffmpeg: FfmpegFrames | undefined;
  private origin: FfmpegOrigin | undefined;
  private started: Promise<void> | undefined;
  private index = 0;
  private closed = false;
  private iterated = false;

  constructor(
    private readonly input: VideoInput,
    private readonly options: DecodeOptions,
    private readonly source: CheckedSource | undefined,
  ) {
    this.live = source?.live ?? false;
    this.exited = new Promise((resolve) => (this.markExited = resolve));
    if (input.kind === 'frames') this.markExited();
    const signal = options.signal;
    if (signal) {
      const onAbort = () => this.close();
      signal.addEventListener('abort', onAbort, { once: true });
      void this.exited.then(() => signal.removeEventListener('abort', onAbort));
      if (signal.aborted) this.close();
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<VideoFrame> {
    if (this.iterated) throw new Error('a VideoDecode is read once; decode the input again to read it again');
    this.iterated = true;
    return {
      next: async () => {
        const frame = await this.nextFrame();
        return frame ? { value: frame, done: false } : { value: undefined, done: true };
      },
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ffmpeg?.close();
    if (!this.started) this.markExited();
  }

  stats(): VideoDecodeStats {
    const ffmpeg = this.ffmpeg?.stats();
    return {
      pid: ffmpeg?.pid,
      ffmpeg: this.origin,
      framesDecoded: ffmpeg?.framesDecoded ?? this.index,
      bufferedFrames: ffmpeg?.bufferedFrames ?? 0,
      peakBufferedFrames: ffmpeg?.peakBufferedFrames ?? 0,
      width: ffmpeg?.width,
      height: ffmpeg?.height,
      durationMs: ffmpeg?.durationMs,
    };
  }

  private async nextFrame(): Promise<VideoFrame | undefined> {
    this.options.signal?.throwIfAborted();
    if (this.closed) return undefined;
    const image = this.input.kind === 'frames' ? await this.nextListed(this.input.frames) : await this.nextDecoded();
    this.options.signal?.throwIfAborted();
    if (!image || this.closed) return undefined;
    const frame = { ...image, index: this.index, timeMs: (this.index * 1000) / this.options.sampleFps };
    this.index++;
    return frame;
  }

  private nextListed(frames: Uint8Array[]): Promise<RgbImage | undefined> {
    const bytes = frames[this.index];
    return bytes ? decodeListedFrame(bytes, this.index, this.options.maxSide) : Promise.resolve(undefined);
  }

  private async nextDecoded(): Promise<RgbImage | undefined> {
    try {
      this.started ??= this.start();
      await this.started;
      if (!this.ffmpeg) return undefined;
      const image = await this.ffmpeg.next();
      if (image && this.input.kind === 'container') this.checkLength();
      if (image && this.index >= this.options.maxFrames) throw overFrames(this.options.maxFrames, this.options.sampleFps);
      return image;
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** A container over maxSeconds fails before its first frame when its header says so, else at its first frame past the limit. */
  private checkLength(): void {
    const { maxSeconds, sampleFps } = this.options;
    const durationMs = this.ffmpeg!.stats().durationMs;
    const slackMs = 1000 / sampleFps;
    if (this.index === 0 && durationMs !== undefined && durationMs > maxSeconds * 1000 + slackMs) throw overSeconds(maxSeconds, durationMs);
    if ((this.index * 1000) / sampleFps >= maxSeconds * 1000) throw overSeconds(maxSeconds);
  }

  private async start(): Promise<void> {
    let tempDir: string | undefined;
    const cleanUp = () => (tempDir ? rm(tempDir, { recursive: true, force: true }) : Promise.resolve());
    try {
      const binary = await findFfmpeg({ configuredPath: this.options.ffmpegPath });
      this.origin = binary.origin;
      let target: string;
      let inputArgs = containerInputArgs;
      if (this.input.kind === 'container') {
        // A file, not stdin: MP4s with the index at the end (most phone recordings) need a seekable input.
        tempDir = await mkdtemp(path.join(tmpdir(), 'splitinfer-video-'));
        target = path.join(tempDir, 'input');
        await writeFile(target, this.input.bytes, { mode: 0o600 });
      } else {
        target = this.source!.target;
        inputArgs = this.source!.live ? this.source!.inputArgs : [...containerInputArgs, ...this.source!.inputArgs];
      }
      if (this.closed) {
        await cleanUp();
        this.markExited();
        return;
      }
      this.ffmpeg = new FfmpegFrames({
        ffmpegPath: binary.path,
        inputArgs,
        input: target,
        shown: this.source ? `video source ${this.source.shown}` : 'video input',
        source: this.source !== undefined,
        live: this.live,
        sampleFps: this.options.sampleFps,
        maxSide: this.options.maxSide,
        seconds: this.input.kind === 'source' ? this.input.seconds : undefined,
        threads: this.options.threads ?? Math.min(2, availableParallelism()),
        stallMs: this.options.stallMs ?? 10_000,
        highWaterFrames,
      });
      void this.ffmpeg.exited.then(cleanUp).finally(this.markExited);
    } catch (err) {
      await cleanUp();
      this.markExited();
      throw err;
    }
  }
}
