/**
 * Silero VAD v5: speech segments in an audio clip. The model is run frame by
 * frame (512 new samples = 32 ms at 16 kHz, preceded by the previous frame's
 * last 64 samples, with the recurrent state carried over), as silero-vad's
 * OnnxWrapper does; probabilities become segments as its get_speech_timestamps does.
 */
import { InferError } from '../errors.js';
import type { OrtSession } from '../ort/session.js';
import { elementCount, float32, type Tensor } from '../tensor.js';
import { registerHandler, type ModelHandler } from './handler.js';
import { AUDIO_SAMPLE_RATE, audioSeconds, decodeAudio, encodeWavPcm16, type DecodedAudio } from './wav.js';

const GRAPH = 'silero-vad';
const FRAME_SAMPLES = 512;
const CONTEXT_SAMPLES = 64;
const STATE_DIMS = [2, 1, 128];
const FRAME_MS = (FRAME_SAMPLES / AUDIO_SAMPLE_RATE) * 1000;

export interface SegmentOptions {
  threshold: number;
  negThreshold: number;
  minSpeechMs: number;
  minSilenceMs: number;
  speechPadMs: number;
}

/** silero-vad's get_speech_timestamps defaults (its neg_threshold defaults to threshold - 0.15). */
export const DEFAULT_SEGMENT_OPTIONS: SegmentOptions = {
  threshold: 0.5,
  negThreshold: 0.35,
  minSpeechMs: 250,
  minSilenceMs: 100,
  speechPadMs: 30,
};

export interface SampleRange {
  startSample: number;
  endSample: number;
}

/**
 * Speech probability of every 32 ms frame; the last frame is zero-padded, as
 * silero does. Each frame's input is known up front (its 512 samples after
 * the previous frame's last 64), so the whole clip goes to the session as one
 * sequence, the recurrent state carried from frame to frame on its worker.
 */
export async function speechProbabilities(session: OrtSession, samples: Float32Array): Promise<{ probabilities: Float32Array; computeUs: number }> {
  const frameCount = Math.ceil(samples.length / FRAME_SAMPLES);
  const sr: Tensor = { type: 'int64', dims: [], data: BigInt64Array.of(BigInt(AUDIO_SAMPLE_RATE)) };
  const steps: Record<string, Tensor>[] = [];
  let context: Float32Array = new Float32Array(CONTEXT_SAMPLES);
  for (let i = 0; i < frameCount; i++) {
    const input = new Float32Array(CONTEXT_SAMPLES + FRAME_SAMPLES);
    input.set(context);
    input.set(samples.subarray(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES), CONTEXT_SAMPLES);
    steps.push({ input: float32([1, input.length], input), sr });
    context = input.subarray(input.length - CONTEXT_SAMPLES);
  }
  if (steps.length > 0) steps[0]!.state = float32(STATE_DIMS, new Float32Array(elementCount(STATE_DIMS)));
  const { outputs, computeUs } = await session.runSequence(steps, { carry: { stateN: 'state' }, keep: ['output'] });
  const probabilities = Float32Array.from(outputs, (step) => (step.output!.data as Float32Array)[0]!);
  return { probabilities, computeUs };
}

/**
 * get_speech_timestamps from silero-vad (src/silero_vad/utils_vad.py) with
 * max_speech_duration_s = inf, which leaves its max-length splitting out:
 * speech starts at a frame >= threshold, ends where probability first fell
 * below negThreshold once it stays there for minSilenceMs, segments not
 * longer than minSpeechMs are dropped, then each side is padded by speechPadMs
 * (splitting the gap in half where two segments are closer than twice the pad).
 */
