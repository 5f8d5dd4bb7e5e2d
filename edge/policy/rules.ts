/**
 * The `rules` strategy: where config places each task
 * (`modalities.<m>.placement`, `modalities.image.encode.placement`). Pins, the request's `prefer`, a cloud that is
 * down and a missing local variant are the constraint step's, before it.
 */
import { reason } from './reasons.js';
import { registerPlacementStrategy, type PlacementStrategy } from './strategy.js';

export const rulesStrategyName = 'rules';

export function rulesStrategy(): PlacementStrategy {
  return {
    name: rulesStrategyName,
    choose: (task, { localVariant }) => {
      const site = task.settings.placement;
      return { site, reasons: [reason.configured(task.modality, site, localVariant)], estimates: { rule: 'config', wanted: site, localVariant: localVariant ?? null } };
    },
  };
}

registerPlacementStrategy(rulesStrategyName, rulesStrategy);
