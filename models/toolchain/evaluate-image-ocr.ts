/**
 * image-ocr: character accuracy (models/image-ocr/char-accuracy.ts) of the
 * whole handler, detection then recognition, on images with known text: a
 * folder with expected.json (file name → text; default: the rendered zh/en
 * set in models/image-ocr/eval/). Groups are the file-name prefix before
 * the first '-' (zh-000.png → zh).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { OcrResult } from '../../shared/handlers/image-ocr.js';
import type { LoadedModel } from '../../shared/loaded-model.js';
import { packageRoot } from '../../shared/paths.js';
import { characterAccuracy, type Reading } from '../image-ocr/char-accuracy.js';
import { registerEvaluator, requireData, type Evaluation, type GroupQuality } from './evaluator.js';
import { ModelToolError } from './onnx-model.js';

const dataDescription = 'a folder of images with expected.json mapping each file name to its text (like models/image-ocr/eval/)';

/** The lines an OCR result holds, as one string (what a single-line image should read as). */
const readAs = (result: OcrResult) => result.lines.map((l) => l.text).join(' ');

/** file name → expected text, every file checked to exist. */
export function readExpectedTexts(dataPath: string): Record<string, string> {
  requireData(dataPath, 'folder', dataDescription);
  const file = path.join(dataPath, 'expected.json');
  if (!existsSync(file)) throw new ModelToolError(`eval: ${dataPath} has no expected.json — expected ${dataDescription}`);
  let expected: unknown;
  try {
    expected = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelToolError(`eval: ${file} is not JSON (${(err as Error).message}) — expected an object mapping image file names to their text`);
  }
  const entries = typeof expected === 'object' && expected !== null && !Array.isArray(expected) ? Object.entries(expected) : [];
  if (entries.length === 0 || !entries.every(([, text]) => typeof text === 'string')) {
    throw new ModelToolError(`eval: ${file} must be a non-empty object mapping image file names to their text, e.g. {"zh-000.png": "维护会议"}`);
  }
  const missing = entries.map(([name]) => name).filter((name) => !existsSync(path.join(dataPath, name)));
  if (missing.length > 0) throw new ModelToolError(`eval: ${file} lists images that are not in ${dataPath}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  return Object.fromEntries(entries) as Record<string, string>;
}

async function reading(model: LoadedModel, image: Uint8Array, reference: string): Promise<Reading> {
  return { reference, hypothesis: readAs((await model.run(image)).result as unknown as OcrResult) };
}

async function characterAccuracyOf(reference: LoadedModel, candidate: LoadedModel, images: ReadonlyMap<string, { text: string; bytes: Uint8Array }>): Promise<Evaluation> {
  const readings = new Map<string, { reference: Reading[]; candidate: Reading[] }>();
  for (const [name, { text, bytes }] of images) {
    const [a, b] = await Promise.all([reading(reference, bytes, text), reading(candidate, bytes, text)]);
    const groupName = name.split('-')[0]!;
    let group = readings.get(groupName);
    if (!group) readings.set(groupName, (group = { reference: [], candidate: [] }));
    group.reference.push(a);
    group.candidate.push(b);
  }
  const groups: Record<string, GroupQuality> = {};
  for (const [name, group] of [...readings].sort(([a], [b]) => a.localeCompare(b))) {
    groups[name] = { reference: characterAccuracy(group.reference), candidate: characterAccuracy(group.candidate), samples: group.reference.length };
  }
  const all = [...readings.values()];
  return {
    metric: 'character accuracy',
    basis: 'labels',
    reference: characterAccuracy(all.flatMap((g) => g.reference)),
    candidate: characterAccuracy(all.flatMap((g) => g.candidate)),
    samples: images.size,
    sampleUnit: 'images',
    groups,
  };
}

registerEvaluator({
  handlerId: 'image-ocr',
  defaultDataPath: path.join(packageRoot, 'models', 'image-ocr', 'eval'),
  dataDescription,
  load(dataPath) {
    const expected = readExpectedTexts(dataPath);
    const images = new Map(Object.entries(expected).map(([name, text]) => [name, { text, bytes: new Uint8Array(readFileSync(path.join(dataPath, name))) }]));
    return { size: images.size, evaluate: (reference, candidate) => characterAccuracyOf(reference, candidate, images) };
  },
});
