/**
 * The placement interface. The constraint step (constraints.ts) runs first
 * for every strategy: pins, the request's `prefer`, a cloud that is down and
 * a missing local variant decide outright. A strategy decides only the tasks
 * left free, and says why in reason codes (reasons.ts). Strategies register
 * by name (as grpc-js load balancers do) and get the config once, from their
 * factory.
 */
import { Registry } from '../../shared/registry.js';
import type { EdgeConfig } from '../config.js';
import type { CloudHealth } from '../offload/circuit-breaker.js';
import type { ShapingOption } from '../offload/image-shaping.js';
import type { Site } from '../request.js';
import type { Task } from '../tasks.js';
import type { PlacementEstimators } from './estimators.js';
import type { InputSize } from './input-size.js';
import type { PlacementOutcome } from './outcome.js';
import type { Reason } from './reasons.js';

export interface PlacementContext {
  cloud: CloudHealth;
  /** The variant the edge runs locally for this task's modality; undefined when there is none. */
  localVariant: string | undefined;
  /**
   * Set when the task's quality floor rules its light local variant out and
   * the device holds the model's reference variant (config `localReference`):
   * `localVariant` is then that reference, and this names the light one.
   */
  edgeReference?: { lightVariant: string };
  /** Why the device does not hold the reference variant that could have stood in for a light one the floor rules out. */
  referenceUnavailable?: Reason;
  estimators: PlacementEstimators;
  inputSize: InputSize;
}

/** How to run a task in the cloud, beyond the site. */
export interface CloudPlan {
  /** How to shape an image offloaded to the cloud; default: config offload.imageMaxSide / jpegQuality. */
  shaping?: ShapingOption;
  /** The high estimate of the cloud path (ms): the runner leaves the cloud at least this much of the deadline. */
  expectedHighMs?: number;
}

export interface StrategyChoice extends CloudPlan {
  site: Site;
  reasons: Reason[];
  /** The inputs the decision used. */
  estimates: Record<string, unknown>;
}

/** What the edge answered, for a strategy that reviews it. */
export interface EdgeAnswer {
  result: unknown;
}

/** Runs the task in the cloud within `budgetMs` and answers its result (the runner's, for `review`). */
export type AskCloud = (budgetMs: number) => Promise<{ result: unknown }>;

/** What a review did: the reason it asked the cloud, and the cloud's result when it replaces the edge's. */
export interface Review {
  reason: Reason;
  outcome: 'cloud-answered' | 'cloud-failed' | 'no-time';
  /** The cloud's failure, when it failed. */
  error?: { code: string; message: string };
  cloudResult?: unknown;
}

export interface PlacementStrategy {
  readonly name: string;
  /** Places a task no constraint decided. */
  choose(task: Task, context: PlacementContext): StrategyChoice;
  /** For a task the constraints sent to the cloud: how to shape it, and the estimates behind that. */
  planCloud?(task: Task, context: PlacementContext): CloudPlan & { estimates: Record<string, unknown>; reasons: Reason[] };
  /** After the edge answered a freely placed task: whether to ask the cloud too, whose answer then replaces the edge's. */
  review?(task: Task, edge: EdgeAnswer, askCloud: AskCloud): Promise<Review | undefined>;
  observe?(task: Task, outcome: PlacementOutcome): void;
}

export type PlacementStrategyFactory = (config: EdgeConfig) => PlacementStrategy;

const factories = new Registry<PlacementStrategyFactory>({ kind: 'placement strategy', hint: 'import its module before starting the agent' });

export function registerPlacementStrategy(name: string, factory: PlacementStrategyFactory): void {
  factories.register(name, factory);
}

export function createPlacementStrategy(name: string, config: EdgeConfig): PlacementStrategy {
  return factories.get(name)(config);
}
