/**
 * One ffmpeg child that decodes one input to sampled, scaled RGB24 frames on
 * its stdout, read one frame at a time with backpressure: once a few frames
 * wait unread, stdout is paused, the pipe fills and ffmpeg blocks, so memory
 * stays at a few frames however long the clip. The frame size is not known
 * in advance (rotation metadata, odd sample aspect ratios): ffmpeg scales
 * with an expression and the size is read from its `Output #0` stream line
 * before the first frame is cut out of the byte stream.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { InferError } from '../../shared/errors.js';
import type { RgbImage } from '../../shared/handlers/image-decode.js';
import { FfmpegLog, ffmpegFailure } from './ffmpeg-log.js';

export interface FfmpegFramesOptions {
  ffmpegPath: string;
  /** Options before `-i` (demuxer, whitelists, RTSP transport). */
  inputArgs: string[];
  /** What `-i` opens. */
  input: string;
  /** How messages name the input: `video input`, or `video source <url>` without credentials. */
  shown: string;
  /** A source the device opened itself: failing to open it is UNAVAILABLE, not a bad input. */
  source: boolean;
  /** A camera stream: decoder errors on joining it mid-stream are no damage. */
  live: boolean;
  sampleFps: number;
  maxSide: number;
  /** Output duration (`-t`), for sources. */
  seconds?: number;
  threads: number;
  /** How long a waiting reader accepts no frame and no exit before the decode fails. */
  stallMs: number;
  /** Decoded frames that may wait unread before stdout is paused. */
  highWaterFrames: number;
}

export interface FfmpegFramesStats {
  pid: number | undefined;
  framesDecoded: number;
  bufferedFrames: number;
  peakBufferedFrames: number;
  width: number | undefined;
  height: number | undefined;
  /** The input's duration from its header, when it has one. */
  durationMs: number | undefined;
}

/** Long side ≤ maxSide, aspect kept (sample aspect ratio applied), even sizes (never below 2), never upscaled. */
function scaleFilter(maxSide: number): string {
  const factor = `min(1,${maxSide}/max(iw*sar,ih))`;
  return `scale=w='max(2,trunc(iw*sar*${factor}/2)*2)':h='max(2,trunc(ih*${factor}/2)*2)',setsar=1`;
}

export class FfmpegFrames {
  readonly exited: Promise<void>;
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  private readonly log: FfmpegLog;
  private frameBytes = 0;
  private current: Uint8Array | undefined;
  private filled = 0;
  private early: Buffer[] = [];
  private readonly ready: Uint8Array[] = [];
  private waiter: { resolve: (frame: RgbImage | undefined) => void; reject: (err: InferError) => void } | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private failure: InferError | undefined;
  private finished = false;
  private closed = false;
  private framesDecoded = 0;
  private peakBufferedFrames = 0;

