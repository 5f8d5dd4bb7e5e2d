/**
 * `quantize --mode static`: INT8 activations and weights for conv nets, in
 * QDQ form (see qdq-insert.ts), with activation ranges calibrated over real
 * samples (see calibrate.ts). Every Conv (depthwise ones too) and Gemm is
 * quantized, and so is each op with an integer kernel in onnxruntime (Add, Mul, HardSigmoid, Sigmoid,
 * pools, Concat, Resize) whose activation inputs all come from quantized
 * nodes: the conv net's elementwise glue then runs on uint8 instead of
 * paying a DequantizeLinear, a float pass and a QuantizeLinear each. Ops
 * fed by float work (a transformer block's residual Adds) stay FP32, as
 * quantizing them would add a QuantizeLinear in front of each. A
 * ConvTranspose whose kernel equals its stride is first rewritten as a 1×1
 * Conv and a DepthToSpace (rewrite-conv-transpose.ts), so it is quantized
 * too. The model is changed in place; the caller writes it.
 */
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema, type ModelProto, type NodeProto, type TensorProto } from 'onnx-buf';
import { encodeModel } from '../onnx-graph.js';
import { calibrationSampleFiles, collectRanges, feedNames, readCalibrationSample, type CalibrationMethod, type TensorRange } from './calibrate.js';
import { floatValues } from './float-values.js';
import { foldAffineOps } from './fold-affine.js';
import { foldStructure } from './fold-structure.js';
import { consumersIn, producersIn, removeUnused } from './graph-edit.js';
import { constantsToInitializers, floatWeight, ModelToolError, nodeLabel } from './onnx-model.js';
import { upgradeToOpset10 } from './opset-upgrade.js';
import { rewriteConvTransposes } from './rewrite-conv-transpose.js';
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
  /**
   * Ranges measured by an earlier run on the same model, samples and method,
   * by tensor name: tensors found here are not calibrated again, and the
   * ones measured now are added. A sweep that quantizes one model many
   * times, leaving out a different node each time, calibrates once.
   */
  rangeCache?: Map<string, TensorRange>;
}

/** Ops with weights that static mode leaves in FP32 (the reasons are in `plan`). */
const otherWeightedOps = new Set(['ConvTranspose', 'MatMul']);

/** The weighted ops whose output may absorb the activation after it. */
const absorbingOps = new Set(['Conv', 'Gemm']);

interface Plan {
  targets: NodeProto[];
  /**
   * Relus and Clips (ReLU6) after a quantized Conv or Gemm: the uint8 output,
   * its range measured after the activation, saturates where the activation clips.
   */
  absorbedActivations: NodeProto[];
  /** Labels of the targets and absorbed activations, in graph order. */
  quantized: string[];
  keptFloat: QuantizeReport['keptFloat'];
}

function refuseQuantized(model: ModelProto, modelFile: string): void {
  const already = findQuantizedNode(model.graph!);
  if (already) {
    throw new ModelToolError(`${modelFile}: already quantized (it has ${already.opType} node '${nodeLabel(already)}') — quantize the FP32 model instead`);
  }
}

/**
 * Whether `n` is a Relu, or a Clip with constant bounds min ≤ 0 ≤ max: then a
 * uint8 tensor whose range [low ≤ 0, high ≥ 0] was measured after it
 * saturates inside [min, max], so quantizing its input gives the same uint8
 * values as quantizing its output.
 */
function isClampingActivation(n: NodeProto, initializers: ReadonlyMap<string, TensorProto>): boolean {
  if (n.opType === 'Relu') return true;
  if (n.opType !== 'Clip') return false;
  // Before opset 11 the bounds are attributes; from 11 optional constant inputs.
  const bound = (at: number, name: string, fallback: number) => {
    if (n.input.length <= 1) return n.attribute.find((a) => a.name === name)?.f ?? fallback;
    const input = n.input[at] ?? '';
    if (input === '') return fallback;
    const t = initializers.get(input);
    return t ? floatWeight(t)?.values[0] : undefined;
  };
  const min = bound(1, 'min', -Infinity);
  const max = bound(2, 'max', Infinity);
  return min !== undefined && max !== undefined && min <= 0 && max >= 0;
}

/** Why a Gemm cannot be quantized, or undefined when it can: constant B and C, and no scaling or transposed A. */
function gemmRefusal(n: NodeProto, initializers: ReadonlyMap<string, TensorProto>): string | undefined {
  const attribute = (name: string) => n.attribute.find((a) => a.name === name);
  const [, b, c] = n.input;
  if (Number(attribute('transA')?.i ?? 0) !== 0) return 'transA = 1 (the integer Gemm reads A as is)';
  if ((attribute('alpha')?.f ?? 1) !== 1 || (attribute('beta')?.f ?? 1) !== 1) return 'alpha or beta is not 1';
  if (!isFloatInitializer(initializers.get(b ?? ''))) return 'its B is computed at run time, not a float constant';
  if (c && (!isFloatInitializer(initializers.get(c)) || initializers.get(c)!.dims.length !== 1)) return 'its C is not a 1-D float constant (one bias per output column)';
  return undefined;
}

