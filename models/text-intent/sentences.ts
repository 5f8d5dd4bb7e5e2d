/**
 * The labelled sentence files of the text-intent model (data/train.jsonl,
 * data/test.jsonl): one JSON object per line, {"text","lang","intent"}. Read
 * by the training script and by `splitinfer model eval`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../shared/paths.js';

export const LANGUAGES = ['zh', 'en', 'ja'] as const;
export type Language = (typeof LANGUAGES)[number];

export interface Sentence {
  text: string;
  lang: Language;
  intent: string;
}

/** The held-out split: never trained on, what accuracy is reported on. */
export const heldOutSentencesPath = path.join(packageRoot, 'models', 'text-intent', 'data', 'test.jsonl');

export function readSentences(file: string): Sentence[] {
  const expected = `expected one JSON object {"text","lang":"${LANGUAGES.join('|')}","intent"} per line`;
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line, i) => ({ line, number: i + 1 }))
    .filter(({ line }) => line.trim() !== '')
    .map(({ line, number }) => {
      let row: Partial<Sentence>;
      try {
        row = JSON.parse(line) as Partial<Sentence>;
      } catch {
        throw new Error(`${file}:${number}: not JSON — ${expected}, got ${line.slice(0, 80)}`);
      }
      if (typeof row.text !== 'string' || typeof row.intent !== 'string' || !LANGUAGES.includes(row.lang as Language)) {
        throw new Error(`${file}:${number}: ${expected}, got ${line.slice(0, 80)}`);
      }
      return row as Sentence;
    });
}
