/**
 * The two static baselines the benchmark compares against: `always-local`
 * runs every task with a local variant on the edge, `always-cloud` offloads
 * every task. Neither looks at estimates, pins or the request's `prefer`;
 * a failing cloud still falls back to the edge in the agent, as for any
 * strategy.
 */
import { registerPlacementStrategy, type PlacementStrategy } from './strategy.js';

export const alwaysLocalStrategyName = 'always-local';
export const alwaysCloudStrategyName = 'always-cloud';

registerPlacementStrategy(alwaysLocalStrategyName, (): PlacementStrategy => ({
  name: alwaysLocalStrategyName,
  decide: (task, { localVariant }) =>
    localVariant
      ? { site: 'edge', why: `always-local runs ${task.modality} on the edge (local ${localVariant} variant)`, estimates: { localVariant } }
      : { site: 'cloud', why: `always-local, but ${task.modality} has no local variant, so it runs in the cloud`, estimates: { localVariant: null } },
}));

registerPlacementStrategy(alwaysCloudStrategyName, (): PlacementStrategy => ({
  name: alwaysCloudStrategyName,
  decide: (task, { cloud }) => ({ site: 'cloud', why: `always-cloud offloads ${task.modality}`, estimates: { cloudCircuit: cloud.state } }),
}));
