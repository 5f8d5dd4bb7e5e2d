import { readFileSync } from 'node:fs';

/**
 * Greedy CTC decoding for PaddleOCR recognition output, as PaddleOCR's
 * CTCLabelDecode does: argmax per time step, collapse repeats, drop the blank.
 */

export interface DecodedText {
  text: string;
  /** Mean of the kept steps' max probabilities; 0 when nothing was kept. */
  score: number;
}

const dictionaries = new Map<string, readonly string[]>();

/**
 * The recognition alphabet: index 0 is the CTC blank, then one character per
 * dictionary line, then a space (PaddleOCR's use_space_char, on for the
 * ch_PP-OCRv4 models). Read once per path.
 */
export function loadDictionary(file: string): readonly string[] {
  let alphabet = dictionaries.get(file);
  if (!alphabet) {
    alphabet = dictionaryFromText(readFileSync(file, 'utf8'));
    dictionaries.set(file, alphabet);
  }
  return alphabet;
}

export function dictionaryFromText(text: string): readonly string[] {
  const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
  if (lines.at(-1) === '') lines.pop();
  return ['', ...lines, ' '];
}

/**
 * Decodes one sequence of `steps` rows of `classes` probabilities starting at
 * `offset` in `probs` (row-major [T, C], as one item of the [N, T, C] output).
 */
export function ctcGreedyDecode(
  probs: Float32Array,
  offset: number,
  steps: number,
  classes: number,
  alphabet: readonly string[],
): DecodedText {
  if (alphabet.length !== classes) {
    throw new Error(`recognition model has ${classes} classes but the dictionary gives ${alphabet.length} (blank + lines + space)`);
  }
  let text = '';
  let scoreSum = 0;
  let kept = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const row = offset + t * classes;
    let best = 0;
    let bestProb = probs[row]!;
    for (let c = 1; c < classes; c++) {
      const p = probs[row + c]!;
      if (p > bestProb) {
        bestProb = p;
        best = c;
      }
    }
    if (best !== 0 && best !== previous) {
      text += alphabet[best];
      scoreSum += bestProb;
      kept++;
    }
    previous = best;
  }
  return { text, score: kept > 0 ? scoreSum / kept : 0 };
}
