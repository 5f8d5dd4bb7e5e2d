/**
 * The QDQ rewrite of static quantization: QuantizeLinear → DequantizeLinear
 * pairs on the activations around each chosen Conv, and its weight and bias
 * stored as integers behind a DequantizeLinear. onnxruntime's CPU provider
 * fuses DQ → Conv → Q into one QLinearConv (its QDQ transformer), so the
 * graph stays runnable by any ONNX runtime and fast where the fusion exists.
 *
 * Conventions follow onnxruntime's own quantizer (QuantFormat.QDQ,
 * activations QUInt8, weights QInt8 per channel): activations asymmetric
 * uint8 with one scalar scale and zero point (the fusion requires scalars);
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

export interface ActivationParams {
  scale: number;
  zeroPoint: number;
}

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

/**
 * Rewrites `convs` (nodes of the main graph whose weight, and bias if any,
 * are float initializers) to QDQ form with the activation ranges given, in
 * place. Values keep their names, so every other reader (and the graph's
 * outputs) sees the dequantized value of a quantized Conv's output.
 */
export function insertQdq(model: ModelProto, convs: readonly NodeProto[], ranges: ReadonlyMap<string, TensorRange>): void {
  const graph = model.graph!;
  // Before opset 13 the contrib-domain Q/DQ carry `axis`; onnxruntime's QDQ transformer fuses them alike.
  const domain = defaultOpset(model) >= perAxisOpset ? '' : MS_DOMAIN;
  if (domain) useOpset(model, MS_DOMAIN, 1);
  const fresh = freshNamer(model);
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const targets = new Set(convs);
  const added: TensorProto[] = [];
  const params = new Map<string, ActivationParams>();
  /** The dequantized name of each activation already given a Q/DQ pair. */
  const dequantized = new Map<string, string>();

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
  /** Q → DQ nodes for `source`, writing `target`. */
  const qdqPair = (source: string, target: string, p: ActivationParams): NodeProto[] => {
    const scale = fresh(`${target}_scale`);
    const zeroPoint = fresh(`${target}_zero_point`);
    const quantized = fresh(`${target}_quantized`);
    added.push(tensor(scale, [], Float32Array.of(p.scale)), tensor(zeroPoint, [], Uint8Array.of(p.zeroPoint)));
    return [node('QuantizeLinear', [source, scale, zeroPoint], [quantized], {}, domain), node('DequantizeLinear', [quantized, scale, zeroPoint], [target], {}, domain)];
  };
  const perChannelDq = (name: string, values: Int8Array | Int32Array, dims: number[], scales: Float32Array): { nodes: NodeProto[]; output: string } => {
    const quantized = fresh(`${name}_quantized`);
    const scale = fresh(`${name}_scale`);
    const zeroPoint = fresh(`${name}_zero_point`);
    const output = fresh(`${name}_dequantized`);
    const zeros = values instanceof Int8Array ? new Int8Array(scales.length) : new Int32Array(scales.length);
    added.push(tensor(quantized, dims, values), tensor(scale, [scales.length], scales), tensor(zeroPoint, [scales.length], zeros));
    return { nodes: [node('DequantizeLinear', [quantized, scale, zeroPoint], [output], { axis: { int: 0 } }, domain)], output };
  };

  const rewritten: NodeProto[] = [];
  for (const current of graph.node) {
    if (!targets.has(current)) {
      rewritten.push(current);
      continue;
    }
    const [input, weightName, biasName] = current.input as [string, string, string | undefined];
    // An activation produced by another quantized Conv is already a DQ output; anything else gets its own pair.
    if (!dequantized.has(input)) {
      const target = fresh(`${input}_dequantized`);
      rewritten.push(...qdqPair(input, target, paramsOf(input)));
      dequantized.set(input, target);
    }
    const inputScale = paramsOf(input).scale;
    const weight = floatWeight(initializers.get(weightName)!)!;
    const { q, scales } = quantizeWeightsPerChannel(weight.values, weight.dims, 0);
    const weightDq = perChannelDq(weightName, q, weight.dims, scales);
    rewritten.push(...weightDq.nodes);
    const inputs = [dequantized.get(input)!, weightDq.output];
    if (biasName) {
      const bias = floatWeight(initializers.get(biasName)!)!;
      const biasScales = Float32Array.from(scales, (s) => inputScale * s);
      const biasValues = Int32Array.from(bias.values, (b, c) => Math.max(-2147483647, Math.min(2147483647, Math.round(b / biasScales[c]!))));
      const biasDq = perChannelDq(biasName, biasValues, bias.dims, biasScales);
      rewritten.push(...biasDq.nodes);
      inputs.push(biasDq.output);
    }
    const output = current.output[0]!;
    const floatOutput = fresh(`${output}_float`);
    current.input = inputs;
    current.output = [floatOutput];
    rewritten.push(current);
    // The pair writes the Conv's old output name, so its readers and graph outputs need no change.
    rewritten.push(...qdqPair(floatOutput, output, paramsOf(output)));
    dequantized.set(output, output);
  }
  graph.node = rewritten;
  graph.initializer.push(...added);
}

/** Whether an initializer is a float tensor (a weight the rewrite can quantize). */
export function isFloatInitializer(t: TensorProto | undefined): boolean {
  return t !== undefined && t.dataType === TensorProto_DataType.FLOAT;
}
