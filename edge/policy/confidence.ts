/**
 * The `confidence` baseline, after Sedna's joint inference (hard-example
 * mining): every free task runs on the edge first; when the edge result's
 * confidence is under `policy.confidenceThreshold`, the cloud runs it as
 * well and its result is the answer; if the cloud cannot answer in the time
 * left, the edge's answer stands.
 *
 * Confidence, in [0, 1], per model family:
 * - text intent: the classifier's own confidence (top probability);
 * - OCR: the mean score of the recognised lines (0 when none was found: the
 *   edge may have missed the text); video: its least confident frame;
 * - VAD: how far the highest speech probability is from the undecided 0.5,
 *   scaled to [0, 1] (clear speech or clear silence are both confident).
 */
import { toInferError } from '../../shared/errors.js';
import type { Modality } from '../request.js';
import { reason } from './reasons.js';
import { registerPlacementStrategy, type PlacementStrategy, type Review } from './strategy.js';

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
    choose: (task, { localVariant }) => ({
      site: 'edge',
      reasons: [reason.fixedSide(`${confidenceStrategyName} (edge first)`, task.modality, 'edge', localVariant)],
      estimates: { confidenceThreshold: threshold },
    }),
    async review(task, edge, askCloud): Promise<Review | undefined> {
      const confidence = edgeConfidence(task.modality, edge.result);
      if (confidence === undefined || confidence >= threshold) return undefined;
      const why = `the edge result's confidence ${confidence.toFixed(2)} is under the ${threshold} threshold (a hard example)`;
      const leftMs = task.deadlineAt - performance.now();
      // A margin so that a late cloud still leaves time to send the edge's answer.
      const budgetMs = leftMs - Math.max(10, leftMs * 0.05);
      if (budgetMs <= 0) return { reason: reason.escalated(why, 'but no time is left to ask the cloud'), outcome: 'no-time' };
      try {
        await askCloud(budgetMs);
        return { reason: reason.escalated(why, 'so the cloud ran it too and its answer is the one returned'), outcome: 'cloud-answered' };
      } catch (err) {
        const { code, message } = toInferError(err);
        return { reason: reason.escalated(why, `but the cloud failed (${code}: ${message}), so the edge's answer stands`), outcome: 'cloud-failed', error: { code, message } };
      }
    },
  };
});
