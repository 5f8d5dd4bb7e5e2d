/**
 * End-to-end latency of one InceptionV3 request placed three ways, under
 * each bench:policy group's conditions (its uplink trace, RTT, edge speed
 * and load), computed from the split study's measurements rather than
 * replayed: edge-only (the whole model on the edge), cloud-only (the JPEG
 * shaped as the policy would, then the whole model in the cloud) and each
 * split point with each activation encoding (head on the edge, activation
 * over the link, tail in the cloud).
 *
 * The edge is this CPU slowed by the group's edge/cloud ratio (bench:policy
 * throttles its agent to 1/ratio of a core), twice more when busy (its busy
 * loop takes half of what is left); the cloud is this CPU with one thread,
 * as bench:policy's cloud tier runs. A request sent at time t uploads from
 * when the edge is done, at the trace's capacity then, with the whole RTT
 * added once (request and reply; the reply is a few hundred bytes). The
 * link carries nothing else: what queueing behind other requests would add
 * falls on all placements that upload.
 */
import { percentile } from '../../shared/percentile.js';
import { constantTrace, transferEndS, type BandwidthTrace } from '../helpers/bandwidth-trace.js';
import type { GroupPlan } from './groups.js';
import type { SplitMeasurements, SplitPointMeasure } from './split-measure.js';

export type EncodingName = keyof SplitPointMeasure['encodings'];

export interface PlacementLatency {
  /** `edge-only`, `cloud-only 640px q90`, or `split mixed5/concat int8-deflate`. */
  placement: string;
  edgeMs: number;
  uplinkBytes: number;
  cloudMs: number;
  p50Ms: number;
  p95Ms: number;
}

export interface GroupSplitVerdict {
  group: string;
  edgeFactor: number;
  uplinkMeanMbps: number;
  rttMs: number;
  edgeOnly: PlacementLatency;
  /** The JPEG option with no accuracy cost (640 px q90), and the fastest option of any cost. */
  cloudOnly: PlacementLatency;
  cloudOnlyFastest: PlacementLatency;
  /** The split point and encoding with the lowest p95. */
  bestSplit: PlacementLatency;
  /**
   * bestSplit p95 / the better end's p95, cloud-only at the option without
   * accuracy cost (INT8 activations cost next to none, see split.md): below
   * 1 the split beats both ends.
   */
  splitVsBestEnd: number;
  splitBeatsBothEnds: boolean;
}

/** Arrivals every quarter second over the group's replay window. */
const arrivalStepS = 0.25;

const round1 = (x: number) => Math.round(x * 10) / 10;

interface Link {
  uplink: BandwidthTrace;
  rttMs: number;
}

function latencyOver(link: Link, windowS: number, placement: string, edgeMs: number, uplinkBytes: number, cloudMs: number): PlacementLatency {
  const latencies: number[] = [];
  for (let t = 0; t < windowS; t += arrivalStepS) {
    const sentS = t + edgeMs / 1000;
    const uploadS = uplinkBytes > 0 ? transferEndS(link.uplink, sentS, uplinkBytes * 8) - sentS : 0;
    latencies.push(edgeMs + (uplinkBytes > 0 ? uploadS * 1000 + link.rttMs + cloudMs : 0));
  }
  return { placement, edgeMs: round1(edgeMs), uplinkBytes, cloudMs: round1(cloudMs), p50Ms: round1(percentile(latencies, 0.5)), p95Ms: round1(percentile(latencies, 0.95)) };
}

export interface SweepCell {
  edgeFactor: number;
  uplinkMbps: number;
  edgeOnlyMs: number;
  cloudOnlyMs: number;
  bestSplit: string;
  bestSplitMs: number;
  /** bestSplit / the better end (cloud-only without accuracy cost). */
  ratio: number;
}

/**
 * Where a split could win, beyond bench:policy's groups: constant uplinks
 * and edge speeds from this CPU's (factor 1) down, RTT fixed. A constant
 * link has one latency, so p95 = p50.
 */
