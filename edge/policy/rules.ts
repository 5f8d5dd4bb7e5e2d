/**
 * The `rules` strategy: the request's `prefer` first, then the config's
 * placement per modality; a cloud that is unreachable or failing (circuit not
 * closed) sends the task to the edge when a local variant exists, and
 * otherwise still to the cloud so the task fails fast with UNAVAILABLE.
 */
import type { Site } from '../request.js';
import { registerPlacementStrategy, type PlacementContext, type PlacementDecision, type PlacementStrategy } from './strategy.js';
import type { Task } from '../tasks.js';

const where = (site: Site) => (site === 'edge' ? 'on the edge' : 'in the cloud');

export function decideByRules(task: Task, context: PlacementContext): PlacementDecision {
  const { cloud, localVariant, config } = context;
  const configured = config.modalities[task.modality].placement;
  const wanted = task.prefer ?? configured;
  const reason = task.prefer ? `the request prefers the ${task.prefer} for ${task.modality}` : `config places ${task.modality} ${where(configured)}`;
  const cloudDown = cloud.state !== 'closed';
  const cloudProblem = `the cloud is unavailable (circuit ${cloud.state}${cloud.lastError ? `: ${cloud.lastError}` : ''})`;
  const estimates = {
    rule: task.prefer ? 'prefer' : 'config',
    wanted,
    cloudCircuit: cloud.state,
    cloudConsecutiveFailures: cloud.consecutiveFailures,
    localVariant: localVariant ?? null,
  };
  const decision = (site: Site, why: string): PlacementDecision => ({ site, why, estimates });

  if (wanted === 'edge') {
    if (localVariant) return decision('edge', `${reason} (local ${localVariant} variant)`);
    if (!cloudDown) return decision('cloud', `${reason}, but ${task.modality} has no local variant, so it runs in the cloud`);
    return decision('cloud', `${reason}, but ${task.modality} has no local variant and ${cloudProblem}; sent to the cloud to fail fast with UNAVAILABLE`);
  }
  if (!cloudDown) return decision('cloud', reason);
  if (localVariant) return decision('edge', `${reason}, but ${cloudProblem}, so it runs on the edge with the local ${localVariant} variant`);
  return decision('cloud', `${reason}; ${cloudProblem} and ${task.modality} has no local variant, so it fails fast with UNAVAILABLE`);
}

export const rulesStrategyName = 'rules';

registerPlacementStrategy(rulesStrategyName, (): PlacementStrategy => ({ name: rulesStrategyName, decide: decideByRules }));
