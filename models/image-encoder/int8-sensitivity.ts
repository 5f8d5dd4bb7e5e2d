/**
 * Which nodes of MobileNetV2 lose the most when quantized: calibrates once
 * on the INT8 build's calibration images, then quantizes the graph again
 * with each Conv, Gemm and Add left in FP32 in turn (the ranges cached, see
 * StaticQuantizeOptions.rangeCache) and measures, on those same images,
 * how much closer the result comes to FP32: the mean embedding cosine gap
 * (1 − cosine) and the top-1 labels that differ. The held-out images are
 * not looked at, so that the nodes chosen from this list can be checked on
 * them honestly by build-int8.ts.
 *
 * Run: tsc -p . && node dist/models/image-encoder/int8-sensitivity.js [--method minmax|percentile] [--exclude a,b]
 * (--exclude: nodes kept FP32 in the baseline and in every trial.)
 */
import { clone } from '@bufbuild/protobuf';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { ModelProtoSchema } from 'onnx-buf';
import { findModel, loadCatalog, verifiedPath } from '../../shared/catalog.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import type { Tensor } from '../../shared/tensor.js';
import { encodeModel } from '../onnx-graph.js';
import { writeCalibrationSample, type CalibrationMethod, type TensorRange } from '../toolchain/calibrate.js';
import { nodeLabel, readModel } from '../toolchain/onnx-model.js';
import { quantizeStatic } from '../toolchain/quantize-static.js';
import { recordFeeds } from '../toolchain/recorded-feeds.js';
import { calibrationImages } from './photo-like-images.js';

const fp32Variant = 'mobilenet-v2';
/** The node kinds a trial leaves in FP32: the weighted ones and the residual Adds. */
const sweptOps = /^(Conv|Gemm|Add)$/;

interface Outputs {
  embedding: Float32Array;
  top: number;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function unit(values: Float32Array): Float32Array {
  const norm = Math.hypot(...values) || 1;
  return values.map((v) => v / norm);
}

async function outputsOf(modelBytes: Uint8Array, feeds: readonly Record<string, Tensor>[]): Promise<Outputs[]> {
  // Unoptimized, each Q/DQ pair computes in float what the integer kernels compute (the baseline's embedding
  // error agrees within 1%: 0.0178 against 0.0179 optimized), and a node left FP32 runs on float: optimized,
  // onnxruntime would quantize it per tensor itself (see quantize-static.ts), hiding what FP32 gains.
  const session = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: 2, logSeverityLevel: 3, graphOptimizationLevel: 'disabled' });
  try {
    const outputs: Outputs[] = [];
    for (const feed of feeds) {
      const input = feed.input!;
      const result = await session.run({ input: new ort.Tensor('float32', input.data as Float32Array, input.dims) });
      outputs.push({ embedding: unit(result.embedding!.data as Float32Array), top: argmax(result.probabilities!.data as Float32Array) });
    }
    return outputs;
  } finally {
    await session.release();
  }
}

/** Mean (1 − cosine) of the embeddings and the number of differing top-1 labels against FP32. */
function distance(reference: readonly Outputs[], candidate: readonly Outputs[]): { gap: number; flips: number } {
  let gap = 0;
  let flips = 0;
  for (const [i, r] of reference.entries()) {
    const c = candidate[i]!;
    gap += 1 - r.embedding.reduce((sum, v, k) => sum + v * c.embedding[k]!, 0);
    if (r.top !== c.top) flips++;
  }
  return { gap: gap / reference.length, flips };
}

async function main(args: string[]): Promise<void> {
  const option = (name: string) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
  const method = (option('--method') ?? 'minmax') as CalibrationMethod;
  if (method !== 'minmax' && method !== 'percentile') throw new Error(`--method must be minmax or percentile, got '${method}'`);
  const kept = option('--exclude')?.split(',').filter(Boolean) ?? [];
  const catalogModel = findModel(loadCatalog(), 'image-encoder');
  const fp32 = await loadModel(catalogModel, fp32Variant, { providers: ['cpu'], intraOpThreads: 2 }, createLogger('int8-sensitivity', 'warn'));
  const work = mkdtempSync(path.join(tmpdir(), 'encoder-sensitivity-'));
  try {
    const feeds: Record<string, Tensor>[] = [];
    for (const [i, image] of (await calibrationImages()).entries()) {
      const [feed] = (await recordFeeds(fp32, image.bytes))[fp32Variant]!;
      writeCalibrationSample(work, `sample-${String(i).padStart(4, '0')}`, feed!);
      feeds.push(feed!);
    }
    const modelFile = await verifiedPath(catalogModel.variants[fp32Variant]!.graphs[fp32Variant]!);
    const source = readModel(modelFile);
    const reference = await outputsOf(encodeModel(source), feeds);
    const rangeCache = new Map<string, TensorRange>();
    const trial = async (exclude: string[]) => {
      const model = clone(ModelProtoSchema, source);
      const report = await quantizeStatic(model, { calibrationDir: work, method, exclude, modelFile, rangeCache });
      return { report, ...distance(reference, await outputsOf(encodeModel(model), feeds)) };
    };
    const baseline = await trial(kept);
    console.log(`${feeds.length} calibration images, ${method}, FP32 kept: [${kept.join(', ')}]: gap ${baseline.gap.toFixed(5)}, ${baseline.flips} top-1 flips`);
    const labels = new Map(source.graph!.node.map((n) => [nodeLabel(n), n.opType]));
    const candidates = baseline.report.quantized.filter((name) => sweptOps.test(labels.get(name) ?? '') && !kept.includes(name));
    const rows: { node: string; gap: number; flips: number }[] = [];
    for (const node of candidates) {
      const { gap, flips } = await trial([...kept, node]);
      rows.push({ node, gap, flips });
    }
    rows.sort((a, b) => a.gap - b.gap);
    console.log('node kept FP32 | gap | gap removed | top-1 flips');
    for (const r of rows) console.log(`${r.node} (${labels.get(r.node)}) | ${r.gap.toFixed(5)} | ${(((baseline.gap - r.gap) / baseline.gap) * 100).toFixed(1)}% | ${r.flips}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await fp32.close();
  }
}

await main(process.argv.slice(2));
