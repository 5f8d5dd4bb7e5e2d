/**
 * Exact FP32 rewrites run before static quantization, in the spirit of
 * onnxruntime's quant_pre_process: fold per-channel affine ops into the
 * Conv next to them, and write HardSwish as HardSigmoid × x. Without them
 * every op between two Convs runs on float, behind a DequantizeLinear and
 * before a QuantizeLinear, and eats the INT8 gain: PP-OCRv4's LCNet puts a
 * scalar Mul + Add (its "learnable affine blocks") on both sides of each
 * activation, and exports HardSwish as four elementwise ops.
 *
 * Folds (each only where the intermediate value has no other reader):
 * - Conv or ungrouped ConvTranspose → BatchNormalization / Mul(c) / Add(c),
 *   c scalar or per output channel (PP-OCRv4's detection head adds its
 *   ConvTranspose biases as separate Adds, each a float pass at full size);
 * - Mul(c) / Add(c) → Conv, c scalar or per input channel, when the Conv has
 *   group 1 and no padding (padding is zeros of the Conv's input, which an
 *   Add before it would have shifted, so a padded Conv cannot absorb one);
 * - x · Clip(x + 3, 0, 6) / 6 → x · HardSigmoid(x, 1/6, 1/2).
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { node, tensor } from '../onnx-graph.js';
import { consumersIn, freshNamer, producersIn, removeUnused } from './graph-edit.js';
import { floatWeight } from './onnx-model.js';

interface Rewrite {
  graph: GraphProto;
  initializers: Map<string, TensorProto>;
  consumers: Map<string, NodeProto[]>;
  producers: Map<string, NodeProto>;
  outputs: Set<string>;
  fresh: (base: string) => string;
}

const attributeInt = (n: NodeProto, name: string, fallback: number) => Number(n.attribute.find((a) => a.name === name)?.i ?? fallback);
const attributeFloat = (n: NodeProto, name: string, fallback: number) => n.attribute.find((a) => a.name === name)?.f ?? fallback;

function constant(r: Rewrite, name: string | undefined): { dims: number[]; values: Float32Array } | undefined {
  const t = name ? r.initializers.get(name) : undefined;
  return t ? floatWeight(t) : undefined;
}

/** The value's only reader, when it has exactly one and is not a graph output. */
function soleReader(r: Rewrite, value: string): NodeProto | undefined {
  const readers = r.consumers.get(value) ?? [];
  return readers.length === 1 && !r.outputs.has(value) ? readers[0] : undefined;
}

/** A constant operand as `channels` values, when it is a scalar or per-channel along axis 1 of an NCHW tensor. */
function perChannel(c: { dims: number[]; values: Float32Array }, channels: number): Float32Array | undefined {
  if (c.values.length === 1) return new Float32Array(channels).fill(c.values[0]!);
  if (c.values.length !== channels) return undefined;
  const dims = c.dims.length === 4 ? c.dims.slice(1) : c.dims;
  return dims.length === 3 && dims[0] === channels && dims[1] === 1 && dims[2] === 1 ? c.values : undefined;
}

/** The other input of a binary node, when `value` is one of its two inputs and the other is a float constant. */
function constantOperand(r: Rewrite, n: NodeProto, value: string) {
  if (n.input.length !== 2 || n.domain !== '') return undefined;
  const other = n.input[0] === value ? n.input[1] : n.input[1] === value ? n.input[0] : undefined;
  return constant(r, other);
}

interface ConvWeights {
  weight: { dims: number[]; values: Float32Array };
  bias: Float32Array;
}

/** Output channels of a Conv (weight axis 0) or ConvTranspose (axis 1; only ungrouped ones, where that is all of them). */
function outputChannels(conv: NodeProto, weightDims: number[]): number | undefined {
  if (conv.opType === 'Conv') return weightDims[0];
  return attributeInt(conv, 'group', 1) === 1 ? weightDims[1] : undefined;
}

