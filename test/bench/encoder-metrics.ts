/**
 * The encoder workload's numbers beyond latency: how well each strategy's
 * answers agree with the heavy model, per floor class, the oracle that
 * respects the floors, and the targets of issue 10.
 *
 * Two agreements per answer:
 * - model agreement, what a floor promises: a heavy (reference) answer
 *   agrees by definition, a light one at the light variant's agreement
 *   measured on the whole workload set (one image's label is a coin the
 *   floor does not promise; the set's rate is what it does);
 * - label agreement, as measured: the answer's top-1 label against the
 *   reference's on the unshaped image (so a heavy answer on an image the
 *   cloud path shrank can disagree).
 * Failed requests answer nothing and count in neither.
 */
import type { Quality } from '../../edge/request.js';
import { metricsOf, oracleOf, type PolicyMetrics, type StrategyName } from './metrics.js';
import type { RequestRecord, ReplayResult } from './replay.js';
import { floorMix, floorValue, lightVariant, type EncoderImage } from './encoder-workload.js';
import type { RequestKind } from './workload.js';

export interface EncoderReference {
  /** Heavy top-1 label per image name. */
  heavyTop1: ReadonlyMap<string, string>;
  /** The light variant's agreement measured on the workload's images. */
  lightAgreement: number;
}

export function referenceOf(images: readonly EncoderImage[], lightAgreement: number): EncoderReference {
  return { heavyTop1: new Map(images.map((image) => [image.name, image.heavyTop1])), lightAgreement };
}

export const isLightAnswer = (r: RequestRecord): boolean => r.answeredBy === lightVariant;

/** Whether a light answer may stand under the record's floor, judged by the light variant's measured agreement; a heavy answer always may. */
export function meetsFloor(r: RequestRecord, reference: EncoderReference): boolean {
  if (r.failed || !isLightAnswer(r)) return true;
  const floor = r.floor ?? 'fast';
  return floor !== 'best' && floorValue(floor) <= reference.lightAgreement;
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;
const mean = (values: readonly number[]) => (values.length ? round(values.reduce((a, b) => a + b, 0) / values.length) : null);

export interface FloorClassAgreement {
  floor: Quality;
  requests: number;
  answered: number;
  /** Share answered by the light variant. */
  lightShare: number | null;
  modelAgreement: number | null;
  labelAgreement: number | null;
}

export interface EncoderPolicyMetrics extends PolicyMetrics {
  modelAgreement: number | null;
  labelAgreement: number | null;
  lightShare: number | null;
  byFloor: FloorClassAgreement[];
}

export const floorName = (floor: Quality): string => String(floor);

function agreementOf(records: readonly RequestRecord[], reference: EncoderReference) {
  const answered = records.filter((r) => !r.failed);
  return {
    answered: answered.length,
    lightShare: mean(answered.map((r) => (isLightAnswer(r) ? 1 : 0))),
    modelAgreement: mean(answered.map((r) => (isLightAnswer(r) ? reference.lightAgreement : 1))),
    labelAgreement: mean(answered.map((r) => (r.top1 !== undefined && r.top1 === reference.heavyTop1.get(r.image ?? '') ? 1 : 0))),
  };
}

export function encoderMetricsOf(records: readonly RequestRecord[], uplinkBytes: number, reference: EncoderReference): EncoderPolicyMetrics {
  const { lightShare, modelAgreement, labelAgreement } = agreementOf(records, reference);
  const byFloor = floorMix.map(({ floor }) => {
    const ofClass = records.filter((r) => floorName(r.floor ?? 'fast') === floorName(floor));
    return { floor, requests: ofClass.length, ...agreementOf(ofClass, reference) };
  });
  return { ...metricsOf(records, uplinkBytes), modelAgreement, labelAgreement, lightShare, byFloor };
}

/** The oracle of metrics.ts, taking a light answer only where the request's floor lets it stand. */
export function encoderOracleOf(local: ReplayResult, cloud: ReplayResult, offloadBytes: Partial<Record<RequestKind, number>>, reference: EncoderReference) {
  return oracleOf(local, cloud, offloadBytes, (r) => meetsFloor(r, reference));
}

export interface EncoderGroupOutcome {
  name: string;
  policies: Partial<Record<StrategyName | 'oracle', EncoderPolicyMetrics>>;
}

export interface EncoderTargetSummary {
  adaptiveOverOracleP95: { target: number; worst: number | null; met: boolean; groups: { group: string; ratio: number }[] };
  /** Per group and floor class, adaptive's model agreement against the floor's value. */
  adaptiveAgreementMeetsFloor: { met: boolean; shortfalls: { group: string; floor: string; modelAgreement: number; floorValue: number }[]; checked: number };
}

export function summarizeEncoderTargets(groups: readonly EncoderGroupOutcome[]): EncoderTargetSummary {
  const ratios = groups
    .filter((g) => g.policies.adaptive && g.policies.oracle)
    .map((g) => ({ group: g.name, ratio: round(g.policies.adaptive!.p95Ms / g.policies.oracle!.p95Ms) }));
  const worst = ratios.length ? Math.max(...ratios.map((r) => r.ratio)) : null;
  const shortfalls: EncoderTargetSummary['adaptiveAgreementMeetsFloor']['shortfalls'] = [];
  let checked = 0;
  for (const group of groups) {
    for (const cls of group.policies.adaptive?.byFloor ?? []) {
      if (cls.modelAgreement === null) continue;
      checked++;
      if (cls.modelAgreement < floorValue(cls.floor)) shortfalls.push({ group: group.name, floor: floorName(cls.floor), modelAgreement: cls.modelAgreement, floorValue: floorValue(cls.floor) });
    }
  }
  return {
    adaptiveOverOracleP95: { target: 1.15, worst, met: worst !== null && worst <= 1.15, groups: ratios },
    adaptiveAgreementMeetsFloor: { met: checked > 0 && shortfalls.length === 0, shortfalls, checked },
  };
}
