/**
 * Hashed bag-of-n-grams features for the text-intent model. The training
 * script and the runtime handler both call `textFeatures`, so what the model
 * learned from and what it sees in service cannot drift apart.
 *
 * Character n-grams carry zh/ja (no spaces between words) and make en robust to
 * typos; word unigrams add whole-word evidence where words exist.
 */

/**
 * Length of the feature vector: the model's input width. It must match the
 * committed ONNX graph (its `feature_dim` metadata); models/text-intent/train.ts
 * can try other widths with `--dim`, but only writes the model at this one.
 */
export const TEXT_FEATURE_DIM = 16384;

const MAX_NGRAM = 3;
const BOUNDARY = ' ';

/** NFKC (full-width → half-width, compatibility forms folded), lower-case, every decimal digit → '0'. */
export function normalizeText(text: string): string {
  // Order and phone numbers say nothing about intent; folding digits keeps them from spreading over buckets.
  return text.normalize('NFKC').toLowerCase().replace(/\p{Nd}/gu, '0');
}

/** Words of the normalised text: runs of letters, marks and digits; punctuation and spaces separate them. */
export function textTokens(text: string): string[] {
  return normalizeText(text).split(/[^\p{L}\p{M}\p{N}]+/u).filter((t) => t.length > 0);
}

/** 32-bit FNV-1a over the UTF-8 bytes of `text`, so any language can reproduce the bucket of a feature. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  const step = (byte: number) => {
    hash = Math.imul(hash ^ byte, 0x01000193);
  };
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      step(cp);
    } else if (cp < 0x800) {
      step(0xc0 | (cp >> 6));
      step(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      step(0xe0 | (cp >> 12));
      step(0x80 | ((cp >> 6) & 0x3f));
      step(0x80 | (cp & 0x3f));
    } else {
      step(0xf0 | (cp >> 18));
      step(0x80 | ((cp >> 12) & 0x3f));
      step(0x80 | ((cp >> 6) & 0x3f));
      step(0x80 | (cp & 0x3f));
    }
  }
  return hash >>> 0;
}

/**
 * The feature vector of one text: character 1..3-grams over the normalised
 * words, each word wrapped in boundary markers (` word `), plus word unigrams,
 * hashed into `dim` buckets (TEXT_FEATURE_DIM unless a training experiment
 * asks for another width); value log(1 + count), L2-normalised.
 * A text without letters or digits gives the zero vector.
 */
export function textFeatures(text: string, dim: number = TEXT_FEATURE_DIM): Float32Array {
  if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`textFeatures: dim must be a positive integer, got ${dim}`);
  const tokens = textTokens(text);
  const counts = new Map<number, number>();
  const add = (feature: string) => {
    const bucket = fnv1a32(feature) % dim;
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
  };
  // Code points, not UTF-16 units, so a CJK extension character or an emoji is one character.
  const chars = [BOUNDARY, ...tokens.flatMap((t) => [...Array.from(t), BOUNDARY])];
  for (let n = 1; n <= MAX_NGRAM; n++) {
    for (let i = 0; i + n <= chars.length; i++) {
      const gram = chars.slice(i, i + n).join('');
      // Prefixes keep character grams and words apart: the 1-gram 'a' is not the word 'a'.
      if (gram !== BOUNDARY) add('c:' + gram);
    }
  }
  for (const token of tokens) add('w:' + token);

  const features = new Float32Array(dim);
  let sumSquares = 0;
  for (const [bucket, count] of counts) {
    const value = Math.log1p(count);
    features[bucket] = value;
    sumSquares += value * value;
  }
  if (sumSquares > 0) {
    const scale = 1 / Math.sqrt(sumSquares);
    for (const bucket of counts.keys()) features[bucket] *= scale;
  }
  return features;
}
