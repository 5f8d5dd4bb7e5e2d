/**
 * The placement interface: a strategy decides, per task, whether it runs on the
 * edge or in the cloud, and says why. Strategies register by name (as grpc-js
 * load balancers do), so the latency-aware policy drops in next to `rules`
 * without a central switch.
 */
import type { EdgeConfig } from '../config.js';
import type { Site, TaskTimings } from '../request.js';
import type { Task } from '../tasks.js';

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
}

export interface PlacementDecision {
  site: Site;
  /** A readable sentence, reported in the response's placement. */
  why: string;
  /** The inputs the decision used. */
  estimates: Record<string, unknown>;
}

/** What happened to a placed task, fed back so learning strategies can update their estimates. */
export interface PlacementOutcome {
  site: Site;
  timings: TaskTimings;
  failed: boolean;
}

export interface PlacementStrategy {
  readonly name: string;
  decide(task: Task, context: PlacementContext): PlacementDecision | Promise<PlacementDecision>;
  observe?(task: Task, outcome: PlacementOutcome): void;
}

export type PlacementStrategyFactory = (config: EdgeConfig) => PlacementStrategy;

const factories = new Map<string, PlacementStrategyFactory>();

export function registerPlacementStrategy(name: string, factory: PlacementStrategyFactory): void {
  if (factories.has(name)) throw new Error(`placement strategy '${name}' is registered twice`);
  factories.set(name, factory);
}

export function createPlacementStrategy(name: string, config: EdgeConfig): PlacementStrategy {
  const factory = factories.get(name);
  if (!factory) {
    throw new Error(`unknown placement strategy '${name}' (registered: ${[...factories.keys()].join(', ') || 'none'}) — import its module before starting the agent`);
  }
  return factory(config);
}