function convWeights(r: Rewrite, conv: NodeProto): ConvWeights | undefined {
  const weight = constant(r, conv.input[1]);
  const channels = weight && weight.dims.length >= 3 ? outputChannels(conv, weight.dims) : undefined;
  if (!weight || channels === undefined) return undefined;
  const bias = conv.input[2] ? constant(r, conv.input[2])?.values : new Float32Array(channels);
  return bias ? { weight, bias: Float32Array.from(bias) } : undefined;
}

function setConvWeights(r: Rewrite, conv: NodeProto, w: ConvWeights): void {
  const weightName = r.fresh(`${conv.input[1]}_folded`);
  const biasName = r.fresh(`${conv.input[2] || `${conv.output[0]}_bias`}_folded`);
  r.graph.initializer.push(tensor(weightName, w.weight.dims, w.weight.values), tensor(biasName, [w.bias.length], w.bias));
  conv.input = [conv.input[0]!, weightName, biasName];
}

function removeNode(r: Rewrite, n: NodeProto): void {
  r.graph.node = r.graph.node.filter((m) => m !== n);
}

/** Conv / ConvTranspose → BatchNormalization / Mul(c) / Add(c): scale the weights and shift the bias per output channel. */
function foldAfterConv(r: Rewrite, conv: NodeProto): boolean {
  const next = soleReader(r, conv.output[0]!);
  const w = next && next.domain === '' ? convWeights(r, conv) : undefined;
  if (!next || !w) return false;
  const channels = outputChannels(conv, w.weight.dims)!;
  let scale: Float32Array | undefined;
  let shift: Float32Array | undefined;
  if (next.opType === 'BatchNormalization' && next.output.filter(Boolean).length === 1) {
    const [gamma, beta, mean, variance] = next.input.slice(1).map((name) => constant(r, name)?.values);
    if (!gamma || !beta || !mean || !variance) return false;
    const epsilon = attributeFloat(next, 'epsilon', 1e-5);
    scale = Float32Array.from(gamma, (g, c) => g / Math.sqrt(variance[c]! + epsilon));
    shift = Float32Array.from(beta, (b, c) => b - mean[c]! * scale![c]!);
  } else if (next.opType === 'Mul' || next.opType === 'Add') {
    const operand = constantOperand(r, next, conv.output[0]!);
    const values = operand && perChannel(operand, channels);
    if (!values) return false;
    if (next.opType === 'Mul') scale = values;
    else shift = values;
  } else {
    return false;
  }
  // A Conv weight is [out, in, k…], a ConvTranspose weight [in, out, k…]; each run of `taps` values shares one (in, out) pair.
  const taps = w.weight.values.length / (w.weight.dims[0]! * w.weight.dims[1]!);
  const channelOf = conv.opType === 'Conv' ? (i: number) => Math.floor(i / (taps * w.weight.dims[1]!)) : (i: number) => Math.floor(i / taps) % channels;
  if (scale) for (let i = 0; i < w.weight.values.length; i++) w.weight.values[i]! *= scale[channelOf(i)]!;
  for (let c = 0; c < channels; c++) w.bias[c] = w.bias[c]! * (scale?.[c] ?? 1) + (shift?.[c] ?? 0);
  setConvWeights(r, conv, w);
  conv.output = [next.output[0]!];
  removeNode(r, next);
  return true;
}

