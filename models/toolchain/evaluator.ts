/**
 * How `splitinfer model eval` and the quantization benchmark score a variant
 * against its reference, one evaluator per model family, registered by
 * handler id as the handlers are (shared/handlers/handler.ts): task accuracy
 * where the data set has labels, agreement with the reference's outputs
 * where it does not.
 */
import { statSync } from 'node:fs';
import type { LoadedModel } from '../../shared/loaded-model.js';
import { Registry } from '../../shared/registry.js';
import { ModelToolError } from './onnx-model.js';

export interface GroupQuality {
  reference: number;
  candidate: number;
  samples: number;
}

export interface Evaluation {
  /** What the numbers are, in words: 'intent accuracy', 'frame agreement with the reference'. */
  metric: string;
  /** Scored against labels (accuracy), or against the reference's own outputs (agreement: the reference scores 1). */
  basis: 'labels' | 'reference';
  /** Quality from 0 to 1. */
  reference: number;
  candidate: number;
  /** How many items were scored, and what an item is ('sentences', 'frames', 'images'). */
  samples: number;
  sampleUnit: string;
  /** The same split by language or file. */
  groups: Record<string, GroupQuality>;
}

/** A data set read and checked, ready to score any two variants on. */
export interface EvaluationSet {
  /** How many sentences, clips or images it holds. */
  readonly size: number;
  evaluate(reference: LoadedModel, candidate: LoadedModel): Promise<Evaluation>;
}

export interface ModelEvaluator {
  /** The handler id of the catalog models this evaluator scores. */
  readonly handlerId: string;
  /** The held-out set the project ships for this family: what eval uses without --data. */
  readonly defaultDataPath: string;
  /** What reports call the default set, when it is more than the files of defaultDataPath. */
  readonly defaultDataLabel?: string;
  /** What --data must be, for help and error messages. */
  readonly dataDescription: string;
  /** Reads `dataPath`, before any model is loaded; a ModelToolError says what is wrong with data of the wrong kind. */
  load(dataPath: string): EvaluationSet;
}

/** Keyed by the handler id of the catalog models each one evaluates. */
const evaluators = new Registry<ModelEvaluator>({
  kind: 'model evaluator (by handler id)',
  hint: 'register one for this handler in models/toolchain/evaluators.ts',
  unknownError: ModelToolError,
});

export function registerEvaluator(evaluator: ModelEvaluator): void {
  evaluators.register(evaluator.handlerId, evaluator);
}

export function getEvaluator(handlerId: string): ModelEvaluator {
  return evaluators.get(handlerId);
}

function kindOf(dataPath: string): 'file' | 'folder' | 'missing' {
  try {
    return statSync(dataPath).isDirectory() ? 'folder' : 'file';
  } catch {
    return 'missing';
  }
}

/** Throws unless `dataPath` is a file (or a folder) that exists; `description` says what it should be. */
export function requireData(dataPath: string, kind: 'file' | 'folder', description: string): void {
  const actual = kindOf(dataPath);
  if (actual === kind) return;
  const found = actual === 'missing' ? 'does not exist' : `is a ${actual}`;
  throw new ModelToolError(`eval: --data ${dataPath} ${found} — expected ${description}`);
}
