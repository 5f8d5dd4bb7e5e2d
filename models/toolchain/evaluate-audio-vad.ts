/**
 * audio-vad: speech clips carry no frame labels, so the candidate is scored
 * by agreement with the reference: the share of 32 ms frames on which both
 * make the same speech / non-speech decision (probability ≥ the handler's
 * threshold), over every WAV in a folder (default: models/samples/audio/).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_SEGMENT_OPTIONS } from '../../shared/handlers/audio-vad.js';
import type { LoadedModel } from '../../shared/loaded-model.js';
import { packageRoot } from '../../shared/paths.js';
import { registerEvaluator, requireData, type Evaluation, type GroupQuality } from './evaluator.js';
import { ModelToolError } from './onnx-model.js';

const dataDescription = 'a folder of 16 kHz mono WAV files (like models/samples/audio/)';

/** Frames on which two probability tracks of one clip make the same speech decision. */
export function agreeingFrames(reference: ArrayLike<number>, candidate: ArrayLike<number>, threshold = DEFAULT_SEGMENT_OPTIONS.threshold): number {
  if (reference.length !== candidate.length) throw new Error(`frame agreement: ${reference.length} reference frames vs ${candidate.length} candidate frames`);
  let agreeing = 0;
  for (let i = 0; i < reference.length; i++) if (reference[i]! >= threshold === candidate[i]! >= threshold) agreeing++;
  return agreeing;
}

async function probabilities(model: LoadedModel, wav: Uint8Array): Promise<Float32Array> {
  return (await model.run(wav)).tensors.probabilities!.data as Float32Array;
}

async function frameAgreement(reference: LoadedModel, candidate: LoadedModel, wavs: ReadonlyMap<string, Uint8Array>): Promise<Evaluation> {
  const groups: Record<string, GroupQuality> = {};
  let frames = 0;
  let agreeing = 0;
  for (const [name, wav] of wavs) {
    const [a, b] = await Promise.all([probabilities(reference, wav), probabilities(candidate, wav)]);
    const same = agreeingFrames(a, b);
    groups[name] = { reference: 1, candidate: same / a.length, samples: a.length };
    frames += a.length;
    agreeing += same;
  }
  return {
    metric: `frame agreement with the reference (speech decision at p ≥ ${DEFAULT_SEGMENT_OPTIONS.threshold})`,
    basis: 'reference',
    reference: 1,
    candidate: agreeing / frames,
    samples: frames,
    sampleUnit: 'frames',
    groups,
  };
}

registerEvaluator({
  handlerId: 'audio-vad',
  defaultDataPath: path.join(packageRoot, 'models', 'samples', 'audio'),
  dataDescription,
  load(dataPath) {
    requireData(dataPath, 'folder', dataDescription);
    const names = readdirSync(dataPath).filter((f) => f.toLowerCase().endsWith('.wav')).sort();
    if (names.length === 0) throw new ModelToolError(`eval: ${dataPath} holds no .wav files — expected ${dataDescription}`);
    const wavs = new Map(names.map((name) => [name, new Uint8Array(readFileSync(path.join(dataPath, name)))]));
    return { size: wavs.size, evaluate: (reference, candidate) => frameAgreement(reference, candidate, wavs) };
  },
});
