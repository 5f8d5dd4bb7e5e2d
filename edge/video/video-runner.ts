/**
 * A video task from input to final answer: ffmpeg decodes it as a stream
 * (decode.ts), the frame filter drops what barely changed, and the sampled
 * frames fall into chunks of `video.chunkFrames` sampled frames (4 s of media
 * at 4 fps by default) holding the frames that were kept. Each chunk is a
 * task of its own: the task runner places it (light encoder on the edge, or
 * the heavy one in the cloud on the video's sequence) like any image. Chunk
 * answers go out in order as they are known and pool into the clip summary.
 *
 * Memory stays flat however long the stream: at most `video.chunksInFlight`
 * chunks are placed and unanswered; a file or container then waits (ffmpeg
 * blocks on its pipe), while a live source cannot wait, so a chunk finished
 * with no room is skipped and reported.
 */
import { randomUUID } from 'node:crypto';
import { InferError, toInferError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { ChunkAnswer, VideoFrame } from '../../shared/video/chunk.js';
import { ClipSummaryBuilder } from '../../shared/video/clip-summary.js';
import type { InputSize } from '../policy/input-size.js';
import type { Placement, TaskTimings } from '../request.js';
import type { TaskRunner } from '../task-runner.js';
import type { ChunkWork, Task, TaskOutcome } from '../tasks.js';
import { ChunkSequence, InOrder } from './chunk-sequence.js';
import { decodeVideo } from './decode.js';
import { FrameFilter } from './frame-filter.js';
import { Stopwatch } from './stopwatch.js';
import type { VideoConfig } from './video-config.js';
import { videoInput } from './video-input.js';

/** A chunk as it is reported: its answer or why it has none. */
export interface ChunkOutcome {
  chunk: number;
  /** From the chunk's last frame decoded to this outcome handed on (placement, the site, and waiting for the chunks before). */
  latencyMs?: number;
  placement?: Placement;
  timings?: TaskTimings;
  result?: ChunkAnswer;
  error?: InferError;
}

export type ChunkListener = (outcome: ChunkOutcome) => void;

export interface VideoCounts {
  sessions: number;
  active: number;
  chunks: number;
  chunksSkipped: number;
  framesDecoded: number;
  framesKept: number;
  framesDropped: number;
  uplinkBytes: number;
  /** Most chunks of one video placed and unanswered at once (at most video.chunksInFlight). */
  peakChunksInFlight: number;
  /** Most decoded frames waiting to be read (the decoder's bound). */
  peakBufferedFrames: number;
  /**
   * Milliseconds the agent spent in its own code for video (measured for
   * bench:video): per frame the bookkeeping and the frame filter; per chunk
   * its dispatch, the task runner's placement decision and recording
   * (`TaskOutcome.runnerMs`), in-order emission with the clip summary and the
   * chunk listener. Not decode, the models or their pre-processing, JPEG
   * shaping, the link, nor time spent waiting.
   */
  orchestrationMs: number;
}

/** What the final answer says about the whole video besides the clip summary. */
interface VideoTotals {
  framesDecoded: number;
  framesKept: number;
  framesDropped: number;
  framesSent: number;
  /** Chunks by where they were answered (`failed`: nowhere; `skipped`: never placed, a live source outran them). */
  placed: { edge: number; cloud: number; failed: number; skipped: number };
  /** Chunks answered in the cloud, by the shaping their frames were sent with: how far the policy shrank them for the link. */
  shaping: Record<string, number>;
  uplinkBytes: number;
}

export class VideoRunner {
  readonly counts: VideoCounts = { sessions: 0, active: 0, chunks: 0, chunksSkipped: 0, framesDecoded: 0, framesKept: 0, framesDropped: 0, uplinkBytes: 0, peakChunksInFlight: 0, peakBufferedFrames: 0, orchestrationMs: 0 };

  constructor(
    private readonly config: VideoConfig,
    private readonly runner: TaskRunner,
    private readonly log: Logger,
  ) {}

  /** Runs a video task (the template its chunks copy); `onChunk` hears each chunk in order. Never throws. */
  async run(task: Task, onChunk?: ChunkListener): Promise<TaskOutcome> {
    if (this.counts.active >= this.config.maxSessions) {
      const message = `the agent is already decoding ${this.config.maxSessions} videos (video.maxSessions) — retry later`;
      return { modality: 'video', error: new InferError('RESOURCE_EXHAUSTED', message) };
    }
    this.counts.active++;
    this.counts.sessions++;
    try {
      return await this.stream(task, onChunk);
    } catch (err) {
      return { modality: 'video', error: toInferError(err) };
    } finally {
      this.counts.active--;
    }
  }

  private async stream(task: Task, onChunk: ChunkListener | undefined): Promise<TaskOutcome> {
    const { config } = this;
    const ownTime = new Stopwatch();
    const decode = decodeVideo(videoInput(task.video, config), {
      sampleFps: config.sampleFps,
      maxSide: config.decodeMaxSide,
      maxSeconds: config.maxSeconds,
      maxFrames: config.maxFrames,
      allowedSources: config.sources,
      ffmpegPath: config.ffmpegPath || undefined,
    });
    const filter = new FrameFilter(config.filterThreshold);
    const summary = new ClipSummaryBuilder();
    const totals: VideoTotals = { framesDecoded: 0, framesKept: 0, framesDropped: 0, framesSent: 0, placed: { edge: 0, cloud: 0, failed: 0, skipped: 0 }, shaping: {}, uplinkBytes: 0 };
    const sequence = new ChunkSequence(randomUUID(), config.chunksInFlight);
    let firstError: InferError | undefined;
    const readyAt = new Map<number, number>();
    const emit = new InOrder<ChunkOutcome>((outcome) => {
      const ready = readyAt.get(outcome.chunk);
      readyAt.delete(outcome.chunk);
      if (ready !== undefined) outcome.latencyMs = Math.round((performance.now() - ready) * 10) / 10;
      if (outcome.result) summary.add(outcome.result);
      firstError ??= outcome.error;
      onChunk?.(outcome);
    });
    let frames: VideoFrame[] = [];
    /** Per kept frame, the sampled frames it stands for (itself and the ones dropped after it). */
    let weights: number[] = [];
    let window = 0;
    let chunkCount = 0;
    /** Time of the last frame decoded: when a chunk is dispatched, the last of the media it covers. */
    let lastDecodedMs = 0;
    const dispatch = async (end: boolean) => {
      const coveredToMs = lastDecodedMs;
      const chunkFrames = frames;
      const chunkWeights = weights;
      frames = [];
      weights = [];
      if (chunkFrames.length === 0) return;
      const index = chunkCount++;
      readyAt.set(index, performance.now());
      this.counts.chunks++;
      ownTime.stop();
      const hasRoom = await sequence.room(decode.live);
      ownTime.start();
      if (!hasRoom) {
        totals.placed.skipped++;
        this.counts.chunksSkipped++;
        const error = new InferError('RESOURCE_EXHAUSTED', `chunk ${index} skipped: ${config.chunksInFlight} chunks were still unanswered (video.chunksInFlight) — the device and the link could not keep up with the live source`);
        sequence.skip(index);
        emit.put(index, { chunk: index, error });
        return;
      }
      totals.framesSent += chunkFrames.length;
      const work = sequence.work(index, chunkFrames, chunkWeights, end);
      void this.runChunk(task, work, totals, ownTime).then((outcome) =>
        ownTime.time(() => {
          // Frames the filter dropped are still media the answer covers.
          if (outcome.result) outcome.result.endMs = Math.max(outcome.result.endMs, coveredToMs);
          sequence.settled(index, work, { answeredBy: outcome.result === undefined ? undefined : (outcome.placement?.ran ?? undefined) });
          emit.put(index, outcome);
        }),
      );
      ownTime.start();
    };
    let decodeError: InferError | undefined;
    try {
      for await (const frame of decode) {
        ownTime.start();
        totals.framesDecoded++;
        this.counts.framesDecoded++;
        const frameWindow = Math.floor(frame.index / config.chunkFrames);
        if (frameWindow !== window) {
          await dispatch(false);
          // Other chunks' answers may have been emitted (and timed) while this awaited.
          ownTime.start();
          window = frameWindow;
        }
        // The first frame of every chunk is kept, so each chunk has an answer however still the scene.
        if (filter.keep(frame, frames.length === 0)) {
          frames.push(frame);
          weights.push(1);
        } else {
          weights[weights.length - 1]!++;
        }
        lastDecodedMs = frame.timeMs;
        ownTime.stop();
      }
    } catch (err) {
      decodeError = toInferError(err);
    } finally {
      ownTime.stop();
      decode.close();
      this.counts.peakBufferedFrames = Math.max(this.counts.peakBufferedFrames, decode.stats().peakBufferedFrames);
    }
    totals.framesKept = filter.kept;
    totals.framesDropped = filter.dropped;
    this.counts.framesKept += filter.kept;
    this.counts.framesDropped += filter.dropped;
    if (!decodeError) {
      ownTime.start();
      await dispatch(true);
      ownTime.stop();
    }
    await sequence.drained();
    this.counts.peakChunksInFlight = Math.max(this.counts.peakChunksInFlight, sequence.peakInFlight);
    this.counts.orchestrationMs += ownTime.totalMs;
    await emit.drained(chunkCount);
    const answered = totals.placed.edge + totals.placed.cloud;
    this.log.info({ task: task.id, ...totals, answered, err: decodeError?.message }, 'video done');
    if (decodeError) {
      const message = `${decodeError.message} (after ${totals.framesDecoded} frames; ${answered} chunks were answered and published)`;
      return { modality: 'video', error: new InferError(decodeError.code, message, { cause: decodeError }) };
    }
    if (totals.framesDecoded === 0) return { modality: 'video', error: new InferError('INVALID_ARGUMENT', 'the video has no frames to sample') };
    if (answered === 0 && firstError) {
      return { modality: 'video', error: new InferError(firstError.code, `no chunk of the video was answered (${chunkCount} tried): ${firstError.message}`, { cause: firstError }) };
    }
    return { modality: 'video', result: { ...summary.summary(), ...totals } };
  }

  /** Called with `ownTime` running; the task runner's own share comes back as `runnerMs`. */
  private async runChunk(task: Task, work: ChunkWork, totals: VideoTotals, ownTime: Stopwatch): Promise<ChunkOutcome> {
    const chunkTask: Task = { ...task, id: `${task.id}/${work.index}`, chunk: work, video: undefined, deadlineAt: performance.now() + task.deadlineMs };
    const sizes = frameSizes(work.frames);
    ownTime.stop();
    const outcome = await this.runner.run(chunkTask, sizes);
    ownTime.totalMs += outcome.runnerMs ?? 0;
    ownTime.start();
    totals.uplinkBytes += work.sentBytes;
    this.counts.uplinkBytes += work.sentBytes;
    const ran = outcome.placement?.ran;
    if (outcome.error) totals.placed.failed++;
    else if (ran) totals.placed[ran]++;
    if (!outcome.error && ran === 'cloud' && work.shaping) totals.shaping[work.shaping] = (totals.shaping[work.shaping] ?? 0) + 1;
    ownTime.stop();
    return { chunk: work.index, placement: outcome.placement, timings: outcome.timings, result: outcome.result as ChunkAnswer | undefined, error: outcome.error };
  }
}

/** The decoded frames' sizes, which is what placement weighs (raw RGB bytes: shaping always shrinks them). */
function frameSizes(frames: readonly VideoFrame[]): InputSize {
  return { unit: 'pixels', items: frames.map((f) => ({ amount: f.width * f.height, bytes: f.width * f.height * 3, width: f.width, height: f.height })) };
}
