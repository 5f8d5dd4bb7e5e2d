/**
 * What ffmpeg says on stderr, read as it streams (`-loglevel level+info`
 * prefixes every line with its level): the input's duration, the output
 * frame size (the stream line of `Output #0`, after ffmpeg applied the
 * scale expression, rotation metadata and all), the first sign of damaged
 * input, and the last few KB for error messages. It never holds more.
 */
import { InferError } from '../../shared/errors.js';

const tailBytes = 4096;

/** `[h264 @ 0x55d…] [error] Invalid NAL unit size` or `[info]   Duration: …`. */
const linePattern = /^(?:\[([\w,]+) @ 0x[0-9a-f]+\] )?\[(\w+)\] ?(.*)$/;
const durationPattern = /^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)/;
const outputStreamPattern = /^\s*Stream #0:\d+.*: Video: rawvideo\b.*?, (\d+)x(\d+)\b/;
/** Warnings that mean the input is damaged, which ffmpeg 4.1 decodes past and still exits 0 on. */
const damageWarning = /corrupt|partial file|truncat/i;

export class FfmpegLog {
  durationMs: number | undefined;
  outputSize: { width: number; height: number } | undefined;
  /** The first error-level line, or damage warning, once decoding started. */
  damage: string | undefined;
  private inOutputHeader = false;
  private partial = '';
  private tail: string[] = [];
  private tailLength = 0;

  /** @param inputName the input as ffmpeg names it in lines, shown as `input` in messages (a temp file path means nothing to a caller; a camera URL may hold a password). */
  constructor(
    private readonly inputName: string,
    private readonly onOutputSize: () => void,
  ) {}

  push(text: string): void {
    const lines = (this.partial + text).split(/\r?\n|\r/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.read(line);
  }

  end(): void {
    if (this.partial) this.read(this.partial);
    this.partial = '';
  }

  private read(raw: string): void {
    const match = linePattern.exec(raw);
    if (!match) return;
    const [, component, level, text = ''] = match;
    const message = (component ? `${component.split(',')[0]}: ` : '') + text.trim().split(this.inputName).join('input');
    if (level === 'info') {
      this.readInfo(text);
      return;
    }
    this.remember(message);
    const decoding = this.outputSize !== undefined;
    if (decoding && this.damage === undefined && (level === 'error' || level === 'fatal' || damageWarning.test(text))) this.damage = message;
  }

  private readInfo(text: string): void {
    const duration = durationPattern.exec(text);
    if (duration) this.durationMs = ((Number(duration[1]) * 60 + Number(duration[2])) * 60 + Number(duration[3])) * 1000;
    if (text.startsWith('Output #0')) this.inOutputHeader = true;
    const stream = this.inOutputHeader && this.outputSize === undefined ? outputStreamPattern.exec(text) : null;
    if (stream) {
      this.outputSize = { width: Number(stream[1]), height: Number(stream[2]) };
      this.onOutputSize();
    }
  }

  private remember(message: string): void {
    this.tail.push(message);
    this.tailLength += message.length;
    while (this.tailLength > tailBytes && this.tail.length > 1) this.tailLength -= this.tail.shift()!.length;
  }

  /** The line that best says what went wrong: one a known pattern names, else the last warning or error. */
  explanation(): string {
    const known = this.tail.find((line) => [unreachable, unknownCodec, notMedia].some((pattern) => pattern.test(line)));
    return known ?? this.tail.filter((line) => !/^Conversion failed/.test(line)).at(-1) ?? 'no error message';
  }

  unreachable(): boolean {
    return this.tail.some((line) => unreachable.test(line));
  }

  unknownCodec(): boolean {
    return this.tail.some((line) => unknownCodec.test(line));
  }
}

const unreachable =
  /Connection refused|timed out|No route to host|Network is unreachable|Name or service not known|name resolution|Server returned [45]\d\d|No such file or directory|Cannot open video device|Input\/output error|Permission denied|Unauthorized|Device or resource busy/i;
const unknownCodec = /Decoder \(codec [^)]*\) not found|Unknown decoder|unsupported codec|codec not currently supported|Codec .* is not supported|no decoder/i;
const notMedia = /Invalid data found|moov atom not found|codec parameters|does not contain any stream|not on whitelist|EBML header parsing failed|Failed to read/i;

export interface FailureContext {
  /** A source the device opened itself, rather than bytes the caller sent. */
  source: boolean;
  /** `video input`, or `video source <url>` without credentials. */
  shown: string;
  framesDecoded: number;
}

/** The error a failed or damaged decode reports, from what ffmpeg said. */
export function ffmpegFailure(log: FfmpegLog, context: FailureContext): InferError {
  const said = log.damage ?? log.explanation();
  if (context.source && log.unreachable()) {
    return new InferError('UNAVAILABLE', `${context.shown} is unreachable (ffmpeg: ${said}) — check that the camera, device or file is up and reachable from the agent`);
  }
  if (log.unknownCodec()) {
    return new InferError('INVALID_ARGUMENT', `${context.shown} uses a codec this ffmpeg cannot decode (ffmpeg: ${said}) — send H.264, VP8/VP9 or MJPEG video`);
  }
  if (context.framesDecoded > 0 || log.damage !== undefined) {
    return new InferError(
      'INVALID_ARGUMENT',
      `${context.shown} is truncated or damaged: ffmpeg decoded ${context.framesDecoded} sampled frames, then said: ${said} — send the complete file`,
    );
  }
  return new InferError(
    'INVALID_ARGUMENT',
    `${context.shown} is not a container ffmpeg can read (ffmpeg: ${said}) — send MP4/H.264, MKV, WebM or AVI/MJPEG container bytes`,
  );
}
