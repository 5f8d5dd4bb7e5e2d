/**
 * The constraint step, run before every strategy, so that each one honours
 * them the same way:
 * 1. a config pin to the edge keeps the task on the device, whatever else;
 * 2. a quality floor (the request's `quality`, else config `minAgreement`)
 *    the local variant does not meet sends it to the cloud, and, with the
 *    cloud down, fails it rather than answer with a worse model; where the
 *    device holds the model's reference variant (`localReference`), that
 *    one is the local variant instead (the task runner sets it in the
 *    context), so the task stays free: `edge-reference` when it runs there;
 * 3. a config pin to the cloud, else the request's `prefer`, decides the
 *    side (the edge only with a local variant; the cloud only while it is
 *    up, when a local variant can stand in);
 * 4. without a local variant the task can only go to the cloud;
 * 5. with the cloud down it can only run on the edge.
 * A task still free after that is the strategy's to place. A task that has
 * nowhere to run (cloud down, no local variant) is placed in the cloud, where
 * it fails fast with UNAVAILABLE without leaving the device.
 */
import type { Site } from '../request.js';
import { referenceVariant, type Task } from '../tasks.js';
import { reason, type Reason } from './reasons.js';
import type { CloudPlan, PlacementContext, PlacementStrategy } from './strategy.js';

export interface PlacementDecision extends CloudPlan {
  readonly site: Site;
  /** The variant that runs when the site is the edge (the light one, or the reference the device holds); undefined without one. */
  readonly edgeVariant: string | undefined;
  readonly reasons: readonly Reason[];
  readonly estimates: Readonly<Record<string, unknown>>;
  /** A constraint placed the task; the strategy did not choose (and may not review the edge's answer). */
  readonly constrained: boolean;
}

export interface Constraint {
  site: Site;
  reasons: Reason[];
}

/**
 * Why the local variant may not answer this task under its quality floor, or
 * undefined when it may: `best` takes the reference variant itself, a number
 * the catalog's measured agreement at least that high.
 */
export function qualityShortfall(task: Task, localVariant: string | undefined): Reason | undefined {
  const { floor, localAgreement } = task.quality;
  if (!localVariant || localVariant === referenceVariant || floor === 'fast' || floor === 0) return undefined;
  if (floor !== 'best' && localAgreement !== undefined && localAgreement >= floor) return undefined;
  return reason.qualityFloor(task.settingsPath, floor, localVariant, localAgreement);
}

/**
 * The least accuracy a cloud answer's payload shaping may keep: the policy's
 * `accuracyFloor`, raised by the request's own floor, which asks for that
 * much agreement with the reference model's answer on the original image —
 * a shrunk upload loses some of it (the catalog's accuracy costs) even when
 * the reference answers; `best` allows no loss at all.
 */
export function shapingFloor(task: Task, accuracyFloor: number): number {
  const { floor } = task.quality;
  if (floor === 'best') return 1;
  return typeof floor === 'number' ? Math.max(accuracyFloor, floor) : accuracyFloor;
}

/** The side the constraints impose, or undefined when the task is free. */
export function constrain(task: Task, context: Pick<PlacementContext, 'cloud' | 'localVariant' | 'referenceUnavailable'>): Constraint | undefined {
  const { cloud, localVariant } = context;
  const { modality } = task;
  const cloudUp = cloud.state === 'closed';
  const pin = task.settings.pin;
  // Pinned to the edge: config validation guarantees a local variant.
  if (pin === 'edge') return { site: 'edge', reasons: [reason.pinned(modality, 'edge', task.prefer === 'cloud')] };
  const wanted = pin || task.prefer;
  const toCloud = (first: Reason[]): Constraint => (cloudUp ? { site: 'cloud', reasons: first } : { site: 'cloud', reasons: [...first, reason.cloudDown(cloud, undefined)] });
  const shortfall = qualityShortfall(task, localVariant);
  if (shortfall) return toCloud(context.referenceUnavailable ? [shortfall, context.referenceUnavailable] : [shortfall]);
  if (wanted) {
    const asked = pin ? reason.pinned(modality, 'cloud', task.prefer === 'edge') : reason.preferred(modality, wanted, localVariant);
    if (wanted === 'edge') return localVariant ? { site: 'edge', reasons: [asked] } : toCloud([asked, reason.noLocalVariant(modality)]);
    if (!cloudUp && localVariant) return { site: 'edge', reasons: [asked, reason.cloudDown(cloud, localVariant)] };
    return toCloud([asked]);
  }
  if (!localVariant) return toCloud([reason.noLocalVariant(modality)]);
  if (!cloudUp) return { site: 'edge', reasons: [reason.cloudDown(cloud, localVariant)] };
  return undefined;
}

/**
 * The constraint step, then the strategy for a free task; a task constrained
 * to the cloud still gets the strategy's shaping. With the reference standing
 * in for the light variant, the first reason says which of the two the
 * floor left: the reference on the edge, or the cloud.
 */
export function decidePlacement(strategy: PlacementStrategy, task: Task, context: PlacementContext): PlacementDecision {
  const decision = placeTask(strategy, task, context);
  const { edgeReference, localVariant } = context;
  if (!edgeReference) return Object.freeze(decision);
  const floor = task.quality.floor as 'best' | number;
  const first =
    decision.site === 'edge'
      ? reason.edgeReference(task.settingsPath, floor, edgeReference.lightVariant, localVariant!)
      : reason.qualityFloor(task.settingsPath, floor, edgeReference.lightVariant, task.quality.localAgreement);
  return Object.freeze({ ...decision, reasons: Object.freeze([first, ...decision.reasons]) });
}

function placeTask(strategy: PlacementStrategy, task: Task, context: PlacementContext): PlacementDecision {
  const constraint = constrain(task, context);
  const edgeVariant = context.localVariant;
  if (!constraint) {
    const { site, reasons, estimates, shaping, expectedHighMs } = strategy.choose(task, context);
    return { site, edgeVariant, reasons: Object.freeze(reasons), estimates: Object.freeze(estimates), shaping, expectedHighMs, constrained: false };
  }
  const estimates = { strategy: strategy.name, cloudCircuit: context.cloud.state, localVariant: context.localVariant ?? null };
  const plan = constraint.site === 'cloud' && context.cloud.state === 'closed' ? strategy.planCloud?.(task, context) : undefined;
  return {
    site: constraint.site,
    edgeVariant,
    reasons: Object.freeze([...constraint.reasons, ...(plan?.reasons ?? [])]),
    estimates: Object.freeze({ ...estimates, ...plan?.estimates }),
    shaping: plan?.shaping,
    expectedHighMs: plan?.expectedHighMs,
    constrained: true,
  };
}
