/**
 * Measures every quantized variant in the catalog against its model's FP32:
 * quality on the shipped held-out data (the `splitinfer model eval`
 * evaluators), size of each graph file, and session latency of each graph at
 * batch 1 and 16, FP32 and the variant interleaved in the same run.
 */
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getEvaluator, type Evaluation } from '../../models/toolchain/evaluator.js';
import '../../models/toolchain/evaluators.js';
import { timeInterleaved, type LatencyOptions } from '../../models/toolchain/latency.js';
import type { Feeds } from '../../models/toolchain/recorded-feeds.js';
import { loadCatalog, resolveSource, verifiedPath, type CatalogModel } from '../../shared/catalog.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import type { OrtSession } from '../../shared/ort/session.js';
import { packageRoot } from '../../shared/paths.js';
import { timingFeeds } from './quant-feeds.js';
import { judgeTargets, type QuantReport, type QuantRow } from './quant-report.js';

export interface QuantOptions {
  /** Catalog model ids to measure (default: every model with a variant besides fp32). */
  models?: readonly string[];
  /** One timed round of one run per batch: checks the pipeline, not a measurement to quote. */
  quick?: boolean;
  notes?: readonly string[];
}

const batches = [1, 16] as const;
const sessionOptions = { providers: ['cpu'], intraOpThreads: 1 };
/** Wall time each (graph, batch) timing may take, both sessions together; fewer rounds for slow graphs, never fewer than 5. */
const timingBudgetMs = 60_000;
/** Runs in one round add up to about this much, so a fast graph's round is not one noisy sample. */
const roundTargetMs = 50;

const clamp = (x: number, low: number, high: number) => Math.min(high, Math.max(low, x));

/** Rounds and runs per round from one timed run of the FP32 session (after an untimed one). */
async function timingPlan(fp32: OrtSession, feeds: Feeds, quick: boolean): Promise<Required<LatencyOptions>> {
  if (quick) return { rounds: 1, runsPerRound: 1, warmupRuns: 1 };
  await fp32.run(feeds);
  const probeMs = (await fp32.run(feeds)).computeUs / 1000;
  const runsPerRound = clamp(Math.floor(roundTargetMs / probeMs), 1, 20);
  const rounds = clamp(Math.floor(timingBudgetMs / (2 * probeMs * runsPerRound)), 5, 15);
  return { rounds, runsPerRound, warmupRuns: probeMs > 500 ? 1 : 3 };
}

function machine(): string {
  const cpus = os.cpus();
  const ort = JSON.parse(readFileSync(resolveSource('npm:onnxruntime-node/package.json'), 'utf8')) as { version: string };
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'} × ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()} ${os.arch()}, node ${process.version}, onnxruntime-node ${ort.version}`;
}

const where = (file: string) => path.relative(packageRoot, file) || file;

/**
 * The reference graph of each of the variant's graphs: the same name, or, for
 * a variant whose one graph is named after itself (mobilenet-v2-int8), the
 * reference's one graph.
 */
function graphPairs(model: CatalogModel, variant: string, reference: string): [candidate: string, reference: string][] {
  const candidates = Object.keys(model.variants[variant]!.graphs);
  const references = Object.keys(model.variants[reference]!.graphs);
  if (candidates.every((g) => references.includes(g))) return candidates.map((g) => [g, g]);
  if (candidates.length === 1 && references.length === 1) return [[candidates[0]!, references[0]!]];
  throw new Error(`bench:quant: ${model.id} variant ${variant} has graphs ${candidates.join(', ')}, which do not pair with ${reference}'s ${references.join(', ')}`);
}

