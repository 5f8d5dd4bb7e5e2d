/**
 * text-intent: the FAQ intent of one zh/en/ja support-chat message. UTF-8 text
 * in; hashed n-gram features (text-features.ts, the same code the training
 * script used) through the `text-intent-mlp` graph; the top intents out.
 */
import { readFile } from 'node:fs/promises';
import { hexPrefix, InferError } from '../errors.js';
import { float32, utf8Tensor } from '../tensor.js';
import { registerHandler } from './handler.js';
import { TEXT_FEATURE_DIM, textFeatures, textTokens } from './text-features.js';

const GRAPH = 'text-intent-mlp';
/** One support message, not a document: longer input is a caller mistake, and would only blur the n-gram counts. */
export const MAX_TEXT_CHARS = 4096;
const TOP_K = 3;

export interface IntentResult {
  intent: string;
  /** The top intent's probability. */
  confidence: number;
  /** The TOP_K most probable intents, most probable first. */
  topK: { intent: string; score: number }[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const labelsByPath = new Map<string, Promise<string[]>>();

async function readLabels(file: string): Promise<string[]> {
  const labels: unknown = JSON.parse(await readFile(file, 'utf8'));
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string')) {
    throw new InferError('FAILED_PRECONDITION', `text-intent labels ${file}: expected a JSON array of intent names — rebuild it with models/text-intent/train.ts`);
  }
  return labels;
}

function labelsAt(file: string): Promise<string[]> {
  let labels = labelsByPath.get(file);
  if (!labels) {
    labels = readLabels(file);
    // A failed read must not stick: the next request retries.
    labels.catch(() => labelsByPath.delete(file));
    labelsByPath.set(file, labels);
  }
  return labels;
}

function decodeText(input: Uint8Array): string {
  let text: string;
  try {
    text = utf8.decode(input);
  } catch {
    throw new InferError('INVALID_ARGUMENT', `text-intent input: ${input.length} bytes that are not valid UTF-8 (first bytes ${hexPrefix(input, 8)}) — send the message as UTF-8 text`);
  }
  if (text.trim() === '') {
    throw new InferError('INVALID_ARGUMENT', 'text-intent input is empty or only whitespace — send the user\'s message as UTF-8 text');
  }
  let chars = 0;
  for (const _ of text) chars++;
  if (chars > MAX_TEXT_CHARS) {
    throw new InferError('INVALID_ARGUMENT', `text-intent input has ${chars} characters, the limit is ${MAX_TEXT_CHARS} — send one support message, not a whole conversation or document`);
  }
  if (textTokens(text).length === 0) {
    throw new InferError('INVALID_ARGUMENT', `text-intent input '${text.slice(0, 40)}' has no letters or digits — send the user's message as text`);
  }
  return text;
}

registerHandler<IntentResult>({
  id: 'text-intent',
  modality: 'text',
  outputs: [
    { name: 'intent', type: 'bytes', shape: [1] },
    { name: 'confidence', type: 'float32', shape: [1] },
    // Its width is the number of intents in the model's labels.json.
    { name: 'probabilities', type: 'float32', shape: [1, -1] },
  ],

  checkInput(value, label) {
    if (typeof value !== 'string') throw new InferError('INVALID_ARGUMENT', `${label} must be a string, got ${typeof value}`);
    if (value.trim() === '') throw new InferError('INVALID_ARGUMENT', `${label} is empty — send the text to classify`);
    return new TextEncoder().encode(value);
  },

  // The n-gram features cost in proportion to the UTF-8 length.
  sizeUnit: 'text-bytes',
  measureInput: (input) => ({ amount: input.length, bytes: input.length }),

  confidence: (result) => result.confidence,

  async run(input, ctx) {
    const text = decodeText(input);
    const labels = await labelsAt(ctx.assetPath('labels'));
    const { outputs, computeUs } = await ctx.session(GRAPH).run({ features: float32([1, TEXT_FEATURE_DIM], textFeatures(text)) });
    const probabilities = outputs.probabilities?.data;
    if (!(probabilities instanceof Float32Array) || probabilities.length !== labels.length) {
      throw new InferError(
        'FAILED_PRECONDITION',
        `text-intent: graph ${GRAPH} returned ${probabilities?.length ?? 'no'} probabilities for ${labels.length} labels — the model and labels.json come from different training runs`,
      );
    }
    const topK = [...probabilities]
      .map((score, index) => ({ intent: labels[index]!, score }))
      .sort((a, b) => b.score - a.score)
      .slice(0, TOP_K);
    const best = topK[0]!;
    return {
      result: { intent: best.intent, confidence: best.score, topK },
      tensors: {
        intent: utf8Tensor(best.intent),
        confidence: float32([1], Float32Array.of(best.score)),
        probabilities: float32([1, labels.length], probabilities),
      },
      computeUs,
    };
  },

  async warmupInput() {
    return new TextEncoder().encode('Where is my order?');
  },
});
