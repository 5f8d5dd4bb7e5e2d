/**
 * The `confidence` baseline, after Sedna's joint inference (hard-example
 * mining): every task with a local variant runs on the edge first; when the
 * edge result's confidence is under `policy.confidenceThreshold`, the agent
 * runs it in the cloud as well and answers with the cloud's result.
 *
 * Confidence, in [0, 1], per model family:
 * - text intent: the classifier's own confidence (top probability);
 * - OCR: the mean score of the recognised lines (0 when none was found: the
 *   edge may have missed the text); video: its least confident frame;
 * - VAD: how far the highest speech probability is from the undecided 0.5,
 *   scaled to [0, 1] (clear speech or clear silence are both confident).
 */
import type { Modality } from '../request.js';
import { registerPlacementStrategy, type PlacementStrategy } from './strategy.js';

export const confidenceStrategyName = 'confidence';

const meanLineScore = (result: unknown): number => {
  const lines = (result as { lines?: { score: number }[] }).lines ?? [];
  return lines.length === 0 ? 0 : lines.reduce((sum, line) => sum + line.score, 0) / lines.length;
};

/** The edge result's confidence, or undefined when the result has no such measure. */
export function edgeConfidence(modality: Modality, result: unknown): number | undefined {
  switch (modality) {
    case 'text': {
      const confidence = (result as { confidence?: unknown }).confidence;
      return typeof confidence === 'number' ? confidence : undefined;
    }
    case 'image':
      return meanLineScore(result);
    case 'video': {
      const frames = (result as { frames?: unknown[] }).frames ?? [];
      return frames.length === 0 ? undefined : Math.min(...frames.map(meanLineScore));
    }
    case 'audio': {
      const max = (result as { frames?: { maxProbability?: unknown } }).frames?.maxProbability;
      return typeof max === 'number' ? Math.abs(max - 0.5) * 2 : undefined;
    }
  }
}

registerPlacementStrategy(confidenceStrategyName, (config): PlacementStrategy => {
  const threshold = config.policy.confidenceThreshold;
  return {
    name: confidenceStrategyName,
    decide: (task, { localVariant }) =>
      localVariant
        ? { site: 'edge', why: `confidence runs ${task.modality} on the edge first (local ${localVariant} variant)`, estimates: { confidenceThreshold: threshold } }
        : { site: 'cloud', why: `confidence, but ${task.modality} has no local variant, so it runs in the cloud`, estimates: { confidenceThreshold: threshold } },
    escalate(task, edgeResult) {
      const confidence = edgeConfidence(task.modality, edgeResult);
      if (confidence === undefined || confidence >= threshold) return undefined;
      return `the edge result's confidence ${confidence.toFixed(2)} is under the ${threshold} threshold (a hard example)`;
    },
  };
});
