/**
 * The placement interface: a strategy decides, per task, whether it runs on the
 * edge or in the cloud, and says why. Strategies register by name (as grpc-js
 * load balancers do), so the latency-aware policy drops in next to `rules`
 * without a central switch.
 */
import { Registry } from '../../shared/registry.js';
import type { EdgeConfig } from '../config.js';
import type { OffloadAnswer } from '../offload-client.js';
import type { Site, TaskTimings } from '../request.js';
import type { Task } from '../tasks.js';
import type { PlacementEstimators } from './estimators.js';
import type { InputSize } from './input-size.js';
import type { ShapingOption } from './payload-estimator.js';

/** Circuit-breaker view of the cloud tier (closed: offload; open/half-open: do not count on it). */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CloudHealth {
  state: CircuitState;
  consecutiveFailures: number;
  /** Why the circuit is not closed (or the last failure), for `why` sentences. */
  lastError?: string;
}

export interface PlacementContext {
  cloud: CloudHealth;
  /** The variant the edge runs locally for this task's modality; undefined when there is none. */
  localVariant: string | undefined;
  config: EdgeConfig;
  /** What latency-aware strategies estimate from; the agent always sets both. */
  estimators?: PlacementEstimators;
  inputSize?: InputSize;
}

export interface PlacementDecision {
  site: Site;
  /** A readable sentence, reported in the response's placement. */
  why: string;
  /** The inputs the decision used. */
  estimates: Record<string, unknown>;
  /** How to shrink an image offloaded to the cloud; default: config offload.imageMaxSide / jpegQuality. */
  shaping?: ShapingOption;
  /** The decision's high estimate of the chosen path (ms): the agent leaves the cloud at least this much of the deadline. */
  expectedHighMs?: number;
}

/** What the offload client measured for one answered item. */
export type CloudItemMeasurement = Pick<OffloadAnswer, 'sentBytes' | 'linkMs' | 'queueMs' | 'computeMs' | 'prepareMs' | 'shrink'>;

/**
 * What happened to a placed task, with what each site measured: the
 * estimators learn from it, then the strategy's `observe` sees it.
 */
export interface PlacementOutcome {
  site: Site;
  timings: TaskTimings;
  failed: boolean;
  inputSize?: InputSize;
  /** Per item, time inside the local model, when the edge ran the task. */
  localItemComputeMs?: number[];
  /** Per item, when the cloud answered. */
  cloudItems?: CloudItemMeasurement[];
  /** How long the cloud was waited for when it did not answer within its budget. */
  cloudTimeoutMs?: number;
  /** The uplink wait predicted when the task was sent: part of its link time that is neither RTT nor its own upload. */
  uplinkWaitMs?: number;
}

export interface PlacementStrategy {
  readonly name: string;
  decide(task: Task, context: PlacementContext): PlacementDecision | Promise<PlacementDecision>;
  observe?(task: Task, outcome: PlacementOutcome): void;
  /**
   * After a task ran on the edge: a reason to run it in the cloud as well
   * (whose answer then replaces the edge's), or undefined to keep the edge's.
   */
  escalate?(task: Task, edgeResult: unknown): string | undefined;
}

export type PlacementStrategyFactory = (config: EdgeConfig) => PlacementStrategy;

const factories = new Registry<PlacementStrategyFactory>({ kind: 'placement strategy', hint: 'import its module before starting the agent' });

export function registerPlacementStrategy(name: string, factory: PlacementStrategyFactory): void {
  factories.register(name, factory);
}

export function createPlacementStrategy(name: string, config: EdgeConfig): PlacementStrategy {
  return factories.get(name)(config);
}
