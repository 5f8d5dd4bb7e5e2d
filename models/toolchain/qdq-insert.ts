/**
 * The QDQ rewrite of static quantization: QuantizeLinear → DequantizeLinear
 * pairs on the activations around each chosen node, and Conv and Gemm
 * weights and biases stored as integers behind a DequantizeLinear. onnxruntime's CPU
 * provider (its QDQ transformer) fuses each DQ → op → Q into the integer
 * kernel named in `quantizableOps`, so the graph stays runnable by any ONNX
 * runtime and fast where the fusion exists; a chain of quantized nodes then
 * passes uint8 from one to the next with no float pass in between.
 *
 * Conventions follow onnxruntime's own quantizer (QuantFormat.QDQ,
 * activations QUInt8, weights QInt8 per channel): activations asymmetric
 * uint8 with one scalar scale and zero point (the fusions require scalars);
 * weights symmetric int8 per output channel; bias int32 with scale
 * input_scale × weight_scale[c] and zero point 0, as QLinearConv defines it.
 */
import { TensorProto_DataType, type ModelProto, type NodeProto, type TensorProto } from 'onnx-buf';
import { MS_DOMAIN, node, tensor } from '../onnx-graph.js';
import type { TensorRange } from './calibrate.js';
import { freshNamer, useOpset } from './graph-edit.js';
import { defaultOpset, floatWeight, ModelToolError } from './onnx-model.js';
import { quantizeWeightsPerChannel } from './quantize-weights.js';

/** Per-axis QuantizeLinear/DequantizeLinear (the `axis` attribute) entered ai.onnx at opset 13. */
const perAxisOpset = 13;

/**
 * The ops the rewrite quantizes, and what onnxruntime 1.30's CPU QDQ
 * transformer turns DQ → op → Q into (qdq_selector_action_transformer.cc).
 * HardSigmoid has no integer kernel; it is rewritten to one (see below).
 */
export const quantizableOps: Record<string, string> = {
  Conv: 'QLinearConv',
  Gemm: 'QGemm (com.microsoft)',
  Add: 'QLinearAdd',
  Mul: 'QLinearMul (by a positive scalar: a rescaling DequantizeLinear, no kernel)',
  HardSigmoid: 'QLinearAdd with a rescaling DequantizeLinear',
  Sigmoid: 'QLinearSigmoid',
  GlobalAveragePool: 'QLinearGlobalAveragePool',
  AveragePool: 'QLinearAveragePool',
  Concat: 'QLinearConcat',
  Resize: 'Resize on uint8 (its Q/DQ dropped)',
};

/** Ops whose output takes its input's quantization: onnxruntime drops their Q/DQ only when both match. */
const keepsInputRange = new Set(['Resize']);

export interface ActivationParams {
  scale: number;
  zeroPoint: number;
}

/** HardSigmoid's output lies in [0, 1]: a uint8 tensor with these parameters saturates exactly there. */
const unitRange: ActivationParams = { scale: Math.fround(1 / 255), zeroPoint: 0 };

/** uint8 parameters covering the range and 0 (zero padding must stay exact). */
export function activationParams(name: string, range: TensorRange): ActivationParams {
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max)) {
    throw new ModelToolError(`tensor '${name}': calibration measured no finite range (${range.min}..${range.max}) — check that the calibration samples reach this part of the graph`);
  }
  const low = Math.min(range.min, 0);
  const high = Math.max(range.max, 0);
  const scale = Math.fround(high > low ? (high - low) / 255 : 1);
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-low / scale))) };
}

const floatAttribute = (n: NodeProto, name: string, fallback: number) => n.attribute.find((a) => a.name === name)?.f ?? fallback;

/** HardSigmoid's alpha and beta (ONNX defaults 0.2 and 0.5). */
export function hardSigmoidCoefficients(n: NodeProto): { alpha: number; beta: number } {
  return { alpha: floatAttribute(n, 'alpha', 0.2), beta: floatAttribute(n, 'beta', 0.5) };
}

/** The inputs of a quantizable node that carry activations (Resize's roi/scales/sizes do not). */
export function activationInputs(n: NodeProto, initializers: ReadonlySet<string>): string[] {
  const data = n.opType === 'Resize' || n.opType === 'Conv' || n.opType === 'Gemm' ? n.input.slice(0, 1) : n.input;
  return data.filter((name) => name !== '' && !initializers.has(name));
}

/**
 * The positive scalar of a Mul by a constant, such as PP-OCRv4's learnable
 * affine blocks: c·x holds the same uint8 values as x with the scale times
 * c, so such a Mul becomes a DequantizeLinear with that scale and no pass.
 */
function positiveScalarFactor(n: NodeProto, initializers: ReadonlyMap<string, TensorProto>): number | undefined {
  if (n.opType !== 'Mul') return undefined;
  const constants = n.input.map((name) => initializers.get(name)).filter((t) => t !== undefined);
  const c = constants.length === 1 ? floatWeight(constants[0]!) : undefined;
  return c && c.values.length === 1 && c.values[0]! > 0 ? c.values[0] : undefined;
}