  constructor(private readonly options: FfmpegFramesOptions) {
    this.log = new FfmpegLog(options.input, () => this.sizeKnown());
    const args = [
      '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+info',
      '-threads', String(options.threads),
      ...options.inputArgs, '-i', options.input,
      '-map', '0:v:0', '-an', '-sn', '-dn',
      '-vf', `fps=${options.sampleFps},${scaleFilter(options.maxSide)}`,
      ...(options.seconds === undefined ? [] : ['-t', String(options.seconds)]),
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
    ];
    this.child = spawn(options.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (chunk: Buffer) => this.take(chunk));
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => this.log.push(text));
    this.child.on('error', (err) => {
      this.failure ??= new InferError('FAILED_PRECONDITION', `cannot run ffmpeg at ${options.ffmpegPath}: ${err.message} — check video.ffmpegPath`, { cause: err });
    });
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => {
      this.log.end();
      this.finish(code, signal);
      resolve();
    }));
  }

  /** The next frame, undefined once the input is done, or the decode's error (after the frames decoded before it). */
  next(): Promise<RgbImage | undefined> {
    const frame = this.ready.shift();
    if (frame) {
      if (this.ready.length < this.options.highWaterFrames && this.frameBytes > 0 && !this.closed) this.child.stdout.resume();
      return Promise.resolve(this.image(frame));
    }
    if (this.failure && (this.finished || this.closed)) return Promise.reject(this.failure);
    if (this.finished || this.closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.stallTimer = setTimeout(() => this.stalled(), this.options.stallMs);
    });
  }

  /** Kills ffmpeg (no output worth waiting for) and ends the frames; idempotent. */
  close(failure?: InferError): void {
    if (this.closed) return;
    this.closed = true;
    if (failure) this.failure ??= failure;
    this.ready.length = 0;
    // A paused stdout with data in the pipe would hold back the child's 'close'.
    this.child.stdout.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    this.settle();
  }

  stats(): FfmpegFramesStats {
    return {
      pid: this.child.pid,
      framesDecoded: this.framesDecoded,
      bufferedFrames: this.ready.length,
      peakBufferedFrames: this.peakBufferedFrames,
      width: this.log.outputSize?.width,
      height: this.log.outputSize?.height,
      durationMs: this.log.durationMs,
    };
  }

  private image(data: Uint8Array): RgbImage {
    return { data, width: this.log.outputSize!.width, height: this.log.outputSize!.height };
  }

  private sizeKnown(): void {
    const { width, height } = this.log.outputSize!;
    this.frameBytes = width * height * 3;
    const early = this.early;
    this.early = [];
    for (const chunk of early) this.take(chunk);
    if (this.ready.length < this.options.highWaterFrames && !this.closed) this.child.stdout.resume();
  }

  private take(chunk: Buffer): void {
    if (this.frameBytes === 0) {
      // Frame bytes may be read before the stderr line that sizes them: hold them until it comes.
      this.early.push(chunk);
      this.child.stdout.pause();
      return;
    }
    let offset = 0;
    while (offset < chunk.length) {
      this.current ??= new Uint8Array(this.frameBytes);
      const count = Math.min(chunk.length - offset, this.frameBytes - this.filled);
      this.current.set(chunk.subarray(offset, offset + count), this.filled);
      this.filled += count;
      offset += count;
      if (this.filled === this.frameBytes) this.completeFrame();
    }
  }

  private completeFrame(): void {
    const frame = this.current!;
    this.current = undefined;
    this.filled = 0;
    this.framesDecoded++;
    const waiter = this.waiter;
    if (waiter) {
      this.clearWaiter();
      waiter.resolve(this.image(frame));
      return;
    }
    this.ready.push(frame);
    this.peakBufferedFrames = Math.max(this.peakBufferedFrames, this.ready.length);
    if (this.ready.length >= this.options.highWaterFrames) this.child.stdout.pause();
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): void {
    this.finished = true;
    if (!this.closed) {
      const context = { source: this.options.source, shown: this.options.shown, framesDecoded: this.framesDecoded };
      if (code !== 0) this.failure ??= ffmpegFailure(this.log, context);
      else if (this.filled > 0) this.failure ??= new InferError('INTERNAL', `ffmpeg ended ${this.options.shown} inside a frame (${this.filled} of ${this.frameBytes} bytes)`);
      else if (this.framesDecoded === 0 || (!this.options.live && this.log.damage !== undefined)) this.failure ??= ffmpegFailure(this.log, context);
      if (signal && !this.failure) this.failure = new InferError('INTERNAL', `ffmpeg was killed by ${signal} while decoding ${this.options.shown}`);
    }
    this.settle();
  }

  /** Answers a waiting reader once nothing more will come. */
  private settle(): void {
    const waiter = this.waiter;
    if (!waiter || (!this.finished && !this.closed)) return;
    this.clearWaiter();
    if (this.failure) waiter.reject(this.failure);
    else waiter.resolve(undefined);
  }

  private stalled(): void {
    const seconds = this.options.stallMs / 1000;
    this.close(new InferError('UNAVAILABLE', `${this.options.shown}: ffmpeg gave no frame for ${seconds} s (last said: ${this.log.explanation()}) — the source may be stalled; try again`));
  }

  private clearWaiter(): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.waiter = undefined;
  }
}
