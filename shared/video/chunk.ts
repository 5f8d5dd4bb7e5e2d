/**
 * The shapes video work is made of, the same on the edge and in the cloud:
 * sampled frames as decoded, what an image encoder makes of each frame, the
 * answer to one chunk of frames and the summary of a whole clip. A chunk is
 * answered by whichever site placement picks; both compute the answer with
 * the same code (chunk-answer.ts) so the summary can merge them.
 */
import type { RgbImage } from '../handlers/image-decode.js';

/** One sampled frame: upright RGB at the decode size, and where it sits in the media. */
export interface VideoFrame extends RgbImage {
  /** Index among the sampled frames of the clip, from 0. */
  index: number;
  /** Presentation time in the media, from its start. */
  timeMs: number;
}

/** What an image encoder made of one frame. */
export interface FrameEncoding {
  /** L2-normalised; comparable only with embeddings of the same graph. */
  embedding: Float32Array;
  /** Class probabilities in ENCODER_LABELS order. */
  probabilities: Float32Array;
}

export interface LabelScore {
  label: string;
  score: number;
}

/** The answer to one chunk of a sequence (one MQTT progressive message on the edge). */
export interface ChunkAnswer {
  /** Index of the chunk in its sequence, from 0. */
  chunk: number;
  /** Time of its first frame, and of the last frame of media it covers (the edge counts the frames its filter dropped). */
  startMs: number;
  endMs: number;
  frames: number;
  /** The graph that encoded it (`inception-v3`, `mobilenet-v2-int8`). */
  model: string;
  /** Mean of the frames' class probabilities, most likely first. */
  labels: LabelScore[];
  /** Each frame's top label: the label timeline. */
  frameLabels: (LabelScore & { timeMs: number })[];
  /** Mean of the frames' embeddings, L2-normalised. */
  embedding: number[];
  /** Times of the frames that start a new shot (embedding change against the frame before, this chunk's or the previous chunk's of the same graph). */
  boundaries: number[];
}

/** The whole clip, pooled from its chunk answers. */
export interface ClipSummary {
  chunks: number;
  frames: number;
  startMs: number;
  endMs: number;
  /** Running mean of chunk embeddings weighted by frames, one per graph that answered (spaces of different graphs do not mix). */
  embeddings: { model: string; embedding: number[]; frames: number }[];
  /** Runs of the same top label, in time order: from the run's first frame to the next run's first frame (the last run: to the summary's endMs). */
  segments: { label: string; startMs: number; endMs: number }[];
  boundaries: number[];
  /** Present when the summary hit its caps (clip-summary.ts): how many segments and boundaries past the first ones kept were counted but dropped. */
  truncated?: { segments: number; boundaries: number };
}
