/**
 * From replayed requests to the numbers the benchmark reports: latency
 * percentiles, deadline-miss rate and uplink bytes per strategy, the
 * per-request hindsight oracle, and the targets of issue 4.
 *
 * A failed request (an error in the reply, or none) counts at least its
 * deadline in the percentiles: a fast refusal is not a fast answer.
 */
import { percentile } from '../../shared/percentile.js';
import type { RequestRecord, ReplayResult } from './replay.js';
import type { RequestKind } from './workload.js';

export const strategies = ['adaptive', 'always-local', 'always-cloud', 'confidence', 'static-profile'] as const;
export type StrategyName = (typeof strategies)[number];
export const staticStrategies: readonly StrategyName[] = ['always-local', 'always-cloud', 'confidence', 'static-profile'];

export interface PolicyMetrics {
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  deadlineMissRate: number;
  uplinkBytes: number;
  requests: number;
  failed: number;
  /** Tasks that ran in the cloud, as a share of all. */
  cloudShare: number;
}

export const effectiveLatencyMs = (r: RequestRecord): number => (r.failed ? Math.max(r.latencyMs, r.deadlineMs) : r.latencyMs);

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

export function metricsOf(records: readonly RequestRecord[], uplinkBytes: number): PolicyMetrics {
  const latencies = records.map(effectiveLatencyMs);
  return {
    p50Ms: round(percentile(latencies, 0.5)),
    p95Ms: round(percentile(latencies, 0.95)),
    p99Ms: round(percentile(latencies, 0.99)),
    deadlineMissRate: round(records.filter((r) => r.missed).length / records.length, 4),
    uplinkBytes: Math.round(uplinkBytes),
    requests: records.length,
    failed: records.filter((r) => r.failed).length,
    cloudShare: round(records.filter((r) => r.site === 'cloud').length / records.length, 3),
  };
}

/**
 * Per request, the faster of the always-local and always-cloud replays (of
 * those whose answer is `admissible`, when only one is). Its uplink bytes:
 * the requests it takes from the cloud replay, each counted at its share of
 * that replay's measured bytes (by payload size).
 */
export function oracleOf(
  local: ReplayResult,
  cloud: ReplayResult,
  offloadBytes: Partial<Record<RequestKind, number>>,
  admissible: (record: RequestRecord) => boolean = () => true,
): { records: RequestRecord[]; uplinkBytes: number } {
  const bytesOf = (r: RequestRecord) => offloadBytes[r.kind] ?? 0;
  // A replay's link bytes per payload byte it offloaded (always-local offloads too when a quality floor sends a task to the cloud).
  const perPayloadByte = (replay: ReplayResult) => {
    const sent = replay.records.filter((r) => r.site === 'cloud').reduce((sum, r) => sum + bytesOf(r), 0);
    return sent > 0 ? replay.uplinkBytes / sent : 0;
  };
  const rates = new Map([local, cloud].map((replay) => [replay, perPayloadByte(replay)]));
  let uplinkBytes = 0;
  const records = local.records.map((fromLocal, i) => {
    const fromCloud = cloud.records[i]!;
    const [localOk, cloudOk] = [admissible(fromLocal), admissible(fromCloud)];
    const takeLocal = localOk !== cloudOk ? localOk : effectiveLatencyMs(fromCloud) >= effectiveLatencyMs(fromLocal);
    const [taken, from] = takeLocal ? [fromLocal, local] : [fromCloud, cloud];
    if (taken.site === 'cloud') uplinkBytes += bytesOf(taken) * rates.get(from)!;
    return taken;
  });
  return { records, uplinkBytes };
}

export interface GroupOutcome {
  name: string;
  records: Partial<Record<StrategyName | 'oracle', RequestRecord[]>>;
  policies: Partial<Record<StrategyName | 'oracle', PolicyMetrics>>;
}

export interface TargetSummary {
  adaptiveOverOracleP95: { target: number; worst: number | null; met: boolean; groups: { group: string; ratio: number }[] };
  adaptiveOverBestStaticP95: { target: number; adaptiveP95Ms: number; bestStatic: string; bestStaticP95Ms: number; ratio: number; met: boolean; allP95Ms: Record<string, number> } | null;
  adaptiveMissWhereOracleMeetsAll: { target: number; worst: number | null; met: boolean; groups: { group: string; missRate: number }[] };
}

/** The three benchmark targets of issue 4 (the step-change one is in the step report). */
export function summarizeTargets(groups: readonly GroupOutcome[]): TargetSummary {
  const ratios = groups
    .filter((g) => g.policies.adaptive && g.policies.oracle)
    .map((g) => ({ group: g.name, ratio: round(g.policies.adaptive!.p95Ms / g.policies.oracle!.p95Ms, 3) }));
  const worstRatio = ratios.length ? Math.max(...ratios.map((r) => r.ratio)) : null;

  const pooled = (name: StrategyName) => groups.flatMap((g) => g.records[name] ?? []).map(effectiveLatencyMs);
  const allP95Ms = Object.fromEntries(strategies.filter((s) => pooled(s).length > 0).map((s) => [s, round(percentile(pooled(s), 0.95))]));
  const statics = staticStrategies.filter((s) => allP95Ms[s] !== undefined).sort((a, b) => allP95Ms[a]! - allP95Ms[b]!);
  const best = statics[0];
  const overStatic =
    best && allP95Ms.adaptive !== undefined
      ? {
          target: 0.7,
          adaptiveP95Ms: allP95Ms.adaptive,
          bestStatic: best,
          bestStaticP95Ms: allP95Ms[best]!,
          ratio: round(allP95Ms.adaptive / allP95Ms[best]!, 3),
          met: allP95Ms.adaptive <= 0.7 * allP95Ms[best]!,
          allP95Ms,
        }
      : null;

  const missGroups = groups
    .filter((g) => g.policies.oracle?.deadlineMissRate === 0 && g.policies.adaptive)
    .map((g) => ({ group: g.name, missRate: g.policies.adaptive!.deadlineMissRate }));
  const worstMiss = missGroups.length ? Math.max(...missGroups.map((g) => g.missRate)) : null;
  return {
    adaptiveOverOracleP95: { target: 1.15, worst: worstRatio, met: worstRatio !== null && worstRatio <= 1.15, groups: ratios },
    adaptiveOverBestStaticP95: overStatic,
    adaptiveMissWhereOracleMeetsAll: { target: 0.01, worst: worstMiss, met: worstMiss === null || worstMiss <= 0.01, groups: missGroups },
  };
}
