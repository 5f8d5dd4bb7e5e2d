/**
 * The step-change scenario: under `adaptive`, a steady stream (every
 * `slotMs`: an image, a text, an audio clip, in turn) while the uplink runs at
 * 20 Mbit/s, steps down to 0.5 Mbit/s at a known time, (in a full run) comes
 * back, then drops out entirely. For each link event and modality it reports
 * when placement changed: the first request after the event that the
 * strategy placed on the other side (not by exploration, and not a cloud
 * task retried locally after failing), how long after the event it was
 * published, and how many requests of that modality were placed on the old
 * side (and how many missed their deadline) before.
 */
import type { Modality, Site } from '../../edge/request.js';
import { percentile } from '../../shared/percentile.js';
import { traceFromSamples, type BandwidthTrace } from '../helpers/bandwidth-trace.js';
import { effectiveLatencyMs } from './metrics.js';
import type { RequestRecord } from './replay.js';
import { inputsFor, requestMix, type InputLibrary, type OcrKind, type WorkloadRequest } from './workload.js';

export interface StepPlan {
  beforeMbps: number;
  afterMbps: number;
  stepAtS: number;
  /** Back to `beforeMbps`. */
  recoverAtS?: number;
  /** No bytes flow either way (connections stall, as when coverage is lost). */
  outage?: { startS: number; endS: number };
  endS: number;
  rttMs: number;
  slotMs: number;
}

export const fullStepPlan: StepPlan = { beforeMbps: 20, afterMbps: 0.5, stepAtS: 15, recoverAtS: 35, outage: { startS: 50, endS: 60 }, endS: 70, rttMs: 80, slotMs: 333 };
export const quickStepPlan: StepPlan = { beforeMbps: 20, afterMbps: 0.5, stepAtS: 8, outage: { startS: 16, endS: 22 }, endS: 26, rttMs: 80, slotMs: 333 };

const cycle: readonly OcrKind[] = ['image-1280', 'text', 'audio'];
const watched: readonly Modality[] = ['image', 'audio'];

export function stepWorkload(library: InputLibrary, plan: StepPlan): WorkloadRequest[] {
  const requests: WorkloadRequest[] = [];
  for (let index = 0; index * plan.slotMs < plan.endS * 1000; index++) {
    const kind = cycle[index % cycle.length]!;
    const spec = requestMix.find((s) => s.kind === kind)!;
    requests.push({ index, sendAtMs: index * plan.slotMs, kind, modality: spec.modality, inputs: inputsFor(kind, library, index), deadlineMs: spec.deadlineMs });
  }
  return requests;
}

export function stepTraceOf(plan: StepPlan): BandwidthTrace {
  const samples = [
    { timeS: 0, mbps: plan.beforeMbps },
    { timeS: plan.stepAtS, mbps: plan.afterMbps },
    ...(plan.recoverAtS === undefined ? [] : [{ timeS: plan.recoverAtS, mbps: plan.beforeMbps }]),
  ];
  return traceFromSamples(`step-${plan.beforeMbps}-to-${plan.afterMbps}Mbps`, samples, false);
}

interface LinkEvent {
  name: string;
  atS: number;
  untilS: number;
  /** The cloud cannot be reached from this event on: the edge is the right side. */
  cloudDown: boolean;
}

function eventsOf(plan: StepPlan): LinkEvent[] {
  const events: Omit<LinkEvent, 'untilS'>[] = [{ name: `uplink ${plan.beforeMbps} → ${plan.afterMbps} Mbit/s`, atS: plan.stepAtS, cloudDown: false }];
  if (plan.recoverAtS !== undefined) events.push({ name: `uplink ${plan.afterMbps} → ${plan.beforeMbps} Mbit/s`, atS: plan.recoverAtS, cloudDown: false });
  if (plan.outage) {
    events.push({ name: `outage (${plan.outage.endS - plan.outage.startS} s, connections stall)`, atS: plan.outage.startS, cloudDown: true });
    events.push({ name: 'outage ends', atS: plan.outage.endS, cloudDown: false });
  }
  return events.map((event, i) => ({ ...event, untilS: events[i + 1]?.atS ?? plan.endS }));
}

/**
 * Whether placement did the right thing after an event, in hindsight: the
 * right side is the edge when the cloud went down, otherwise the side whose
 * requests after the event were answered faster (p50), when both were
 * measured (at least `minSamples` each) and one was faster by more than
 * `tieShare`, the policy's default hysteresis: a smaller difference is a tie,
 * which no placement should chase.
 */
export type Verdict =
  | 'switched in time'
  | 'switched late'
  | 'switched, but the old side stayed faster'
  | 'switched (the old side was not measured after)'
  | 'stayed, and the old side stayed faster'
  | 'stayed, although the other side was faster'
  | 'stayed (the other side was not measured after)';

/** Verdicts that fail the target: a warranted switch that came late or never. */
const failing: ReadonlySet<Verdict> = new Set<Verdict>(['switched late', 'stayed, although the other side was faster']);

