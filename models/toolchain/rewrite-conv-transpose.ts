/**
 * An exact FP32 rewrite run before static quantization: a ConvTranspose
 * whose kernel equals its stride s (no padding, output padding or dilation,
 * one group) writes each input pixel's s×s output block from that pixel
 * alone, so it is a 1×1 Conv to C_out·s² channels followed by DepthToSpace.
 * onnxruntime's CPU provider has no QDQ fusion for ConvTranspose, but it
 * quantizes that Conv like any other.
 *
 * A DepthToSpace on uint8 has no kernel in onnxruntime either (its QDQ
 * transformer says so where it lists the ops whose Q/DQ it drops), so each new
 * one then sinks past the per-pixel ops after it: an elementwise activation
 * commutes with it, and a 1×1 Conv becomes a grouped Conv (one group per
 * block position, the weights repeated). PP-OCRv4's detection head,
 * ConvTranspose → Relu → ConvTranspose → Sigmoid, so becomes Conv → Relu →
 * Conv → Sigmoid at the head's input size, all quantizable, and two
 * DepthToSpace on the one-channel float output.
 *
 * DepthToSpace runs in DCR mode (the default, and the only one before
 * opset 11): output (c, s·h + i, s·w + j) is input channel (i·s + j)·C + c,
 * so the channels of one block position are contiguous, as a group is.
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { node, tensor } from '../onnx-graph.js';
import { consumersIn, freshNamer } from './graph-edit.js';
import { floatWeight, nodeLabel } from './onnx-model.js';

export interface ConvTransposeRewrite {
  /** Labels of the ConvTransposes now a Conv (named as the ConvTranspose was) and a DepthToSpace. */
  rewritten: string[];
  /** ConvTransposes left as they were, each with the reason. */
  refused: { node: string; reason: string }[];
}

/** Per-pixel ops with one activation input (any others constant) that commute with moving pixels around. */
const elementwiseOps = new Set(['Relu', 'Sigmoid', 'Clip', 'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Tanh', 'Elu']);

const ints = (n: NodeProto, name: string) => n.attribute.find((a) => a.name === name)?.ints.map(Number);
const int = (n: NodeProto, name: string, fallback: number) => Number(n.attribute.find((a) => a.name === name)?.i ?? fallback);
const allEqual = (values: readonly number[] | undefined, expected: number) => (values ?? []).every((v) => v === expected);

/** The float weight of an input, when it is an initializer. */
function weightOf(initializers: ReadonlyMap<string, TensorProto>, name: string | undefined) {
  const t = name ? initializers.get(name) : undefined;
  return t ? floatWeight(t) : undefined;
}

/** Why `n` is not a ConvTranspose this rewrite turns into a Conv, or its block size s when it is. */
function blockSize(n: NodeProto, initializers: ReadonlyMap<string, TensorProto>): number | string {
  const weight = weightOf(initializers, n.input[1]);
  if (!weight) return 'its weight is not a float constant';
  if (n.input[2] && !weightOf(initializers, n.input[2])) return 'its bias is not a float constant';
  if (weight.dims.length !== 4) return `its weight has ${weight.dims.length} dims; only 2-D ConvTransposes (4-D weights) become DepthToSpace`;
  const [kh, kw] = weight.dims.slice(2) as [number, number];
  const strides = ints(n, 'strides') ?? [1, 1];
  if (kh !== kw || strides.some((s) => s !== kh)) return `kernel ${kh}×${kw} with strides ${strides.join('×')}: only a square kernel equal to its stride writes non-overlapping blocks`;
  if (int(n, 'group', 1) !== 1) return 'it is grouped';
  if (!allEqual(ints(n, 'pads'), 0) || !allEqual(ints(n, 'output_padding'), 0) || !allEqual(ints(n, 'dilations'), 1)) return 'it has padding, output padding or dilation';
  if (ints(n, 'output_shape')) return 'it sets output_shape';
  const autoPad = n.attribute.find((a) => a.name === 'auto_pad');
  if (autoPad && !['', 'NOTSET', 'VALID'].includes(new TextDecoder().decode(autoPad.s))) return 'it pads automatically (auto_pad SAME_*)';
  return kh;
}

/** W[in, out, i, j] → W'[(i·s + j)·out + o, in, 1, 1], and the bias repeated once per block position. */
function asPointwiseConv(weight: { dims: number[]; values: Float32Array }, bias: Float32Array | undefined, s: number) {
  const [inputs, outputs] = weight.dims as [number, number];
  const values = new Float32Array(weight.values.length);
  for (let c = 0; c < inputs; c++) {
    for (let o = 0; o < outputs; o++) {
      for (let k = 0; k < s * s; k++) values[(k * outputs + o) * inputs + c] = weight.values[(c * outputs + o) * s * s + k]!;
    }
  }
  const biases = bias ? Float32Array.from({ length: s * s * outputs }, (_, i) => bias[i % outputs]!) : undefined;
  return { dims: [s * s * outputs, inputs, 1, 1], values, biases };
}

/**
 * The reader `d2s` may sink past: its output's only reader, not a graph
 * output, per-pixel, with every other input constant. A Conv qualifies when
 * it is 1×1, ungrouped, unpadded and unstrided (auto_pad and dilations then
 * change nothing).
 */
