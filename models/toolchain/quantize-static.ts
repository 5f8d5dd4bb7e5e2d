/**
 * `quantize --mode static`: INT8 activations and weights for conv nets, in
 * QDQ form (see qdq-insert.ts), with activation ranges calibrated over real
 * samples (see calibrate.ts). Every Conv is quantized, and so is each op
 * with an integer kernel in onnxruntime (Add, Mul, HardSigmoid, Sigmoid,
 * pools, Concat, Resize) whose activation inputs all come from quantized
 * nodes: the conv net's elementwise glue then runs on uint8 instead of
 * paying a DequantizeLinear, a float pass and a QuantizeLinear each. Ops
 * fed by float work (a transformer block's residual Adds) stay FP32, as
 * quantizing them would add a QuantizeLinear in front of each. The model
 * is changed in place; the caller writes it.
 */
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema, type ModelProto, type NodeProto } from 'onnx-buf';
import { encodeModel } from '../onnx-graph.js';
import { calibrationSampleFiles, collectRanges, feedNames, readCalibrationSample, type CalibrationMethod } from './calibrate.js';
import { floatValues } from './float-values.js';
import { foldAffineOps } from './fold-affine.js';
import { consumersIn, producersIn, removeUnused } from './graph-edit.js';
import { constantsToInitializers, ModelToolError, nodeLabel } from './onnx-model.js';
import { upgradeToOpset10 } from './opset-upgrade.js';
import { activationInputs, hardSigmoidCoefficients, insertQdq, isFloatInitializer, quantizableOps, tensorsToCalibrate } from './qdq-insert.js';
import { findQuantizedNode, type QuantizeReport } from './quantize-weights.js';
import { assertLoadsInOnnxRuntime } from './verify-model.js';

export interface StaticQuantizeOptions {
  /** Folder of calibration samples (see calibrate.ts for what it holds). */
  calibrationDir: string;
  method: CalibrationMethod;
  /** Names of nodes to leave in FP32, e.g. those measured slower quantized. */
  exclude?: string[];
  /** The input file, for messages. */
  modelFile: string;
}

/** Ops with weights that static mode leaves in FP32 (the reasons are in `plan`). */
const otherWeightedOps = new Set(['ConvTranspose', 'MatMul', 'Gemm']);