/** Measures `variant` against the float variant it was quantized from (catalog quantizedFrom, default fp32). */
async function measureVariant(model: CatalogModel, variant: string, quick: boolean): Promise<QuantRow[]> {
  const log = createLogger('bench-quant', 'warn');
  const evaluator = getEvaluator(model.handler);
  const evaluationSet = evaluator.load(evaluator.defaultDataPath);
  const referenceVariant = model.variants[variant]!.quantizedFrom ?? 'fp32';
  const [fp32, candidate] = await Promise.all([loadModel(model, referenceVariant, sessionOptions, log), loadModel(model, variant, sessionOptions, log)]);
  try {
    const quality: Evaluation = await evaluationSet.evaluate(fp32, candidate);
    const feeds = await timingFeeds[model.handler]!(fp32, batches);
    const rows: QuantRow[] = [];
    for (const [graph, referenceGraph] of graphPairs(model, variant, referenceVariant)) {
      const sessions = [fp32.sessions.get(referenceGraph)!, candidate.sessions.get(graph)!];
      const ms: Record<number, { fp32: number; variant: number; plan: string }> = {};
      for (const batch of batches) {
        const graphFeeds = feeds[referenceGraph]?.get(batch);
        if (!graphFeeds) throw new Error(`bench:quant: no timing feeds for ${model.id} graph ${graph} at batch ${batch} — add them in test/bench/quant-feeds.ts`);
        const plan = await timingPlan(sessions[0]!, graphFeeds, quick);
        const [fp32Us, variantUs] = (await timeInterleaved(sessions, graphFeeds, plan)) as [number, number];
        ms[batch] = { fp32: fp32Us / 1000, variant: variantUs / 1000, plan: `${plan.rounds} × ${plan.runsPerRound}` };
        console.log(`${model.id} ${graph} batch ${batch}: ${referenceVariant} ${ms[batch]!.fp32.toFixed(3)} ms, ${variant} ${ms[batch]!.variant.toFixed(3)} ms (${plan.rounds} rounds × ${plan.runsPerRound})`);
      }
      const size = async (v: string, g: string) => statSync(await verifiedPath(model.variants[v]!.graphs[g]!)).size;
      rows.push({
        id: model.id,
        graph,
        variant,
        reference: referenceVariant,
        batch1Ms: ms[1]!.variant,
        batch16Ms: ms[16]!.variant,
        fp32Batch1Ms: ms[1]!.fp32,
        fp32Batch16Ms: ms[16]!.fp32,
        sizeBytes: await size(variant, graph),
        fp32SizeBytes: await size(referenceVariant, referenceGraph),
        quality: quality.candidate,
        fp32Quality: quality.reference,
        qualityMetric: quality.metric,
        qualityData: `${quality.samples} ${quality.sampleUnit} of ${evaluator.defaultDataLabel ?? where(evaluator.defaultDataPath)}`,
        timing: { batch1: ms[1]!.plan, batch16: ms[16]!.plan },
      });
    }
    return rows;
  } finally {
    await Promise.all([fp32.close(), candidate.close()]);
  }
}

export async function runQuantBenchmark(options: QuantOptions = {}): Promise<QuantReport> {
  const started = Date.now();
  const loadStart = os.loadavg()[0]!;
  const catalog = loadCatalog();
  const unknown = (options.models ?? []).filter((id) => !catalog.models.some((m) => m.id === id));
  if (unknown.length > 0) throw new Error(`bench:quant: unknown model ${unknown.join(', ')} (catalog has: ${catalog.models.map((m) => m.id).join(', ')})`);
  const withVariants = catalog.models.filter((m) => (options.models ? options.models.includes(m.id) : true) && m.variants.fp32 && Object.keys(m.variants).length > 1);
  const models = withVariants.filter((m) => timingFeeds[m.handler]);
  const skipped = withVariants.filter((m) => !timingFeeds[m.handler]).map((m) => `${m.id}: not measured here (no timing feeds or evaluator for its handler in bench:quant)`);
  const rows: QuantRow[] = [];
  for (const model of models) {
    // A float variant another was quantized from (image-encoder's mobilenet-v2) is a reference, not a candidate.
    const references = new Set(Object.values(model.variants).map((v) => v.quantizedFrom ?? 'fp32'));
    for (const variant of Object.keys(model.variants).filter((v) => !references.has(v))) rows.push(...(await measureVariant(model, variant, options.quick ?? false)));
  }
  return {
    models: rows,
    run: {
      machine: machine(),
      loadAverage: { start: loadStart, end: os.loadavg()[0]! },
      startedAt: new Date(started).toISOString(),
      durationS: (Date.now() - started) / 1000,
      notes: [...(options.quick ? ['--quick: one timed round of one run per batch — a check of the pipeline, not a measurement'] : []), ...skipped, ...(options.notes ?? [])],
    },
    targets: judgeTargets(rows),
  };
}