export function splitSweep(m: SplitMeasurements, edgeFactors: readonly number[], uplinksMbps: readonly number[], rttMs: number): SweepCell[] {
  const cells: SweepCell[] = [];
  for (const edgeFactor of edgeFactors) {
    for (const uplinkMbps of uplinksMbps) {
      const link = { uplink: constantTrace(uplinkMbps), rttMs };
      const at = (placement: string, edgeMs: number, bytes: number, cloudMs: number) => latencyOver(link, arrivalStepS, placement, edgeMs, bytes, cloudMs);
      const edgeOnly = at('edge-only', (m.preprocessMs + m.wholeMs) * edgeFactor, 0, 0);
      const cloudOnly = at('cloud-only', m.jpeg[0]!.shapeMs * edgeFactor, m.jpeg[0]!.bytes, m.cloudPreprocessMs + m.wholeMs);
      const splits = m.points.flatMap((p) =>
        (Object.entries(p.encodings) as [EncodingName, SplitPointMeasure['encodings'][EncodingName]][]).map(([name, e]) =>
          at(`${p.at} ${name}`, (m.preprocessMs + p.headMs + e.packMs) * edgeFactor, e.bytes, e.unpackMs + p.tailMs),
        ),
      );
      const best = splits.reduce((a, b) => (b.p95Ms < a.p95Ms ? b : a));
      const bestEnd = Math.min(edgeOnly.p95Ms, cloudOnly.p95Ms);
      cells.push({ edgeFactor, uplinkMbps, edgeOnlyMs: edgeOnly.p95Ms, cloudOnlyMs: cloudOnly.p95Ms, bestSplit: best.placement, bestSplitMs: best.p95Ms, ratio: Math.round((best.p95Ms / bestEnd) * 1000) / 1000 });
    }
  }
  return cells;
}

export const edgeFactorOf = (group: GroupPlan) => group.ratio * (group.busy ? 2 : 1);

export function splitVerdicts(m: SplitMeasurements, groups: readonly GroupPlan[], windowS: number): { verdicts: GroupSplitVerdict[]; all: Record<string, PlacementLatency[]> } {
  const verdicts: GroupSplitVerdict[] = [];
  const all: Record<string, PlacementLatency[]> = {};
  for (const group of groups) {
    const factor = edgeFactorOf(group);
    const edgeOnly = latencyOver(group, windowS, 'edge-only', (m.preprocessMs + m.wholeMs) * factor, 0, 0);
    const cloud = m.jpeg.map((j) => latencyOver(group, windowS, `cloud-only ${j.name}`, j.shapeMs * factor, j.bytes, m.cloudPreprocessMs + m.wholeMs));
    const fastest = (options: PlacementLatency[]) => options.reduce((a, b) => (b.p95Ms < a.p95Ms ? b : a));
    // Each point with its fastest encoding.
    const splits = m.points.map((p) =>
      fastest(
        (Object.entries(p.encodings) as [EncodingName, SplitPointMeasure['encodings'][EncodingName]][]).map(([name, e]) =>
          latencyOver(group, windowS, `split ${p.at} ${name}`, (m.preprocessMs + p.headMs + e.packMs) * factor, e.bytes, e.unpackMs + p.tailMs),
        ),
      ),
    );
    const bestSplit = fastest(splits);
    const cloudOnlyFastest = fastest(cloud);
    const bestEnd = Math.min(edgeOnly.p95Ms, cloud[0]!.p95Ms);
    verdicts.push({
      group: group.name,
      edgeFactor: factor,
      uplinkMeanMbps: group.uplinkMeanMbps,
      rttMs: group.rttMs,
      edgeOnly,
      cloudOnly: cloud[0]!,
      cloudOnlyFastest,
      bestSplit,
      splitVsBestEnd: Math.round((bestSplit.p95Ms / bestEnd) * 1000) / 1000,
      splitBeatsBothEnds: bestSplit.p95Ms < bestEnd,
    });
    all[group.name] = [edgeOnly, ...cloud, ...splits];
  }
  return { verdicts, all };
}