/** The tensors whose ranges the rewrite of `targets` needs calibrated. */
export function tensorsToCalibrate(targets: readonly NodeProto[], initializers: ReadonlyMap<string, TensorProto>): string[] {
  const names = new Set<string>();
  const constants = new Set(initializers.keys());
  for (const n of targets) {
    for (const input of activationInputs(n, constants)) names.add(input);
    const outputTakesRange = n.opType === 'HardSigmoid' || keepsInputRange.has(n.opType) || positiveScalarFactor(n, initializers) !== undefined;
    if (!outputTakesRange) names.add(n.output[0]!);
  }
  return [...names];
}

/**
 * Rewrites `targets` (nodes of the main graph, in graph order, that the
 * plan found quantizable: Conv weights and biases float initializers,
 * other inputs float activations or float constants) to QDQ form with the
 * activation ranges given, in place. Values keep their names, so every
 * other reader (and the graph's outputs) sees the dequantized value of a
 * quantized node's output.
 */
export function insertQdq(model: ModelProto, targets: readonly NodeProto[], ranges: ReadonlyMap<string, TensorRange>): void {
  const graph = model.graph!;
  // Before opset 13 the contrib-domain Q/DQ carry `axis`; onnxruntime's QDQ transformer fuses them alike.
  const domain = defaultOpset(model) >= perAxisOpset ? '' : MS_DOMAIN;
  if (domain) useOpset(model, MS_DOMAIN, 1);
  const fresh = freshNamer(model);
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const chosen = new Set(targets);
  const added: TensorProto[] = [];
  const params = new Map<string, ActivationParams>();
  /** Each activation already given a Q/DQ pair: its uint8 tensor and its dequantized name. */
  const quantized = new Map<string, { uint8: string; dequantized: string }>();
  const rewritten: NodeProto[] = [];

  const paramsOf = (name: string) => {
    let p = params.get(name);
    if (!p) {
      const range = ranges.get(name);
      if (!range) throw new ModelToolError(`internal: no calibrated range for tensor '${name}'`);
      p = activationParams(name, range);
      params.set(name, p);
    }
    return p;
  };
  const scalars = (base: string, p: ActivationParams) => {
    const scale = fresh(`${base}_scale`);
    const zeroPoint = fresh(`${base}_zero_point`);
    added.push(tensor(scale, [], Float32Array.of(p.scale)), tensor(zeroPoint, [], Uint8Array.of(p.zeroPoint)));
    return [scale, zeroPoint];
  };
  /** Q → DQ for `source`, the DQ writing `target`; records `name` as quantized. */
  const qdqPair = (name: string, source: string, target: string, p: ActivationParams) => {
    const [scale, zeroPoint] = scalars(target, p);
    const uint8 = fresh(`${target}_quantized`);
    rewritten.push(node('QuantizeLinear', [source, scale!, zeroPoint!], [uint8], {}, domain), node('DequantizeLinear', [uint8, scale!, zeroPoint!], [target], {}, domain));
    quantized.set(name, { uint8, dequantized: target });
    params.set(name, p);
  };
  /** The dequantized name of an activation; one read by no other quantized node first gets its own pair. */
  const dequantizedInput = (name: string) => {
    if (!quantized.has(name)) qdqPair(name, name, fresh(`${name}_dequantized`), paramsOf(name));
    return quantized.get(name)!.dequantized;
  };
  /** A float constant as uint8 behind a DQ; a scalar is exact (its value maps to 0 or 255). */
  const constantInput = (name: string) => {
    const { dims, values } = floatWeight(initializers.get(name)!)!;
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) [min, max] = [Math.min(min, v), Math.max(max, v)];
    const p = activationParams(name, { min, max });
    const uint8 = fresh(`${name}_quantized`);
    added.push(tensor(uint8, dims, Uint8Array.from(values, (v) => Math.max(0, Math.min(255, Math.round(v / p.scale) + p.zeroPoint)))));
    const [scale, zeroPoint] = scalars(name, p);
    const output = fresh(`${name}_dequantized`);
    rewritten.push(node('DequantizeLinear', [uint8, scale!, zeroPoint!], [output], {}, domain));
    return output;
  };
  const perChannelDq = (name: string, values: Int8Array | Int32Array, dims: number[], scales: Float32Array, axis = 0) => {
    const uint8 = fresh(`${name}_quantized`);
    const scale = fresh(`${name}_scale`);
    const zeroPoint = fresh(`${name}_zero_point`);
    const output = fresh(`${name}_dequantized`);
    const zeros = values instanceof Int8Array ? new Int8Array(scales.length) : new Int32Array(scales.length);
    added.push(tensor(uint8, dims, values), tensor(scale, [scales.length], scales), tensor(zeroPoint, [scales.length], zeros));
    rewritten.push(node('DequantizeLinear', [uint8, scale, zeroPoint], [output], { axis: { int: axis } }, domain));
    return output;
  };
  /** The node now writes a float temporary; a Q/DQ pair writes its old output name, so its readers need no change. */
  const quantizeOutput = (n: NodeProto, p: ActivationParams) => {
    const output = n.output[0]!;
    const float = fresh(`${output}_float`);
    n.output = [float];
    rewritten.push(n);
    qdqPair(output, float, output, p);
  };

  /**
   * Conv: weights per output channel (axis 0 of [out, in, k…]). Gemm: per
   * output column, axis 1 of B[K, N] (axis 0 when transB), as QGemm takes them.
   */
  const rewriteWeighted = (conv: NodeProto) => {
    const [input, weightName, biasName] = conv.input as [string, string, string | undefined];
    const inputs = [dequantizedInput(input)];
    const inputScale = paramsOf(input).scale;
    const weight = floatWeight(initializers.get(weightName)!)!;
    const transB = Number(conv.attribute.find((a) => a.name === 'transB')?.i ?? 0);
    const axis = conv.opType === 'Gemm' && transB === 0 ? 1 : 0;
    const { q, scales } = quantizeWeightsPerChannel(weight.values, weight.dims, axis);
    inputs.push(perChannelDq(weightName, q, weight.dims, scales, axis));
    if (biasName) {
      const bias = floatWeight(initializers.get(biasName)!)!;
      const biasScales = Float32Array.from(scales, (s) => inputScale * s);
      const biasValues = Int32Array.from(bias.values, (b, c) => Math.max(-2147483647, Math.min(2147483647, Math.round(b / biasScales[c]!))));
      inputs.push(perChannelDq(biasName, biasValues, bias.dims, biasScales));
    }
    conv.input = inputs;
    quantizeOutput(conv, paramsOf(conv.output[0]!));
  };
  /**
   * HardSigmoid(x) = clip(αx + β, 0, 1): x's uint8 tensor read through a DQ
   * with scale α·s is αx; adding β is a QLinearAdd, and the clip is the
   * saturation of a uint8 output with scale 1/255 and zero point 0.
   */
  const rewriteHardSigmoid = (n: NodeProto) => {
    const { alpha, beta } = hardSigmoidCoefficients(n);
    const input = n.input[0]!;
    dequantizedInput(input);
    const p = paramsOf(input);
    const [scale, zeroPoint] = scalars(`${input}_times_alpha`, { scale: Math.fround(alpha * p.scale), zeroPoint: p.zeroPoint });
    const scaled = fresh(`${input}_times_alpha`);
    rewritten.push(node('DequantizeLinear', [quantized.get(input)!.uint8, scale!, zeroPoint!], [scaled], {}, domain));
    const betaName = fresh(`${n.output[0]}_beta`);
    initializers.set(betaName, tensor(betaName, [], Float32Array.of(beta)));
    quantizeOutput(node('Add', [scaled, constantInput(betaName)], [n.output[0]!]), unitRange);
  };
  /** Mul(x, c), c > 0: a DequantizeLinear of x's uint8 tensor with scale c·s writes the product. */
  const rewriteScalarMul = (n: NodeProto, factor: number) => {
    const input = n.input.find((name) => !initializers.has(name))!;
    dequantizedInput(input);
    const p = { scale: Math.fround(factor * paramsOf(input).scale), zeroPoint: paramsOf(input).zeroPoint };
    const [scale, zeroPoint] = scalars(n.output[0]!, p);
    const uint8 = quantized.get(input)!.uint8;
    rewritten.push(node('DequantizeLinear', [uint8, scale!, zeroPoint!], [n.output[0]!], {}, domain));
    quantized.set(n.output[0]!, { uint8, dequantized: n.output[0]! });
    params.set(n.output[0]!, p);
  };
  const rewriteOther = (n: NodeProto) => {
    const activations = new Set(activationInputs(n, new Set(initializers.keys())));
    n.input = n.input.map((name) => {
      if (activations.has(name)) return dequantizedInput(name);
      return n.opType !== 'Resize' && initializers.has(name) ? constantInput(name) : name;
    });
    quantizeOutput(n, keepsInputRange.has(n.opType) ? paramsOf([...activations][0]!) : paramsOf(n.output[0]!));
  };

  for (const current of graph.node) {
    if (!chosen.has(current)) {
      rewritten.push(current);
      continue;
    }
    const factor = positiveScalarFactor(current, initializers);
    if (current.opType === 'Conv' || current.opType === 'Gemm') rewriteWeighted(current);
    else if (current.opType === 'HardSigmoid') rewriteHardSigmoid(current);
    else if (factor !== undefined) rewriteScalarMul(current, factor);
    else rewriteOther(current);
  }
  graph.node = rewritten;
  graph.initializer.push(...added);
}

/** Whether an initializer is a float tensor (a weight the rewrite can quantize). */
export function isFloatInitializer(t: TensorProto | undefined): boolean {
  return t !== undefined && t.dataType === TensorProto_DataType.FLOAT;
}
