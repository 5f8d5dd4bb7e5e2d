/**
 * A group is one set of conditions: a trace set (one trace from it, picked by
 * seed, the same for every group of that set so that only RTT, load and ratio
 * vary between them), an RTT, the edge idle or busy, and an edge/cloud
 * compute ratio. Every strategy replays the same workload under it; the
 * always-local and always-cloud replays also give the oracle, the ratio
 * measurement (a fixed OCR request timed on each side) and the offline
 * profile that `static-profile` is then given.
 */
import { appendFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Modality } from '../../edge/request.js';
import { percentile } from '../../shared/percentile.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { bitsBetween, listBandwidthTraces, loadBandwidthTrace, rateAt, traceFromSamples, traceStats, type BandwidthTrace } from '../helpers/bandwidth-trace.js';
import { profiledSite } from '../../edge/policy/static-profile.js';
import { encoderMetricsOf, encoderOracleOf, type EncoderPolicyMetrics, type EncoderReference } from './encoder-metrics.js';
import { metricsOf, oracleOf, type GroupOutcome, type PolicyMetrics, type StrategyName } from './metrics.js';
import { runReplay, type RequestRecord, type ReplayResult, type ReplaySetup } from './replay.js';
import type { FixedOcrTiming, GroupResult } from './results.js';
import { inputsFor, type InputLibrary, type RequestKind, type WorkloadRequest } from './workload.js';

/**
 * The throttle's cycle. Stopping a multi-threaded process costs a little run
 * time per cycle, so short cycles give more than the quota (a busy two-thread
 * process at 1/8 got 34% at 10 ms, 16% at 20 ms, 13.6% at 50 ms, 12.8% at
 * 100 ms); longer ones hold a small task for up to the stopped part of a cycle.
 */
export const throttlePeriodMs = 40;

/** Static baselines first: static-profile needs their profile. */
const replayOrder: readonly StrategyName[] = ['always-local', 'always-cloud', 'static-profile', 'confidence', 'adaptive'];

export interface GroupPlan {
  name: string;
  traceSet: string;
  trace: BandwidthTrace;
  traceOffsetS: number;
  /** The trace from its offset, clock starting at 0 with the first request. */
  uplink: BandwidthTrace;
  uplinkMeanMbps: number;
  /** The whole set's median, the nominal bandwidth static-profile plans for. */
  setMedianMbps: number;
  rttMs: number;
  jitterMs: number;
  busy: boolean;
  ratio: number;
}

/** Sub-folders holding trace files are the sets; a folder of trace files is one set. */
function traceSets(dir: string): { name: string; dir: string }[] {
  if (!existsSync(dir)) throw new Error(`--traces ${dir}: no such folder — expected folders of '<seconds>\\t<Mbit/s>' trace files (see test/fixtures/traces/README.md)`);
  const subdirs = readdirSync(dir)
    .filter((entry) => !entry.startsWith('.') && statSync(path.join(dir, entry)).isDirectory())
    .sort()
    .map((entry) => ({ name: entry, dir: path.join(dir, entry) }))
    .filter((set) => listBandwidthTraces(set.dir).length > 0);
  if (subdirs.length > 0) return subdirs;
  if (listBandwidthTraces(dir).length > 0) return [{ name: path.basename(dir), dir }];
  throw new Error(`--traces ${dir}: no trace files found in it or its sub-folders`);
}

/** `trace` from `offsetS` for `durationS` (looping as it does), then holding its last rate. */
export function shiftedTrace(trace: BandwidthTrace, offsetS: number, durationS: number): BandwidthTrace {
  const samples = [{ timeS: 0, mbps: rateAt(trace, offsetS) }];
  for (let period = 0; period * trace.durationS < offsetS + durationS; period++) {
    for (const sample of trace.samples) {
      const timeS = period * trace.durationS + sample.timeS - offsetS;
      if (timeS > 0 && timeS < durationS) samples.push({ timeS, mbps: sample.mbps });
    }
  }
  return traceFromSamples(`${trace.name}@${offsetS}s`, samples, false);
}

