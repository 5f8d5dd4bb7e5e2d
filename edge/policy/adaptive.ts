/**
 * The `adaptive` strategy: per task, the expected completion time on the
 * edge against the cloud for each payload-shaping option of its model, from
 * the estimators (estimators.ts has the formula).
 *
 * 1. Constraints first (constraints.ts): a config pin, the request's
 *    `prefer`, a missing local variant, or a cloud whose circuit is not
 *    closed decide the side; a task sent to the cloud that way still gets the
 *    fastest shaping option (`planCloud`).
 * 2. Cloud options below `accuracyFloor` (raised by the request's quality
 *    floor: constraints.ts shapingFloor) are out; of the rest, the fastest
 *    (mean) among those whose high estimate meets the deadline, else the
 *    fastest.
 * 3. If only one side is expected to meet the deadline, that side. Otherwise
 *    the faster side, but a modality only switches sides when the other is
 *    faster by the `hysteresis` share, so near-equal estimates do not flap.
 *    Until both sides have estimates, a modality stays where it was (at first
 *    where config places it). A task whose floor left the edge only the
 *    reference variant it holds compares that variant's own estimate, and
 *    remembers where it ran apart from the light variant's tasks.
 * 4. Exploration: the path not chosen runs instead for at most `exploreShare`
 *    of the tasks decided here (a hard budget, not just a probability),
 *    first when its estimate is missing, stale, or only scaled from other
 *    input sizes, otherwise at random (seeded), and only when its high
 *    estimate still meets the deadline; a cloud with no estimate yet only
 *    when the deadline leaves room for a retry on the edge.
 */
import { seededRandom } from '../../shared/seeded-random.js';
import type { EdgeConfig, PolicyConfig } from '../config.js';
import type { Site } from '../request.js';
import type { Task } from '../tasks.js';
import { cloudLabel, describeCloud, describeEdge, estimatesReport } from './decision-report.js';
import { shapingFloor } from './constraints.js';
import type { CloudCompletion, EdgeCompletion } from './estimators.js';
import { reason, where, type Reason } from './reasons.js';
import { registerPlacementStrategy, type CloudPlan, type PlacementContext, type PlacementStrategy, type StrategyChoice } from './strategy.js';
import { monotonicClock, type Clock } from './window-stats.js';

export const adaptiveStrategyName = 'adaptive';

export type AdaptiveSettings = Pick<PolicyConfig, 'accuracyFloor' | 'hysteresis' | 'exploreShare' | 'staleAfterMs' | 'seed'>;

const percent = (share: number) => `${Math.round(share * 100)}%`;

/** Fastest by mean among options meeting the deadline, else fastest overall; undefined while none has an estimate. */
function fastestCloud(options: readonly CloudCompletion[], remainingMs: number): CloudCompletion | undefined {
  const known = options.filter((c) => c.expectedMs !== undefined).sort((a, b) => a.expectedMs! - b.expectedMs!);
  return known.find((c) => c.highMs! <= remainingMs) ?? known[0];
}

export class AdaptiveStrategy implements PlacementStrategy {
  readonly name = adaptiveStrategyName;
  /** Where each task (by settings path: `image`, `image.encode`; `image.encode@fp32` for the reference on the edge) ran last. */
  private readonly lastSite = new Map<string, Site>();
  private readonly random: () => number;
  private decided = 0;
  private explored = 0;

  constructor(
    private readonly settings: AdaptiveSettings,
    private readonly clock: Clock = monotonicClock,
  ) {
    this.random = seededRandom(settings.seed);
  }

  /** Tasks this strategy was free to place, and how many of them explored the other path. */
  explorationCounts(): { decided: number; explored: number } {
    return { decided: this.decided, explored: this.explored };
  }

  /** For a task the constraints sent to the cloud: the fastest shaping within the accuracy floor. */
  planCloud(task: Task, context: PlacementContext): CloudPlan & { estimates: Record<string, unknown>; reasons: Reason[] } {
    const { cloudChoice, bestCloud, estimates } = this.assess(task, context);
    return {
      shaping: cloudChoice.option,
      expectedHighMs: cloudChoice.highMs,
      estimates: { ...estimates, chosen: cloudChoice.option?.name ?? 'cloud' },
      reasons: bestCloud ? [reason.estimated('shaped', describeCloud(bestCloud))] : [],
    };
  }

  choose(task: Task, context: PlacementContext): StrategyChoice {
    const { edge, bestCloud, cloudChoice, estimates, remainingMs } = this.assess(task, context);
    const choice = (site: Site, reasons: Reason[], extra: Record<string, unknown>): StrategyChoice => {
      const chosen = site === 'cloud' ? cloudChoice : edge;
      return {
        site,
        reasons,
        estimates: { ...estimates, ...extra, chosen: site === 'cloud' ? (cloudChoice.option?.name ?? 'cloud') : 'edge' },
        shaping: site === 'cloud' ? cloudChoice.option : undefined,
        expectedHighMs: chosen?.highMs,
      };
    };
    this.decided++;
    // Before any estimate, a task starts where config places it.
    const key = context.edgeReference ? `${task.settingsPath}@${context.localVariant}` : task.settingsPath;
    const previous = this.lastSite.get(key) ?? task.settings.placement;
    const { site, reason: compared } = this.compare(task, previous, edge, bestCloud, cloudChoice, remainingMs);
    this.lastSite.set(key, site);
    const other: Site = site === 'edge' ? 'cloud' : 'edge';
    const exploring = this.explorationReason(other, edge, bestCloud, remainingMs);
    if (!exploring) return choice(site, [compared], { previous, explored: false });
    this.explored++;
    return choice(other, [reason.estimated('exploring', `exploring ${where(other)} (${exploring})`), compared], { previous, explored: true });
  }

