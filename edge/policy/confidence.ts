/**
 * The `confidence` baseline, after Sedna's joint inference (hard-example
 * mining): every task with a local variant runs on the edge first; when the
 * edge result's confidence is under `policy.confidenceThreshold`, the agent
 * runs it in the cloud as well and answers with the cloud's result.
 *
 * Confidence, in [0, 1], is the model handler's measure (each handler says
 * how it judges its results); a video's is its least confident frame's.
 */
import type { ModelHandler } from '../../shared/handlers/handler.js';
import type { Modality } from '../request.js';
import { registerPlacementStrategy, type PlacementStrategy } from './strategy.js';

export const confidenceStrategyName = 'confidence';

/**
 * The edge result's confidence, or undefined when its model has no such
 * measure; `handler` is the task's model handler (for video, the frame
 * model's), `result` what the edge answered for the task.
 */
export function edgeConfidence(modality: Modality, result: unknown, handler: ModelHandler): number | undefined {
  if (modality !== 'video') return handler.confidence(result as object);
  const frames = (result as { frames: object[] }).frames.map((frame) => handler.confidence(frame));
  return frames.includes(undefined) ? undefined : Math.min(...(frames as number[]));
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
      const confidence = edgeConfidence(task.modality, edgeResult, task.handler);
      if (confidence === undefined || confidence >= threshold) return undefined;
      return `the edge result's confidence ${confidence.toFixed(2)} is under the ${threshold} threshold (a hard example)`;
    },
  };
});