function hashSeed(seed: number, text: string): number {
  let hash = 2166136261 ^ seed;
  for (const char of text) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619);
  return hash >>> 0;
}

export interface GroupOptions {
  tracesDir: string;
  quick: boolean;
  ratios: readonly number[];
  seed: number;
  /** How long a replay's link must last. */
  replayS: number;
  /** Edge loads to run (false: idle, true: busy); default both, idle only when quick. */
  loads?: readonly boolean[];
  /** Put before every group name (`encoder/`). */
  namePrefix?: string;
}

export function planGroups(options: GroupOptions): GroupPlan[] {
  const sets = traceSets(options.tracesDir).slice(0, options.quick ? 1 : undefined);
  const rtts = options.quick ? [80] : [20, 80, 200];
  const loads = options.loads ?? (options.quick ? [false] : [false, true]);
  const groups: GroupPlan[] = [];
  for (const set of sets) {
    const traces = listBandwidthTraces(set.dir).map(loadBandwidthTrace);
    const random = seededRandom(hashSeed(options.seed, set.name));
    const trace = traces[Math.floor(random() * traces.length)]!;
    const traceOffsetS = Math.floor(random() * Math.max(0, trace.durationS - options.replayS));
    const uplink = shiftedTrace(trace, traceOffsetS, options.replayS);
    const uplinkMeanMbps = Math.round((bitsBetween(uplink, 0, options.replayS) / options.replayS / 1e6) * 100) / 100;
    const setMedianMbps = Math.round(traceStats(traces).medianMbps * 100) / 100;
    for (const ratio of options.ratios) {
      for (const rttMs of rtts) {
        for (const busy of loads) {
          const name = `${options.namePrefix ?? ''}${set.name}/rtt${rttMs}/${busy ? 'busy' : 'idle'}/${ratio}x`;
          groups.push({ name, traceSet: set.name, trace, traceOffsetS, uplink, uplinkMeanMbps, setMedianMbps, rttMs, jitterMs: rttMs / 10, busy, ratio });
        }
      }
    }
  }
  return groups;
}

export interface GroupContext {
  replayBase: Pick<ReplaySetup, 'broker' | 'client' | 'cloudPort' | 'cores' | 'log'>;
  /** Makes device ids unique to this run. */
  runTag: string;
  seed: number;
  ratios: readonly number[];
  /** The OCR workload's inputs (the fixed OCR request that measures the ratio is one of them). */
  library: InputLibrary;
  workload: readonly WorkloadRequest[];
  /** What one request of each kind of the workload puts on the uplink at the default shaping. */
  offloadBytes: Partial<Record<RequestKind, number>>;
  /** Set for the encoder workload: answers are judged against it, and the oracle keeps to each request's floor. */
  encoder?: EncoderReference;
  notes: string[];
  /** Every replay's requests, one JSON line per replay, for looking into a result. */
  recordsFile: string;
}

const median = (values: readonly number[]) => (values.length ? Math.round(percentile(values, 0.5) * 10) / 10 : null);

/** The faster of two runs on each side: a run that shared its CPU with leftover work is not the speed being measured. */
function fixedOcrTiming(local: ReplayResult | undefined, cloud: ReplayResult | undefined): FixedOcrTiming {
  const compute = (replay: ReplayResult | undefined, site: string) => {
    const times = (replay?.calibration ?? []).filter((r) => r.site === site && !r.failed).map((r) => r.computeMs ?? Number.NaN);
    return times.length ? Math.min(...times) : null;
  };
  const edgeComputeMs = compute(local, 'edge');
  const cloudComputeMs = compute(cloud, 'cloud');
  const ratio = edgeComputeMs !== null && cloudComputeMs ? Math.round((edgeComputeMs / cloudComputeMs) * 10) / 10 : null;
  return { kind: 'image-1280', edgeComputeMs, cloudComputeMs, ratio };
}