  /** The estimates of both paths for this task, and the cloud option to use. */
  private assess(task: Task, context: PlacementContext) {
    const { estimators, inputSize, cloud, localVariant } = context;
    if (cloud.state === 'closed') void estimators.refreshLink();
    const remainingMs = task.deadlineAt - this.clock();
    const edge = localVariant ? estimators.edge(task, inputSize, localVariant) : undefined;
    const cloudOptions = estimators.cloudOptions(task, inputSize);
    const accuracyFloor = shapingFloor(task, this.settings.accuracyFloor);
    const withinFloor = cloudOptions.filter((c) => c.accuracy >= accuracyFloor - 1e-9);
    const mostAccurate = Math.max(...cloudOptions.map((c) => c.accuracy));
    const allowed = withinFloor.length > 0 ? withinFloor : cloudOptions.filter((c) => c.accuracy === mostAccurate);
    const bestCloud = fastestCloud(allowed, remainingMs);
    // Without cloud estimates, the option sending the fewest bytes is the cheapest way to learn them.
    const cloudChoice = bestCloud ?? [...allowed].sort((a, b) => a.payloadBytes - b.payloadBytes)[0]!;
    const estimates = estimatesReport({
      deadlineMs: task.deadlineMs,
      remainingMs,
      inputSize,
      edge,
      edgeAbsent: localVariant ? 'no local run of this size measured yet' : 'no local variant',
      cloud: cloudOptions,
      accuracyFloor,
      link: estimators.link.snapshot(),
      cloudCircuit: cloud.state,
    });
    return { edge, bestCloud, cloudChoice, estimates, remainingMs };
  }

  /** Steps 3 of the header: deadline, then speed with hysteresis against where the modality ran last. */
  private compare(
    task: Task,
    previous: Site,
    edge: EdgeCompletion | undefined,
    bestCloud: CloudCompletion | undefined,
    cloudChoice: CloudCompletion,
    remainingMs: number,
  ): { site: Site; reason: Reason } {
    if (!edge) return { site: previous, reason: reason.estimated('no-estimate', `no edge estimate for this input yet, so it stays ${where(previous)}`) };
    if (!bestCloud) {
      return { site: previous, reason: reason.estimated('no-estimate', `no ${cloudLabel(cloudChoice)} estimate yet (${cloudChoice.missing.join(', ')} not measured), so it stays ${where(previous)}`) };
    }
    const comparison = `${describeCloud(bestCloud)} vs ${describeEdge(edge)}`;
    const edgeMeets = edge.highMs <= remainingMs;
    const cloudMeets = bestCloud.highMs! <= remainingMs;
    const deadline = `the ${task.deadlineMs} ms deadline (${Math.round(remainingMs)} ms left)`;
    if (edgeMeets !== cloudMeets) {
      const site: Site = edgeMeets ? 'edge' : 'cloud';
      return { site, reason: reason.estimated('only-meets-deadline', `${comparison}: only the ${site} is expected to meet ${deadline}`) };
    }
    const neither = edgeMeets ? '' : `; neither is expected to meet ${deadline}`;
    const faster: Site = bestCloud.expectedMs! < edge.expectedMs ? 'cloud' : 'edge';
    if (faster === previous) return { site: faster, reason: reason.estimated('faster', `${comparison}: ${faster} is faster${neither}`) };
    const [fasterMs, previousMs] = faster === 'cloud' ? [bestCloud.expectedMs!, edge.expectedMs] : [edge.expectedMs, bestCloud.expectedMs!];
    if (fasterMs <= previousMs * (1 - this.settings.hysteresis)) return { site: faster, reason: reason.estimated('faster', `${comparison}: ${faster} is faster${neither}`) };
    return {
      site: previous,
      reason: reason.estimated(
        'within-hysteresis',
        `${comparison}: ${faster} is faster, but by less than the ${percent(this.settings.hysteresis)} hysteresis margin, so it stays ${where(previous)}${neither}`,
      ),
    };
  }

  /** Why to run this task on the path not chosen, or undefined; see step 4 of the header. */
  private explorationReason(other: Site, edge: EdgeCompletion | undefined, bestCloud: CloudCompletion | undefined, remainingMs: number): string | undefined {
    const { exploreShare, staleAfterMs } = this.settings;
    // Drawn on every free decision, so the sequence depends only on the seed and the number of decisions.
    const draw = this.random();
    if (this.explored + 1 > exploreShare * this.decided) return undefined;
    const estimate = other === 'edge' ? edge : bestCloud;
    if (estimate) {
      if (estimate.highMs! > remainingMs) return undefined;
    } else if (other === 'edge' || !edge || remainingMs < 2 * edge.highMs) {
      return undefined;
    }
    if (!estimate) return 'it has no estimate yet';
    const { ageMs, basis } = other === 'edge' ? edge!.detail : bestCloud!;
    if (ageMs > staleAfterMs) return `its newest sample is ${(ageMs / 1000).toFixed(1)} s old`;
    if (basis === 'scaled') return 'no input of this size has run there yet';
    return draw < exploreShare ? `a random ${percent(exploreShare)} share of tasks keeps its estimate fresh` : undefined;
  }
}

registerPlacementStrategy(adaptiveStrategyName, (config: EdgeConfig) => new AdaptiveStrategy(config.policy));
