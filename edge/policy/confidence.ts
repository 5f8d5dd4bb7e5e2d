/**
 * The `confidence` baseline, after Sedna's joint inference (hard-example
 * mining): every free task runs on the edge first; when the edge result's
 * confidence is under `policy.confidenceThreshold`, the cloud runs it as
 * well and its result is the answer; if the cloud cannot answer in the time
 * left, the edge's answer stands.
 *
 * A task whose quality floor rules the light variant out goes straight to
 * the escalation target, the reference in the cloud: the reference the
 * device may hold would only be asked again by the same model.
 *
 * Confidence, in [0, 1], is the model handler's measure (each handler says
 * how it judges its results; a video chunk's is its top label's mean score).
 */
import { toInferError } from '../../shared/errors.js';
import { reason } from './reasons.js';
import { registerPlacementStrategy, type PlacementStrategy, type Review } from './strategy.js';

export const confidenceStrategyName = 'confidence';

registerPlacementStrategy(confidenceStrategyName, (config): PlacementStrategy => {
  const threshold = config.policy.confidenceThreshold;
  return {
    name: confidenceStrategyName,
    choose: (task, { localVariant, edgeReference }) =>
      edgeReference
        ? { site: 'cloud', reasons: [reason.fixedSide(`${confidenceStrategyName} (its escalation target first)`, task.modality, 'cloud')], estimates: { confidenceThreshold: threshold } }
        : {
            site: 'edge',
            reasons: [reason.fixedSide(`${confidenceStrategyName} (edge first)`, task.modality, 'edge', localVariant)],
            estimates: { confidenceThreshold: threshold },
          },
    async review(task, edge, askCloud): Promise<Review | undefined> {
      const confidence = task.handler.confidence(edge.result as object);
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
