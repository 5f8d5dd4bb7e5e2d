/** What a benchmark run finds: the shape of policy.json, which write-results.ts writes. */
import type { PolicyMetrics, StrategyName, TargetSummary } from './metrics.js';
import type { StepReport } from './step-scenario.js';

export interface FixedOcrTiming {
  /** The request timed: one image, run alone, the link unconstrained. */
  kind: string;
  /** Time inside the model on the throttled edge, and in the cloud (server-reported compute): the faster of two runs each. */
  edgeComputeMs: number | null;
  cloudComputeMs: number | null;
  /** edge / cloud: the compute-speed ratio this group actually ran at. */
  ratio: number | null;
}

export interface GroupConditions {
  traceSet: string;
  trace: string;
  /** Where in the trace the replay starts (looped when the replay is longer). */
  traceOffsetS: number;
  /** Mean uplink capacity over the replay's duration. */
  uplinkMeanMbps: number;
  rttMs: number;
  jitterMs: number;
  edgeLoad: 'idle' | 'busy';
  /** 1 / duty share of the agent's CPU quota. */
  nominalRatio: number;
  dutyShare: number;
  throttlePeriodMs: number;
  fixedOcr: FixedOcrTiming;
  /** What `static-profile` was given (from this group's always-local and always-cloud replays, at the trace set's median bandwidth). */
  staticProfile: Record<string, unknown>;
}

export interface GroupResult {
  name: string;
  conditions: GroupConditions;
  policies: Partial<Record<StrategyName | 'oracle', PolicyMetrics>>;
}

export interface RunSetup {
  mode: 'quick' | 'full' | 'step';
  seed: number;
  requestsPerReplay: number;
  meanGapMs: number;
  requestMix: unknown;
  tracesDir: string;
  cpus: number;
  pinning: string;
  throttle: string;
  node: string;
}

export interface BenchResults {
  generatedAt: string;
  runSeconds: number;
  setup: RunSetup;
  groups: GroupResult[];
  summary: TargetSummary & { stepAdaptation: StepReport | null };
  /** Anything the run could not do, in words. */
  notes: string[];
}

export const plottedSeries = ['adaptive', 'always-local', 'always-cloud', 'confidence', 'static-profile', 'oracle'] as const;
