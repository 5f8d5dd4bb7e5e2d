/**
 * quant.json and quant.md: each variant against the float variant it was
 * quantized from (FP32, or e.g. image-encoder's mobilenet-v2), one row per
 * graph, and the issues' targets judged from the measured numbers. The
 * `fp32*` fields are that float reference's.
 */
import { writeBenchFiles } from './write-results.js';

export interface QuantRow {
  /** Catalog model id. */
  id: string;
  /** The graph timed (OCR has two; the others one). Size is this graph's file, quality the whole model's. */
  graph: string;
  variant: string;
  /** The float variant it is measured against (catalog quantizedFrom, default fp32). */
  reference: string;
  batch1Ms: number;
  batch16Ms: number;
  fp32Batch1Ms: number;
  fp32Batch16Ms: number;
  sizeBytes: number;
  fp32SizeBytes: number;
  /** 0–1, as qualityMetric says; fp32Quality is FP32's on the same data (1 where quality is agreement with FP32). */
  quality: number;
  fp32Quality: number;
  qualityMetric: string;
  /** What quality was measured on: how many of what, from where. */
  qualityData: string;
  /** Timed rounds × runs per round at batch 1 and 16. */
  timing: { batch1: string; batch16: string };
}

export interface QuantRun {
  /** CPU model, cores, memory, OS, node and onnxruntime versions. */
  machine: string;
  /** 1-minute load average at the start and the end of the run. */
  loadAverage: { start: number; end: number };
  startedAt: string;
  durationS: number;
  notes: string[];
}

export interface TargetVerdict {
  target: string;
  /** null: the target does not apply (e.g. a speed-up bar to a graph faster than its threshold). */
  met: boolean | null;
  measured: string;
}

export interface QuantReport {
  models: QuantRow[];
  run: QuantRun;
  targets: TargetVerdict[];
}

/** The bars (issue 5). */
export const quantTargets = {
  minSpeedupBatch16: 2.5,
  minSpeedupBatch1: 2.0,
  /** The speed-up bars apply to graphs whose FP32 batch-1 run takes at least this long. */
  speedupAppliesFromMs: 2,
  textMaxSizeRatio: 0.3,
  textMaxAccuracyDrop: 0.01,
  ocrMaxAccuracyDrop: 0.01,
  vadMinFrameAgreement: 0.99,
  encoderMinTop1Agreement: 0.99,
} as const;

export const speedup = (fp32Ms: number, variantMs: number) => fp32Ms / variantMs;
const x2 = (ratio: number) => `${ratio.toFixed(2)}×`;
const pct = (share: number) => `${(share * 100).toFixed(2)}%`;
const pointsDrop = (row: QuantRow) => (row.fp32Quality - row.quality) * 100;

export function judgeTargets(rows: readonly QuantRow[]): TargetVerdict[] {
  const t = quantTargets;
  const verdicts: TargetVerdict[] = [];
  for (const row of rows) {
    const name = `${row.id} ${row.variant} ${row.graph}`;
    if (row.fp32Batch1Ms < t.speedupAppliesFromMs) {
      verdicts.push({ target: `${name}: speed-up (only for FP32 batch 1 ≥ ${t.speedupAppliesFromMs} ms)`, met: null, measured: `FP32 batch 1 takes ${row.fp32Batch1Ms.toFixed(3)} ms: does not apply` });
      continue;
    }
    const s1 = speedup(row.fp32Batch1Ms, row.batch1Ms);
    const s16 = speedup(row.fp32Batch16Ms, row.batch16Ms);
    verdicts.push({ target: `${name}: speed-up ≥ ${t.minSpeedupBatch16}× at batch 16`, met: s16 >= t.minSpeedupBatch16, measured: x2(s16) });
    verdicts.push({ target: `${name}: speed-up ≥ ${t.minSpeedupBatch1}× at batch 1`, met: s1 >= t.minSpeedupBatch1, measured: x2(s1) });
  }
  const first = (id: string, variant: string) => rows.find((r) => r.id === id && r.variant === variant);
  const text = first('text-intent', 'int8-pruned');
  if (text) {
    const ratio = text.sizeBytes / text.fp32SizeBytes;
    verdicts.push({ target: `text-intent int8-pruned: size ≤ ${t.textMaxSizeRatio * 100}% of FP32`, met: ratio <= t.textMaxSizeRatio, measured: pct(ratio) });
    verdicts.push({
      target: `text-intent int8-pruned: accuracy within ${t.textMaxAccuracyDrop * 100} point of FP32`,
      met: pointsDrop(text) <= t.textMaxAccuracyDrop * 100,
      measured: `${pct(text.quality)} vs ${pct(text.fp32Quality)}`,
    });
  }
  const ocr = first('image-ocr', 'int8');
  if (ocr) {
    verdicts.push({
      target: `image-ocr int8: character accuracy within ${t.ocrMaxAccuracyDrop * 100} point of FP32`,
      met: pointsDrop(ocr) <= t.ocrMaxAccuracyDrop * 100,
      measured: `${pct(ocr.quality)} vs ${pct(ocr.fp32Quality)}`,
    });
  }
  const vad = first('audio-vad', 'int8');
  if (vad) verdicts.push({ target: `audio-vad int8: frame agreement ≥ ${t.vadMinFrameAgreement * 100}%`, met: vad.quality >= t.vadMinFrameAgreement, measured: pct(vad.quality) });
  const encoder = first('image-encoder', 'mobilenet-v2-int8');
  if (encoder) {
    verdicts.push({
      target: `image-encoder mobilenet-v2-int8: top-1 agreement with ${encoder.reference} ≥ ${t.encoderMinTop1Agreement * 100}%`,
      met: encoder.quality >= t.encoderMinTop1Agreement,
      measured: pct(encoder.quality),
    });
  }
  return verdicts;
}