function sinkableReader(graph: GraphProto, d2s: NodeProto, initializers: ReadonlyMap<string, TensorProto>): NodeProto | undefined {
  const value = d2s.output[0]!;
  const readers = consumersIn(graph).get(value) ?? [];
  const next = readers.length === 1 && !graph.output.some((o) => o.name === value) ? readers[0]! : undefined;
  if (!next || next.domain !== '' || next.input[0] !== value || next.output.length !== 1) return undefined;
  if (!next.input.slice(1).every((name) => name === '' || initializers.has(name))) return undefined;
  if (elementwiseOps.has(next.opType)) return next;
  if (next.opType !== 'Conv') return undefined;
  const weight = weightOf(initializers, next.input[1]);
  const pointwise = weight?.dims.length === 4 && weight.dims[2] === 1 && weight.dims[3] === 1;
  const plain = int(next, 'group', 1) === 1 && allEqual(ints(next, 'pads'), 0) && allEqual(ints(next, 'strides'), 1);
  return pointwise && plain && (!next.input[2] || weightOf(initializers, next.input[2])) ? next : undefined;
}

interface Rewrite {
  graph: GraphProto;
  initializers: Map<string, TensorProto>;
  fresh: (base: string) => string;
}

function addInitializer(r: Rewrite, base: string, dims: number[], values: Float32Array): string {
  const t = tensor(r.fresh(base), dims, values);
  r.graph.initializer.push(t);
  r.initializers.set(t.name, t);
  return t.name;
}

/** Rewrites, in place, each ConvTranspose it can; the model computes the same. */
export function rewriteConvTransposes(model: ModelProto): ConvTransposeRewrite {
  const graph = model.graph!;
  const r: Rewrite = { graph, initializers: new Map(graph.initializer.map((t) => [t.name, t])), fresh: freshNamer(model) };
  const result: ConvTransposeRewrite = { rewritten: [], refused: [] };
  const created: { d2s: NodeProto; s: number }[] = [];
  graph.node = graph.node.flatMap((n) => {
    if (n.opType !== 'ConvTranspose' || n.domain !== '') return [n];
    const s = blockSize(n, r.initializers);
    if (typeof s === 'string') {
      result.refused.push({ node: nodeLabel(n), reason: s });
      return [n];
    }
    const pointwise = asPointwiseConv(weightOf(r.initializers, n.input[1])!, weightOf(r.initializers, n.input[2])?.values, s);
    const inputs = [n.input[0]!, addInitializer(r, `${n.input[1]}_pointwise`, pointwise.dims, pointwise.values)];
    if (pointwise.biases) inputs.push(addInitializer(r, `${n.input[2]}_pointwise`, [pointwise.biases.length], pointwise.biases));
    const blocks = r.fresh(`${n.output[0]}_blocks`);
    const conv = node('Conv', inputs, [blocks], { kernel_shape: { ints: [1, 1] } });
    if (n.name) conv.name = n.name;
    const d2s = node('DepthToSpace', [blocks], [n.output[0]!], { blocksize: { int: s } });
    result.rewritten.push(nodeLabel(n));
    created.push({ d2s, s });
    return [conv, d2s];
  });
  // Last first: one sunk past a later one's readers first would stop at that later DepthToSpace.
  for (const { d2s, s } of created.reverse()) sink(r, d2s, s);
  return result;
}

/** Moves `d2s` after each per-pixel reader in turn; a 1×1 Conv becomes grouped (s² groups, weights repeated). */
function sink(r: Rewrite, d2s: NodeProto, s: number): void {
  for (let next = sinkableReader(r.graph, d2s, r.initializers); next; next = sinkableReader(r.graph, d2s, r.initializers)) {
    if (next.opType === 'Conv') {
      const weight = weightOf(r.initializers, next.input[1])!;
      const bias = weightOf(r.initializers, next.input[2]);
      const repeat = (values: Float32Array) => Float32Array.from({ length: values.length * s * s }, (_, i) => values[i % values.length]!);
      const inputs = [next.input[0]!, addInitializer(r, `${next.input[1]}_grouped`, [weight.dims[0]! * s * s, ...weight.dims.slice(1)], repeat(weight.values))];
      if (bias) inputs.push(addInitializer(r, `${next.input[2]}_grouped`, [bias.values.length * s * s], repeat(bias.values)));
      const grouped = node('Conv', inputs, next.output, { kernel_shape: { ints: [1, 1] }, group: { int: s * s } });
      grouped.name = next.name;
      r.graph.node[r.graph.node.indexOf(next)] = grouped;
      next = grouped;
    }
    // d2s → next becomes next → d2s: next reads what d2s read and d2s writes what next wrote, under the same name.
    const output = next.output[0]!;
    const blocks = r.fresh(`${output}_blocks`);
    next.input[0] = d2s.input[0]!;
    next.output = [blocks];
    d2s.input = [blocks];
    d2s.output = [output];
    const nodes = r.graph.node.filter((n) => n !== next);
    nodes.splice(nodes.indexOf(d2s), 0, next);
    r.graph.node = nodes;
  }
}
