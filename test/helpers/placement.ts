/**
 * Placement decisions on fixed inputs, the way the task runner makes them
 * (constraint step, then the strategy), with real estimators on hooks the
 * test controls.
 */
import { loadEdgeConfig, type EdgeConfig } from '../../edge/config.js';
import type { CloudHealth } from '../../edge/offload/circuit-breaker.js';
import { decidePlacement, type PlacementDecision } from '../../edge/policy/constraints.js';
import { idleDevice } from '../../edge/policy/device-load.js';
import { PlacementEstimators } from '../../edge/policy/estimators.js';
import type { InputSize } from '../../edge/policy/input-size.js';
import type { ReasonCode } from '../../edge/policy/reasons.js';
import '../../edge/policy/strategies.js';
import { createPlacementStrategy, type PlacementContext, type PlacementStrategy } from '../../edge/policy/strategy.js';
import type { AgentRequest, Modality, Site } from '../../edge/request.js';
import { splitRequest, type Task } from '../../edge/tasks.js';
import { loadCatalog, type Catalog } from '../../shared/catalog.js';

export const healthyCloud: CloudHealth = { state: 'closed', consecutiveFailures: 0 };
export const unreachableCloud: CloudHealth = { state: 'open', consecutiveFailures: 3, lastError: 'unreachable (UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:9)' };

const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]);
const inputsOf: Record<Modality, Record<string, unknown>> = {
  text: { text: 'Where is my order?' },
  audio: { audio: new Uint8Array(64) },
  image: { image: png },
  video: { video: [png] },
};
const sizeOf: Record<Modality, InputSize> = {
  text: { unit: 'text-bytes', items: [{ amount: 18, bytes: 18 }] },
  audio: { unit: 'audio-seconds', items: [{ amount: 0.002, bytes: 64 }] },
  image: { unit: 'pixels', items: [{ amount: 1600 * 1200, bytes: 900_000, width: 1600, height: 1200 }] },
  video: { unit: 'pixels', items: [{ amount: 1600 * 1200, bytes: 900_000, width: 1600, height: 1200 }] },
};

let catalog: Catalog | undefined;

/** Estimators with nothing measured yet, whose probes answer in 20 ms. */
export function idleEstimators(config: EdgeConfig, clock?: () => number): PlacementEstimators {
  catalog ??= loadCatalog();
  return new PlacementEstimators(
    config.policy,
    catalog,
    config.offload,
    { probeRoundTripMs: async () => 20, localItemsAhead: () => 0, slowdown: () => idleDevice },
    clock,
  );
}

/** What a test request may add: the task it asks of an image and its quality floors. */
export type RequestExtras = Pick<AgentRequest, 'task' | 'quality'>;

export function placementTask(config: EdgeConfig, modality: Modality, options: { prefer?: Site; deadlineMs?: number; now?: number; extras?: RequestExtras } = {}): Task {
  const request = { id: 'p1', inputs: inputsOf[modality], deadlineMs: options.deadlineMs, prefer: options.prefer && { [modality]: options.prefer }, ...options.extras };
  return splitRequest(request, config, options.now).tasks[0]!;
}

export interface Placer {
  config: EdgeConfig;
  strategy: PlacementStrategy;
  /** `localVariant` null: the modality has none; `edgeReference` and `referenceUnavailable` as the task runner sets them (PlacementContext). */
  place(
    modality: Modality,
    options?: { prefer?: Site; cloud?: CloudHealth; localVariant?: string | null; extras?: RequestExtras } & Pick<PlacementContext, 'edgeReference' | 'referenceUnavailable'>,
  ): PlacementDecision;
}

/** A strategy by name on a config with `overrides`, deciding as the task runner does. */
export function placer(strategyName: string, overrides: Record<string, unknown> = {}): Placer {
  const config = loadEdgeConfig(undefined, overrides);
  const strategy = createPlacementStrategy(strategyName, config);
  const estimators = idleEstimators(config);
  return {
    config,
    strategy,
    place: (modality, { prefer, cloud = healthyCloud, localVariant = 'fp32', extras, edgeReference, referenceUnavailable } = {}) =>
      decidePlacement(strategy, placementTask(config, modality, { prefer, extras }), {
        cloud,
        localVariant: localVariant ?? undefined,
        edgeReference,
        referenceUnavailable,
        estimators,
        inputSize: sizeOf[modality],
      }),
  };
}

export const codesOf = (decision: PlacementDecision): ReasonCode[] => decision.reasons.map((r) => r.code);
