/**
 * The two static baselines the benchmark compares against: `always-local`
 * runs every free task on the edge, `always-cloud` offloads every one. They
 * look at no estimates; the constraint step still applies (a task without a
 * local variant goes to the cloud, a down cloud sends tasks to the edge), and
 * a failing cloud still falls back to the edge, as for any strategy.
 */
import type { Site } from '../request.js';
import { reason } from './reasons.js';
import { registerPlacementStrategy, type PlacementStrategy } from './strategy.js';

export const alwaysLocalStrategyName = 'always-local';
export const alwaysCloudStrategyName = 'always-cloud';

const alwaysOn = (name: string, site: Site): PlacementStrategy => ({
  name,
  choose: (task, { localVariant, cloud }) => ({
    site,
    reasons: [reason.fixedSide(name, task.modality, site, localVariant)],
    estimates: { localVariant: localVariant ?? null, cloudCircuit: cloud.state },
  }),
});

registerPlacementStrategy(alwaysLocalStrategyName, () => alwaysOn(alwaysLocalStrategyName, 'edge'));
registerPlacementStrategy(alwaysCloudStrategyName, () => alwaysOn(alwaysCloudStrategyName, 'cloud'));