export function speechSegments(probabilities: ArrayLike<number>, totalSamples: number, options: SegmentOptions = DEFAULT_SEGMENT_OPTIONS): SampleRange[] {
  const perMs = AUDIO_SAMPLE_RATE / 1000;
  const minSpeech = options.minSpeechMs * perMs;
  const minSilence = options.minSilenceMs * perMs;
  const pad = options.speechPadMs * perMs;
  const speeches: SampleRange[] = [];
  let triggered = false;
  let start = 0;
  let tempEnd = 0;
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i]!;
    const at = FRAME_SAMPLES * i;
    if (p >= options.threshold && tempEnd) tempEnd = 0;
    if (p >= options.threshold && !triggered) {
      triggered = true;
      start = at;
      continue;
    }
    if (p < options.negThreshold && triggered) {
      if (!tempEnd) tempEnd = at;
      if (at - tempEnd < minSilence) continue;
      if (tempEnd - start > minSpeech) speeches.push({ startSample: start, endSample: tempEnd });
      triggered = false;
      tempEnd = 0;
    }
  }
  if (triggered && totalSamples - start > minSpeech) speeches.push({ startSample: start, endSample: totalSamples });

  for (let i = 0; i < speeches.length; i++) {
    const speech = speeches[i]!;
    if (i === 0) speech.startSample = Math.max(0, speech.startSample - pad);
    const next = speeches[i + 1];
    if (!next) {
      speech.endSample = Math.min(totalSamples, speech.endSample + pad);
      continue;
    }
    const silence = next.startSample - speech.endSample;
    const shift = silence < 2 * pad ? Math.floor(silence / 2) : pad;
    speech.endSample = Math.min(totalSamples, speech.endSample + shift);
    next.startSample = Math.max(0, next.startSample - shift);
  }
  return speeches;
}

export interface VadResult {
  durationMs: number;
  sampleRate: number;
  segments: { startMs: number; endMs: number }[];
  speechMs: number;
  frames: { count: number; frameMs: number; meanProbability: number; maxProbability: number; speechFrames: number };
  /** The input as sent, before resampling to 16 kHz mono. */
  input: DecodedAudio['source'];
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const samplesToMs = (samples: number) => (samples * 1000) / AUDIO_SAMPLE_RATE;

export const audioVadHandler: ModelHandler<VadResult> = {
  id: 'audio-vad',
  modality: 'audio',
  outputs: [
    { name: 'segments', type: 'float32', shape: [-1, 2] },
    { name: 'probabilities', type: 'float32', shape: [-1] },
  ],

  checkInput(value, label) {
    if (!(value instanceof Uint8Array)) {
      throw new InferError('INVALID_ARGUMENT', `${label} must be binary WAV or 16 kHz PCM16 bytes, got ${typeof value} — in JSON send it base64-encoded`);
    }
    if (value.length === 0) throw new InferError('INVALID_ARGUMENT', `${label} is empty — send WAV file bytes or 16 kHz mono PCM16`);
    return value;
  },

  // The model runs once per 32 ms frame, so its cost follows the duration, whatever the sample rate or channels.
  sizeUnit: 'audio-seconds',
  measureInput(input) {
    let seconds: number;
    try {
      seconds = audioSeconds(input);
    } catch {
      seconds = Number.NaN; // an unreadable header: run() refuses the input and says why
    }
    return { amount: seconds, bytes: input.length };
  },

  /** How far the highest speech probability is from the undecided 0.5, in [0, 1]: clear speech and clear silence are both confident. */
  confidence: (result) => Math.abs(result.frames.maxProbability - 0.5) * 2,

  async run(input, ctx) {
    const audio = decodeAudio(input);
    const { probabilities, computeUs } = await speechProbabilities(ctx.session(GRAPH), audio.samples);
    const ranges = speechSegments(probabilities, audio.samples.length);
    const segments = ranges.map((r) => ({ startMs: samplesToMs(r.startSample), endMs: samplesToMs(r.endSample) }));
    const segmentData = new Float32Array(segments.flatMap((s) => [s.startMs, s.endMs]));
    let sum = 0;
    let max = 0;
    let speechFrames = 0;
    for (const p of probabilities) {
      sum += p;
      max = Math.max(max, p);
      if (p >= DEFAULT_SEGMENT_OPTIONS.threshold) speechFrames++;
    }
    return {
      result: {
        durationMs: samplesToMs(audio.samples.length),
        sampleRate: AUDIO_SAMPLE_RATE,
        segments,
        speechMs: segments.reduce((ms, s) => ms + s.endMs - s.startMs, 0),
        frames: {
          count: probabilities.length,
          frameMs: FRAME_MS,
          meanProbability: round4(sum / probabilities.length),
          maxProbability: round4(max),
          speechFrames,
        },
        input: audio.source,
      },
      tensors: {
        segments: float32([segments.length, 2], segmentData),
        probabilities: float32([probabilities.length], probabilities),
      },
      computeUs,
    };
  },

  async warmupInput() {
    return encodeWavPcm16(new Float32Array(AUDIO_SAMPLE_RATE / 10));
  },
};

registerHandler(audioVadHandler);
