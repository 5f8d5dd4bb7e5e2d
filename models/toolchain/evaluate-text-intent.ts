/** text-intent: intent accuracy of both variants on labelled sentences (default: the held-out split). */
import type { LoadedModel } from '../../shared/loaded-model.js';
import { heldOutSentencesPath, readSentences, type Sentence } from '../text-intent/sentences.js';
import { registerEvaluator, requireData, type Evaluation, type GroupQuality } from './evaluator.js';
import { ModelToolError } from './onnx-model.js';

const dataDescription = 'a JSONL file of labelled sentences, one {"text","lang","intent"} per line (like models/text-intent/data/test.jsonl)';
const encoder = new TextEncoder();

async function intentOf(model: LoadedModel, sentence: Sentence): Promise<string> {
  return (await model.run(encoder.encode(sentence.text))).result.intent as string;
}

/** Both variants' intent accuracy over `sentences`, overall and per language. */
export async function intentAccuracy(reference: LoadedModel, candidate: LoadedModel, sentences: readonly Sentence[]): Promise<Evaluation> {
  const groups: Record<string, GroupQuality> = {};
  for (const sentence of sentences) {
    const [a, b] = await Promise.all([intentOf(reference, sentence), intentOf(candidate, sentence)]);
    const group = (groups[sentence.lang] ??= { reference: 0, candidate: 0, samples: 0 });
    group.samples++;
    if (a === sentence.intent) group.reference++;
    if (b === sentence.intent) group.candidate++;
  }
  const right = { reference: 0, candidate: 0 };
  for (const group of Object.values(groups)) {
    right.reference += group.reference;
    right.candidate += group.candidate;
    group.reference /= group.samples;
    group.candidate /= group.samples;
  }
  return {
    metric: 'intent accuracy',
    basis: 'labels',
    reference: right.reference / sentences.length,
    candidate: right.candidate / sentences.length,
    samples: sentences.length,
    sampleUnit: 'sentences',
    groups,
  };
}

registerEvaluator({
  handlerId: 'text-intent',
  defaultDataPath: heldOutSentencesPath,
  dataDescription,
  load(dataPath) {
    requireData(dataPath, 'file', dataDescription);
    const sentences = readSentences(dataPath);
    if (sentences.length === 0) throw new ModelToolError(`eval: ${dataPath} holds no sentences — expected ${dataDescription}`);
    return { size: sentences.length, evaluate: (reference, candidate) => intentAccuracy(reference, candidate, sentences) };
  },
});