const ms = (value: number) => (value < 10 ? value.toFixed(3) : value.toFixed(1));
const verdictText = (met: boolean | null) => (met === null ? 'n/a' : met ? 'met' : '**not met**');

export function quantMarkdown(report: QuantReport): string {
  const { run } = report;
  const lines = [
    '# Quantized variants against their float reference',
    '',
    `Run ${run.startedAt}, ${run.durationS.toFixed(0)} s, on ${run.machine}; 1-minute load average ${run.loadAverage.start.toFixed(2)} at the start, ${run.loadAverage.end.toFixed(2)} at the end.`,
    '',
    '| model | graph | variant (reference) | batch 1 ms (FP32) | speed-up b1 | batch 16 ms (FP32) | speed-up b16 | size (FP32) | size ratio | quality (FP32) | quality measure |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...report.models.map(
      (r) =>
        `| ${r.id} | ${r.graph} | ${r.variant} (${r.reference}) | ${ms(r.batch1Ms)} (${ms(r.fp32Batch1Ms)}) | ${x2(speedup(r.fp32Batch1Ms, r.batch1Ms))} | ${ms(r.batch16Ms)} (${ms(r.fp32Batch16Ms)}) | ` +
        `${x2(speedup(r.fp32Batch16Ms, r.batch16Ms))} | ${r.sizeBytes} (${r.fp32SizeBytes}) | ${pct(r.sizeBytes / r.fp32SizeBytes)} | ${pct(r.quality)} (${pct(r.fp32Quality)}) | ${r.qualityMetric} |`,
    ),
    '',
    'Speed-up is FP32 time / variant time: above 1× the variant is faster. Size is the graph file on disk.',
    '',
    '## Targets',
    '',
    '| target | measured | verdict |',
    '|---|---|---|',
    ...report.targets.map((v) => `| ${v.target} | ${v.measured} | ${verdictText(v.met)} |`),
    '',
    '## What quality means',
    '',
    ...[...new Map(report.models.map((r) => [`${r.id} ${r.variant}`, r])).values()].map((r) => `- **${r.id} ${r.variant}**: ${r.qualityMetric}, on ${r.qualityData}.`),
    '- Quality is scored by the evaluators of `splitinfer model eval` (models/toolchain/evaluate-*.ts), through the same handler code the tiers serve with.',
    '',
    '## How latency was measured',
    '',
    '- onnxruntime-node on the CPU, one intra-op and one inter-op thread per session; FP32 and the variant loaded from the catalog (sha256-checked) in the same process.',
    "- Time is onnxruntime's own: inside `session.run` on the session's worker thread (models/toolchain/latency.ts), so tensor transfer and JavaScript pre-processing are not counted.",
    '- FP32 and the variant are interleaved round by round (the order reverses each round) so load from other processes slows both alike; each figure is the median over rounds of the mean time per run. Rounds × runs per round for each row:',
    ...report.models.map((r) => `  - ${r.id} ${r.graph}: batch 1 ${r.timing.batch1}, batch 16 ${r.timing.batch16}`),
    '- Inputs are real and made by the handlers\' pre-processing from the shipped held-out data (test/bench/quant-feeds.ts): text-intent: held-out sentences across all three languages, one row each; audio-vad: frames of models/samples/audio/speech-en.wav as N streams, each with the recurrent state the handler carried to it; image-ocr: pages of 16 evaluation lines (992 × 1664, detected at 576 × 960), detection on N such pages stacked, recognition on N line crops cut by the handler from one page.',
    '',
    ...(run.notes.length > 0 ? ['## Notes', '', ...run.notes.map((n) => `- ${n}`), ''] : []),
  ];
  return lines.join('\n');
}

export function writeQuantReport(report: QuantReport, dir: string): { json: string; markdown: string } {
  return writeBenchFiles(dir, 'quant', report, quantMarkdown(report));
}