export interface ModalityAdaptation {
  /** Where the strategy placed the modality (most of it, exploration aside) in the 5 s before the event. */
  sideBefore: Site | null;
  /** The first request after the event placed by choice on the other side; null when none was. */
  switchedAfterMs: number | null;
  verdict: Verdict | null;
  /** Requests of this modality published after the event and before that one (all on the old side). */
  placedOnOldSideBeforeSwitch: number;
  missedBeforeSwitch: number;
  /** Of the requests after the event (until the next one), the share placed on the side it switched to. */
  shareOnNewSideAfter: number | null;
  requestsAfter: number;
  p50BeforeMs: number | null;
  p50AfterMs: number | null;
  /** After the event, by where requests were placed (a cloud task that fell back counts for the cloud, at its full latency). */
  p50AfterBySite: Partial<Record<Site, number>>;
  missRateAfter: number;
}

export interface StepReport {
  plan: StepPlan;
  /** Within how long placement should follow a link change (issue 4). */
  targetMs: number;
  /** No warranted switch came late or not at all. */
  met: boolean;
  events: { event: string; atS: number; modalities: Partial<Record<Modality, ModalityAdaptation>> }[];
}

const round = (ms: number) => Math.round(ms);
const p50 = (records: readonly RequestRecord[]) => (records.length ? round(percentile(records.map(effectiveLatencyMs), 0.5)) : null);
const otherSide = (site: Site): Site => (site === 'edge' ? 'cloud' : 'edge');

function majority(records: readonly RequestRecord[]): Site | null {
  const chosen = records.filter((r) => r.decided && !r.explored);
  if (chosen.length === 0) return null;
  return chosen.filter((r) => r.decided === 'cloud').length * 2 >= chosen.length ? 'cloud' : 'edge';
}

const tieShare = 0.15;
const minSamples = 2;

function verdictOf(event: LinkEvent, sideBefore: Site, switchedAfterMs: number | null, bySite: Partial<Record<Site, { p50: number; count: number }>>, targetMs: number): Verdict {
  const other = otherSide(sideBefore);
  const measured = (site: Site) => {
    if (event.cloudDown && site === 'cloud') return Infinity;
    const entry = bySite[site];
    return entry && entry.count >= minSamples ? entry.p50 : undefined;
  };
  const oldMs = measured(sideBefore);
  const otherMs = measured(other);
  const otherFaster = oldMs !== undefined && otherMs !== undefined && otherMs < oldMs * (1 - tieShare);
  if (switchedAfterMs !== null) {
    if (oldMs === undefined || otherMs === undefined) return 'switched (the old side was not measured after)';
    if (otherFaster) return switchedAfterMs <= targetMs ? 'switched in time' : 'switched late';
    return 'switched, but the old side stayed faster';
  }
  if (otherMs === undefined) return 'stayed (the other side was not measured after)';
  if (otherFaster) return 'stayed, although the other side was faster';
  return 'stayed, and the old side stayed faster';
}

function adaptation(records: readonly RequestRecord[], event: LinkEvent, targetMs: number): ModalityAdaptation {
  const atMs = event.atS * 1000;
  const before = records.filter((r) => r.sentAtMs >= atMs - 5000 && r.sentAtMs < atMs);
  const after = records.filter((r) => r.sentAtMs >= atMs && r.sentAtMs < event.untilS * 1000);
  const sideBefore = majority(before);
  const switchIndex = sideBefore ? after.findIndex((r) => r.decided && r.decided !== sideBefore && !r.explored) : -1;
  const beforeSwitch = switchIndex >= 0 ? after.slice(0, switchIndex) : after;
  const newSide = switchIndex >= 0 ? after[switchIndex]!.decided! : null;
  const switchedAfterMs = switchIndex >= 0 ? after[switchIndex]!.sentAtMs - atMs : null;
  const placedAfter = Object.fromEntries(
    (['edge', 'cloud'] as const).flatMap((site) => {
      const placed = after.filter((r) => r.decided === site);
      return placed.length ? [[site, { p50: p50(placed)!, count: placed.length }]] : [];
    }),
  ) as Partial<Record<Site, { p50: number; count: number }>>;
  const p50AfterBySite = Object.fromEntries(Object.entries(placedAfter).map(([site, entry]) => [site, entry.p50])) as Partial<Record<Site, number>>;
  return {
    sideBefore,
    switchedAfterMs,
    verdict: sideBefore ? verdictOf(event, sideBefore, switchedAfterMs, placedAfter, targetMs) : null,
    placedOnOldSideBeforeSwitch: beforeSwitch.filter((r) => r.decided === sideBefore).length,
    missedBeforeSwitch: beforeSwitch.filter((r) => r.missed).length,
    shareOnNewSideAfter: newSide && after.length ? Math.round((after.filter((r) => r.decided === newSide).length / after.length) * 100) / 100 : null,
    requestsAfter: after.length,
    p50BeforeMs: p50(before),
    p50AfterMs: p50(after),
    p50AfterBySite,
    missRateAfter: after.length ? Math.round((after.filter((r) => r.missed).length / after.length) * 1000) / 1000 : 0,
  };
}

export function analyzeStep(records: readonly RequestRecord[], plan: StepPlan, targetMs = 2000): StepReport {
  const events = eventsOf(plan).map((event) => ({
    event: event.name,
    atS: event.atS,
    modalities: Object.fromEntries(watched.map((modality) => [modality, adaptation(records.filter((r) => r.modality === modality), event, targetMs)])),
  }));
  const verdicts = events.flatMap((e) => Object.values(e.modalities)).map((m) => m.verdict);
  return { plan, targetMs, met: verdicts.every((v) => v === null || !failing.has(v)), events };
}