/** Neurosurgeon-style offline profile per modality: median edge compute, median cloud queue + compute, typical payload. */
function staticProfileOf(local: ReplayResult, cloud: ReplayResult, context: GroupContext, group: GroupPlan): Record<string, unknown> {
  const modalities: Partial<Record<Modality, { edgeMs: number; cloudMs: number; payloadBytes: number }>> = {};
  for (const modality of ['text', 'audio', 'image'] as const) {
    const ok = (records: RequestRecord[], site: string) => records.filter((r) => r.modality === modality && r.site === site && !r.failed);
    const edgeMs = median(ok(local.records, 'edge').map((r) => r.computeMs ?? Number.NaN));
    const cloudMs = median(ok(cloud.records, 'cloud').map((r) => (r.queueMs ?? 0) + (r.computeMs ?? 0)));
    const sent = context.workload.filter((r) => r.modality === modality).map((r) => context.offloadBytes[r.kind] ?? 0);
    if (edgeMs === null || cloudMs === null || sent.length === 0) continue;
    modalities[modality] = { edgeMs, cloudMs, payloadBytes: Math.round(sent.reduce((a, b) => a + b, 0) / sent.length) };
  }
  return { uplinkMbps: group.setMedianMbps, rttMs: group.rttMs, modalities };
}

/**
 * The encoder workload's edge config: the device also holds the reference
 * (`localReference`), so that a floor the light variant cannot meet may run
 * on the edge too (edge-heavy) and the oracle sees all three answers. For
 * static-profile also the side its profile picks for the image at the
 * nominal link, as the encode task's `placement`: the strategy keeps
 * profiles of each modality's default task only and places a task without
 * one (`image.encode`) where config does.
 */
function encoderEdgeConfig(context: GroupContext, staticProfile: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!context.encoder) return {};
  const encode: Record<string, unknown> = { localReference: true };
  const { uplinkMbps, rttMs, modalities } = (staticProfile ?? {}) as { uplinkMbps: number; rttMs: number; modalities?: { image?: { edgeMs: number; cloudMs: number; payloadBytes: number } } };
  if (modalities?.image) encode.placement = profiledSite(modalities.image, uplinkMbps, rttMs).site;
  return { modalities: { image: { encode } } };
}

/**
 * The encoder replays start on a device that holds its reference: a `best`
 * request that prefers the edge is answered there once the reference has
 * loaded (before that, in the cloud while the load runs in the background).
 * Its cold start is a once-per-process cost, not part of steady placement.
 */
function referenceWarmup(context: GroupContext): ReplaySetup['warmup'] {
  const first = context.encoder && context.workload.find((r) => r.task?.image === 'encode');
  if (!first) return undefined;
  const request: WorkloadRequest = { ...first, quality: { image: 'best' }, prefer: { image: 'edge' }, deadlineMs: 60_000 };
  return { request, ready: (reply) => reply.placement.image?.ran === 'edge', maxMs: 90_000 };
}