/**
 * Why an excluded Conv or Gemm is FP32, and whether it really is: onnxruntime
 * (1.20 on, its WeightBiasQuantization transformer) gives a float Conv or
 * Gemm that reads a DequantizeLinear per-tensor int8 weights of its own,
 * which loses more than the per-channel weights it was excluded from.
 */
function excludedReason(readsQuantized: boolean): string {
  return readsQuantized
    ? 'excluded, but it reads a quantized value, so onnxruntime quantizes its weights per tensor when it loads the model — leave the node that feeds it in FP32 too'
    : 'excluded';
}

/**
 * `refusedConvTransposes`: why rewriteConvTransposes left each remaining
 * ConvTranspose as it was.
 */
function plan(model: ModelProto, exclude: ReadonlySet<string>, modelFile: string, refusedConvTransposes: ReadonlyMap<string, string>): Plan {
  const graph = model.graph!;
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const labels = new Set(graph.node.map(nodeLabel));
  const unknown = [...exclude].filter((name) => !labels.has(name));
  if (unknown.length > 0) {
    throw new ModelToolError(`${modelFile}: --exclude names no node called ${unknown.map((n) => `'${n}'`).join(', ')} — use the node names 'splitinfer model inspect' lists`);
  }
  const targets: NodeProto[] = [];
  const absorbedActivations: NodeProto[] = [];
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
    const producer = producers.get(input);
    if (isClampingActivation(n, initializers) && quantizedValues.has(input) && absorbingOps.has(producer?.opType ?? '') && readers.get(input)?.length === 1 && !outputs.has(input) && !exclude.has(label)) {
      absorbedActivations.push(n);
      quantized.push(label);
      quantizedValues.add(n.output[0]!);
    } else if (n.opType === 'Conv') {
      const [, weight, bias] = n.input;
      if (exclude.has(label)) keptFloat.push({ node: label, reason: excludedReason(quantizedValues.has(input)) });
      else if (!isFloatInitializer(initializers.get(weight ?? ''))) keptFloat.push({ node: label, reason: 'its weight is computed at run time, not a float constant' });
      else if (bias && !isFloatInitializer(initializers.get(bias))) keptFloat.push({ node: label, reason: 'its bias is computed at run time, not a float constant' });
      else choose(n);
    } else if (n.opType === 'Gemm') {
      const refusal = exclude.has(label) ? excludedReason(quantizedValues.has(input)) : gemmRefusal(n, initializers);
      if (refusal) keptFloat.push({ node: label, reason: refusal });
      else choose(n);
    } else if (otherWeightedOps.has(n.opType)) {
      const reason =
        n.opType === 'ConvTranspose'
          ? `onnxruntime's CPU provider has no QDQ fusion for ConvTranspose, and it is no 1×1 Conv plus DepthToSpace (${refusedConvTransposes.get(label)})`
          : 'static mode leaves MatMul to --mode dynamic, which quantizes MatMul weights';
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
  return { targets, absorbedActivations, quantized, keptFloat };
}

/** Each Conv or Gemm writes its activation's output and the activation goes; the quantizer gives that value the range measured after it. */
function absorbActivations(model: ModelProto, activations: readonly NodeProto[]): void {
  const graph = model.graph!;
  const producers = producersIn(graph);
  for (const activation of activations) producers.get(activation.input[0]!)!.output[0] = activation.output[0]!;
  const dropped = new Set(activations);
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
  foldStructure(model);
  foldAffineOps(model);
  const { refused } = rewriteConvTransposes(model);
  const { targets, absorbedActivations, quantized, keptFloat } = plan(model, new Set(options.exclude ?? []), options.modelFile, new Map(refused.map((r) => [r.node, r.reason])));
  const fp32 = clone(ModelProtoSchema, model);
  absorbActivations(model, absorbedActivations);
  const initializers = new Map(model.graph!.initializer.map((t) => [t.name, t]));
  // Ranges come from the FP32 graph, where each absorbed activation's output (now its Conv's) is measured after the activation.
  const ranges = options.rangeCache ?? new Map<string, TensorRange>();
  const unmeasured = tensorsToCalibrate(targets, initializers).filter((name) => !ranges.has(name));
  if (unmeasured.length > 0) for (const [name, range] of await collectRanges(fp32, unmeasured, samples, options.method)) ranges.set(name, range);
  insertQdq(model, targets, ranges);
  removeUnused(model);
  await checkRuns(model, samples[0]!, options.modelFile);
  return { quantized, keptFloat };
}