interface Plan {
  targets: NodeProto[];
  /** Relus after a quantized Conv: the Conv's uint8 output with zero point 0 saturates where the Relu clips. */
  absorbedRelus: NodeProto[];
  /** Labels of the targets and absorbed Relus, in graph order. */
  quantized: string[];
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
  const targets: NodeProto[] = [];
  const absorbedRelus: NodeProto[] = [];
  const quantized: string[] = [];
  const keptFloat: Plan['keptFloat'] = [];
  const float = floatValues(graph);
  const constants = new Set(initializers.keys());
  const readers = consumersIn(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  const producers = producersIn(graph);
  /** Outputs of the nodes chosen so far: the graph is in topological order, so one pass sees each producer first. */
  const quantizedValues = new Set<string>();
  const choose = (n: NodeProto) => {
    targets.push(n);
    quantized.push(nodeLabel(n));
    quantizedValues.add(n.output[0]!);
  };
  for (const n of graph.node) {
    const label = nodeLabel(n);
    if (n.domain !== '') continue;
    const input = n.input[0] ?? '';
    if (n.opType === 'Relu' && quantizedValues.has(input) && producers.get(input)?.opType === 'Conv' && readers.get(input)?.length === 1 && !outputs.has(input) && !exclude.has(label)) {
      absorbedRelus.push(n);
      quantized.push(label);
      quantizedValues.add(n.output[0]!);
    } else if (n.opType === 'Conv') {
      const [, weight, bias] = n.input;
      if (exclude.has(label)) keptFloat.push({ node: label, reason: 'excluded' });
      else if (!isFloatInitializer(initializers.get(weight ?? ''))) keptFloat.push({ node: label, reason: 'its weight is computed at run time, not a float constant' });
      else if (bias && !isFloatInitializer(initializers.get(bias))) keptFloat.push({ node: label, reason: 'its bias is computed at run time, not a float constant' });
      else choose(n);
    } else if (otherWeightedOps.has(n.opType)) {
      const reason =
        n.opType === 'ConvTranspose'
          ? "onnxruntime's CPU provider has no QDQ fusion for ConvTranspose, so it would still run on float, behind a DequantizeLinear"
          : `static mode leaves ${n.opType} to --mode dynamic, which quantizes MatMul/Gemm weights`;
      keptFloat.push({ node: label, reason });
    } else if (n.opType in quantizableOps && n.output.length === 1 && float.has(n.output[0]!)) {
      const activations = activationInputs(n, constants);
      const dataInputs = n.opType === 'Resize' ? n.input.slice(0, 1) : n.input;
      const fedQuantized = activations.length > 0 && activations.every((a) => quantizedValues.has(a)) && dataInputs.every((i) => float.has(i));
      if (!fedQuantized) continue;
      if (exclude.has(label)) keptFloat.push({ node: label, reason: 'excluded' });
      else if (n.opType === 'HardSigmoid' && !(hardSigmoidCoefficients(n).alpha > 0)) keptFloat.push({ node: label, reason: 'its alpha is not positive, which the uint8 rewrite needs' });
      else choose(n);
    }
  }
  if (!targets.some((n) => n.opType === 'Conv')) {
    const ops = [...new Set(graph.node.map((n) => n.opType))].join(', ');
    throw new ModelToolError(`${modelFile}: no Conv node to quantize statically (ops: ${ops}) — static mode is for conv nets; use --mode dynamic for MatMul/Gemm models`);
  }
  return { targets, absorbedRelus, quantized, keptFloat };
}

/** Each Conv writes its Relu's output and the Relu goes; the quantizer then gives that value zero point 0 (its range starts at 0). */
function absorbRelus(model: ModelProto, relus: readonly NodeProto[]): void {
  const graph = model.graph!;
  const producers = producersIn(graph);
  for (const relu of relus) producers.get(relu.input[0]!)!.output[0] = relu.output[0]!;
  const dropped = new Set(relus);
  graph.node = graph.node.filter((n) => !dropped.has(n));
}

/** Loads and runs the rewritten model once, so a model that would not run is never written. */
async function checkRuns(model: ModelProto, sampleFile: string, modelFile: string): Promise<void> {
  const feeds = readCalibrationSample(sampleFile, feedNames(model));
  await assertLoadsInOnnxRuntime(encodeModel(model), `quantized ${modelFile}`, 'leave the node it names in FP32 with --exclude, and report the model', feeds);
}

export async function quantizeStatic(model: ModelProto, options: StaticQuantizeOptions): Promise<QuantizeReport> {
  refuseQuantized(model, options.modelFile);
  const samples = calibrationSampleFiles(options.calibrationDir);
  constantsToInitializers(model);
  upgradeToOpset10(model, options.modelFile);
  foldAffineOps(model);
  const { targets, absorbedRelus, quantized, keptFloat } = plan(model, new Set(options.exclude ?? []), options.modelFile);
  const fp32 = clone(ModelProtoSchema, model);
  absorbRelus(model, absorbedRelus);
  const initializers = new Map(model.graph!.initializer.map((t) => [t.name, t]));
  // Ranges come from the FP32 graph, where each absorbed Relu's output (now its Conv's) is measured after the Relu.
  const ranges = await collectRanges(fp32, tensorsToCalibrate(targets, initializers), samples, options.method);
  insertQdq(model, targets, ranges);
  removeUnused(model);
  await checkRuns(model, samples[0]!, options.modelFile);
  return { quantized, keptFloat };
}
