/**
 * `quantize --mode static`: INT8 activations and weights for conv nets, in
 * QDQ form (see qdq-insert.ts), with activation ranges calibrated over real
 * samples (see calibrate.ts). Only Conv is quantized: it is where a conv
 * net spends its time, and the one op onnxruntime's CPU provider turns into
 * an integer kernel without float conversions on every elementwise op in
 * between. The model is changed in place; the caller writes it.
 */
import ort from 'onnxruntime-node';
import type { ModelProto, NodeProto } from 'onnx-buf';
import { encodeModel } from '../onnx-graph.js';
import { calibrationSampleFiles, collectRanges, feedNames, readCalibrationSample, type CalibrationMethod } from './calibrate.js';
import { foldAffineOps } from './fold-affine.js';
import { removeUnused } from './graph-edit.js';
import { constantsToInitializers, ModelToolError, nodeLabel } from './onnx-model.js';
import { upgradeToOpset10 } from './opset-upgrade.js';
import { insertQdq, isFloatInitializer } from './qdq-insert.js';
import { findQuantizedNode, type QuantizeReport } from './quantize-weights.js';

export interface StaticQuantizeOptions {
  /** Folder of calibration samples (see calibrate.ts for what it holds). */
  calibrationDir: string;
  method: CalibrationMethod;
  /** Names of Conv nodes to leave in FP32, e.g. those measured slower quantized. */
  exclude?: string[];
  /** The input file, for messages. */
  modelFile: string;
}

/** Ops with weights that static mode leaves to other modes. */
const otherWeightedOps = new Set(['ConvTranspose', 'MatMul', 'Gemm']);

interface Plan {
  convs: NodeProto[];
  keptFloat: QuantizeReport['keptFloat'];
}

function refuseQuantized(model: ModelProto, modelFile: string): void {
  const already = findQuantizedNode(model.graph!);
  if (already) {
    throw new ModelToolError(`${modelFile}: already quantized (it has ${already.opType} node '${nodeLabel(already)}') — quantize the FP32 model instead`);
  }
}

function plan(model: ModelProto, exclude: ReadonlySet<string>, modelFile: string): Plan {
  const graph = model.graph!;
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const labels = new Set(graph.node.map(nodeLabel));
  const unknown = [...exclude].filter((name) => !labels.has(name));
  if (unknown.length > 0) {
    throw new ModelToolError(`${modelFile}: --exclude names no node called ${unknown.map((n) => `'${n}'`).join(', ')} — use the node names 'splitinfer model inspect' lists`);
  }
  const convs: NodeProto[] = [];
  const keptFloat: Plan['keptFloat'] = [];
  for (const n of graph.node) {
    const label = nodeLabel(n);
    if (n.opType === 'Conv' && n.domain === '') {
      const [, weight, bias] = n.input;
      if (exclude.has(label)) keptFloat.push({ node: label, reason: 'excluded' });
      else if (!isFloatInitializer(initializers.get(weight ?? ''))) keptFloat.push({ node: label, reason: 'its weight is computed at run time, not a float constant' });
      else if (bias && !isFloatInitializer(initializers.get(bias))) keptFloat.push({ node: label, reason: 'its bias is computed at run time, not a float constant' });
      else convs.push(n);
    } else if (otherWeightedOps.has(n.opType) && n.domain === '') {
      keptFloat.push({ node: label, reason: `static mode quantizes Conv only (${n.opType} stays FP32; --mode dynamic quantizes MatMul/Gemm weights)` });
    }
  }
  if (convs.length === 0) {
    const ops = [...new Set(graph.node.map((n) => n.opType))].join(', ');
    throw new ModelToolError(`${modelFile}: no Conv node to quantize statically (ops: ${ops}) — static mode is for conv nets; use --mode dynamic for MatMul/Gemm models`);
  }
  return { convs, keptFloat };
}

/** Loads and runs the rewritten model once, so a model that would not run is never written. */
async function checkRuns(model: ModelProto, sampleFile: string, modelFile: string): Promise<void> {
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
    await session.run(readCalibrationSample(sampleFile, feedNames(model)));
  } catch (err) {
    if (err instanceof ModelToolError) throw err;
    throw new ModelToolError(
      `${modelFile}: the quantized model does not run in onnxruntime-node (${(err as Error).message}) — leave the node it names in FP32 with --exclude, and report the model`,
    );
  } finally {
    await session?.release();
  }
}

export async function quantizeStatic(model: ModelProto, options: StaticQuantizeOptions): Promise<QuantizeReport> {
  refuseQuantized(model, options.modelFile);
  const samples = calibrationSampleFiles(options.calibrationDir);
  constantsToInitializers(model);
  upgradeToOpset10(model, options.modelFile);
  foldAffineOps(model);
  const { convs, keptFloat } = plan(model, new Set(options.exclude ?? []), options.modelFile);
  const activations = [...new Set(convs.flatMap((n) => [n.input[0]!, n.output[0]!]))];
  const ranges = await collectRanges(model, activations, samples, options.method);
  const quantized = convs.map(nodeLabel);
  insertQdq(model, convs, ranges);
  removeUnused(model);
  await checkRuns(model, samples[0]!, options.modelFile);
  return { quantized, keptFloat };
}