/** Mul(c) / Add(c) → unpadded, ungrouped Conv: scale the weights per input channel, or add W·c to the bias. */
function foldBeforeConv(r: Rewrite, conv: NodeProto): boolean {
  const previous = r.producers.get(conv.input[0]!);
  if (!previous || (previous.opType !== 'Mul' && previous.opType !== 'Add') || soleReader(r, conv.input[0]!) !== conv) return false;
  const pads = conv.attribute.find((a) => a.name === 'pads')?.ints ?? [];
  const autoPad = new TextDecoder().decode(conv.attribute.find((a) => a.name === 'auto_pad')?.s ?? new Uint8Array());
  if (attributeInt(conv, 'group', 1) !== 1 || pads.some((p) => p !== 0n) || (autoPad !== '' && autoPad !== 'NOTSET' && autoPad !== 'VALID')) return false;
  const w = convWeights(r, conv);
  if (!w) return false;
  const [outChannels, inChannels] = w.weight.dims as [number, number];
  const dataInput = previous.input.find((i) => !r.initializers.has(i));
  const operand = dataInput ? constantOperand(r, previous, dataInput) : undefined;
  const values = operand && perChannel(operand, inChannels);
  if (!values) return false;
  const taps = w.weight.values.length / (outChannels * inChannels);
  for (let o = 0; o < outChannels; o++) {
    for (let c = 0; c < inChannels; c++) {
      for (let k = 0; k < taps; k++) {
        const at = (o * inChannels + c) * taps + k;
        if (previous.opType === 'Mul') w.weight.values[at]! *= values[c]!;
        else w.bias[o]! += w.weight.values[at]! * values[c]!;
      }
    }
  }
  setConvWeights(r, conv, w);
  conv.input[0] = dataInput!;
  removeNode(r, previous);
  return true;
}

/** Whether the named float constant holds the single value `expected`. */
function isScalar(r: Rewrite, name: string | undefined, expected: number): boolean {
  const c = constant(r, name);
  return c !== undefined && c.values.length === 1 && c.values[0] === expected;
}

/** x · Clip(x + 3, 0, 6) / 6 → x · HardSigmoid(x): two float passes instead of four. */
function rewriteHardSwish(r: Rewrite, add: NodeProto): boolean {
  if (add.opType !== 'Add' || add.domain !== '') return false;
  const x = add.input.find((i) => !r.initializers.has(i));
  if (!x || !constantOperand(r, add, x) || !isScalar(r, add.input.find((i) => i !== x), 3)) return false;
  const clip = soleReader(r, add.output[0]!);
  if (!clip || clip.opType !== 'Clip') return false;
  const bounds = clip.input.length >= 3 ? isScalar(r, clip.input[1], 0) && isScalar(r, clip.input[2], 6) : attributeFloat(clip, 'min', NaN) === 0 && attributeFloat(clip, 'max', NaN) === 6;
  const mul = bounds ? soleReader(r, clip.output[0]!) : undefined;
  if (!mul || mul.opType !== 'Mul' || !mul.input.includes(x)) return false;
  const div = soleReader(r, mul.output[0]!);
  if (!div || div.opType !== 'Div' || div.input[0] !== mul.output[0] || !isScalar(r, div.input[1], 6)) return false;
  const gate = r.fresh(`${div.output[0]}_gate`);
  const hardSigmoid = node('HardSigmoid', [x], [gate], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } });
  const product = node('Mul', [x, gate], [div.output[0]!]);
  const at = r.graph.node.indexOf(add);
  r.graph.node = r.graph.node.filter((n) => n !== add && n !== clip && n !== mul && n !== div);
  r.graph.node.splice(at, 0, hardSigmoid, product);
  return true;
}

/** Applies the rewrites to the main graph until none applies; returns how many it made. Weights must be initializers. */
export function foldAffineOps(model: ModelProto): number {
  const graph = model.graph!;
  const fresh = freshNamer(model);
  let count = 0;
  for (;;) {
    const r: Rewrite = {
      graph,
      initializers: new Map(graph.initializer.map((t) => [t.name, t])),
      consumers: consumersIn(graph),
      producers: producersIn(graph),
      outputs: new Set(graph.output.map((o) => o.name)),
      fresh,
    };
    const applied = graph.node.find(
      (n) =>
        (n.opType === 'Conv' && n.domain === '' && (foldAfterConv(r, n) || foldBeforeConv(r, n))) ||
        (n.opType === 'ConvTranspose' && n.domain === '' && foldAfterConv(r, n)) ||
        rewriteHardSwish(r, n),
    );
    if (!applied) {
      // A chain of folds leaves each intermediate weight behind; onnxruntime warns about every one it finds.
      if (count > 0) removeUnused(model);
      return count;
    }
    count++;
  }
}