export async function runGroup(context: GroupContext, group: GroupPlan, index: number): Promise<{ result: GroupResult; outcome: GroupOutcome }> {
  const score = (records: RequestRecord[], uplinkBytes: number): PolicyMetrics =>
    context.encoder ? encoderMetricsOf(records, uplinkBytes, context.encoder) : metricsOf(records, uplinkBytes);
  const fixed = [-1, -2].map((i): WorkloadRequest => ({ index: i, sendAtMs: 0, kind: 'image-1280', modality: 'image', inputs: inputsFor('image-1280', context.library, 0), deadlineMs: 60_000 }));
  const replays: Partial<Record<StrategyName, ReplayResult>> = {};
  let staticProfile: Record<string, unknown> = {};
  for (const strategy of replayOrder) {
    const replayStarted = performance.now();
    const policy: Record<string, unknown> = { strategy, seed: context.seed };
    if (strategy === 'static-profile') policy.staticProfile = staticProfile;
    const edgeConfig = { policy, ...encoderEdgeConfig(context, strategy === 'static-profile' ? staticProfile : undefined) };
    try {
      replays[strategy] = await runReplay({
        ...context.replayBase,
        deviceId: `${context.runTag}-g${index}-${strategy}`,
        edgeConfig,
        link: { rttMs: group.rttMs, jitterMs: group.jitterMs, uplink: group.uplink },
        edge: { dutyShare: 1 / group.ratio, throttlePeriodMs, busy: group.busy },
        workload: context.workload,
        calibration: strategy === 'always-local' || strategy === 'always-cloud' ? fixed : undefined,
        warmup: referenceWarmup(context),
      });
    } catch (err) {
      const message = `${group.name}, ${strategy}: the replay failed (${(err as Error).message})`;
      console.log(`  ${message}`);
      context.notes.push(message);
      continue;
    }
    const replay = replays[strategy]!;
    appendFileSync(context.recordsFile, JSON.stringify({ group: group.name, strategy, ...replay }) + '\n');
    const m = score(replay.records, replay.uplinkBytes);
    const agreement = 'modelAgreement' in m ? `, agreement ${(m as EncoderPolicyMetrics).modelAgreement} (labels ${(m as EncoderPolicyMetrics).labelAgreement})` : '';
    console.log(
      `  ${strategy.padEnd(14)} p50 ${Math.round(m.p50Ms)} ms, p95 ${Math.round(m.p95Ms)} ms, miss ${(m.deadlineMissRate * 100).toFixed(1)}%, ` +
        `cloud ${(m.cloudShare * 100).toFixed(0)}%, uplink ${(m.uplinkBytes / 1e6).toFixed(2)} MB${agreement} (${Math.round((performance.now() - replayStarted) / 1000)} s)`,
    );
    if (strategy === 'always-cloud' && replays['always-local']) staticProfile = staticProfileOf(replays['always-local'], replay, context, group);
  }

  const records: GroupOutcome['records'] = {};
  const policies: GroupResult['policies'] = {};
  for (const [strategy, replay] of Object.entries(replays) as [StrategyName, ReplayResult][]) {
    records[strategy] = replay.records;
    policies[strategy] = score(replay.records, replay.uplinkBytes);
  }
  const local = replays['always-local'];
  const cloud = replays['always-cloud'];
  if (local && cloud) {
    const oracle = context.encoder ? encoderOracleOf(local, cloud, context.offloadBytes, context.encoder) : oracleOf(local, cloud, context.offloadBytes);
    records.oracle = oracle.records;
    policies.oracle = score(oracle.records, oracle.uplinkBytes);
    console.log(`  ${'oracle'.padEnd(14)} p50 ${Math.round(policies.oracle.p50Ms)} ms, p95 ${Math.round(policies.oracle.p95Ms)} ms, miss ${(policies.oracle.deadlineMissRate * 100).toFixed(1)}%`);
  }
  const fixedOcr = fixedOcrTiming(local, cloud);
  console.log(`  fixed OCR request: edge ${fixedOcr.edgeComputeMs} ms, cloud ${fixedOcr.cloudComputeMs} ms → ${fixedOcr.ratio}×`);
  const conditions: GroupResult['conditions'] = {
    traceSet: group.traceSet,
    trace: group.trace.name,
    traceOffsetS: group.traceOffsetS,
    uplinkMeanMbps: group.uplinkMeanMbps,
    rttMs: group.rttMs,
    jitterMs: group.jitterMs,
    edgeLoad: group.busy ? 'busy' : 'idle',
    nominalRatio: group.ratio,
    dutyShare: 1 / group.ratio,
    throttlePeriodMs,
    fixedOcr,
    staticProfile,
  };
  return { result: { name: group.name, conditions, policies }, outcome: { name: group.name, records, policies } };
}
