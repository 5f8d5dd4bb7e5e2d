/**
 * How the adaptive strategy explains itself: the comparison in words for
 * `why` ("cloud at 960px q75 120 ms (rtt 40 + upload 60 + queue 5 + compute
 * 15) vs edge 310 ms (queue 0 + compute 310): cloud is faster", with
 * `uplink wait` and `overdue` parts when they apply), and the
 * numbers per path and option for `estimates`, rounded and JSON-safe (an
 * unknown value is left out, never NaN or Infinity).
 */
import type { CircuitState } from '../offload/circuit-breaker.js';
import type { CloudCompletion, EdgeCompletion } from './estimators.js';
import type { InputSize } from './input-size.js';
import type { LinkSnapshot } from './link-estimator.js';

const ms = (value: number) => Math.round(value);
const round1 = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? undefined : Math.round(value * 10) / 10);

export function cloudLabel(completion: CloudCompletion): string {
  return completion.option ? `cloud at ${completion.option.name}` : 'cloud';
}

export function describeCloud(completion: CloudCompletion): string {
  const { prepareMs, rttMs = 0, waitMs, uploadMs = 0, queueMs = 0, computeMs = 0, overdueMs } = completion.parts;
  const parts = [`rtt ${ms(rttMs)}`, `upload ${ms(uploadMs)}`, `queue ${ms(queueMs)}`, `compute ${ms(computeMs)}`];
  if (waitMs >= 1) parts.splice(1, 0, `uplink wait ${ms(waitMs)}`);
  if (completion.option) parts.unshift(`shrink ${ms(prepareMs)}`);
  if (overdueMs >= 1) parts.push(`overdue ${ms(overdueMs)}`);
  return `${cloudLabel(completion)} ${ms(completion.expectedMs ?? Number.NaN)} ms (${parts.join(' + ')})`;
}

export function describeEdge(edge: EdgeCompletion): string {
  const { queueMeanMs, computeMeanMs, slowdown } = edge.detail;
  const load = slowdown.factor > 1.05 ? `, ${slowdown.factor.toFixed(1)}× for device load` : '';
  return `edge ${ms(edge.expectedMs)} ms (queue ${ms(queueMeanMs)} + compute ${ms(computeMeanMs)}${load})`;
}

export interface ReportInputs {
  deadlineMs: number;
  remainingMs: number;
  inputSize: InputSize;
  edge: EdgeCompletion | undefined;
  /** Why there is no edge estimate, when there is none. */
  edgeAbsent: string;
  cloud: readonly CloudCompletion[];
  accuracyFloor: number;
  link: LinkSnapshot;
  cloudCircuit: CircuitState;
}

/** The numbers behind a decision, for the response's placement.estimates. */
export function estimatesReport(inputs: ReportInputs): Record<string, unknown> {
  const { edge, remainingMs } = inputs;
  return {
    strategy: 'adaptive',
    deadlineMs: inputs.deadlineMs,
    remainingMs: round1(remainingMs),
    input: { unit: inputs.inputSize.unit, items: inputs.inputSize.items.map((item) => round1(item.amount) ?? null) },
    edge: edge
      ? {
          expectedMs: round1(edge.expectedMs),
          highMs: round1(edge.highMs),
          queueMs: round1(edge.detail.queueMeanMs),
          computeMs: round1(edge.detail.computeMeanMs),
          itemsAhead: edge.detail.itemsAhead,
          deviceSlowdown: round1(edge.detail.slowdown.factor),
          basis: edge.detail.basis,
          ageMs: round1(edge.detail.ageMs),
          meetsDeadline: edge.highMs <= remainingMs,
        }
      : { unavailable: inputs.edgeAbsent },
    cloud: inputs.cloud.map((c) =>
      dropUndefined({
        option: c.option?.name ?? 'as sent',
        accuracy: Math.round(c.accuracy * 1e4) / 1e4,
        belowAccuracyFloor: c.accuracy < inputs.accuracyFloor - 1e-9 || undefined,
        payloadBytes: c.payloadBytes,
        expectedMs: round1(c.expectedMs),
        highMs: round1(c.highMs),
        prepareMs: c.option ? round1(c.parts.prepareMs) : undefined,
        rttMs: round1(c.parts.rttMs),
        uplinkWaitMs: c.parts.waitMs >= 1 ? round1(c.parts.waitMs) : undefined,
        uploadMs: round1(c.parts.uploadMs),
        queueMs: round1(c.parts.queueMs),
        computeMs: round1(c.parts.computeMs),
        overdueMs: c.parts.overdueMs >= 1 ? round1(c.parts.overdueMs) : undefined,
        meetsDeadline: c.highMs === undefined ? undefined : c.highMs <= remainingMs,
        missing: c.missing.length > 0 ? c.missing : undefined,
      }),
    ),
    link: dropUndefined({
      rttMs: round1(inputs.link.rttMs),
      rttAgeMs: round1(inputs.link.rttAgeMs),
      uplinkMbps: round1(inputs.link.uplinkMbps),
      uplinkAgeMs: round1(inputs.link.uplinkAgeMs),
    }),
    cloudCircuit: inputs.cloudCircuit,
    accuracyFloor: inputs.accuracyFloor,
  };
}

function dropUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}
