/**
 * What both quantization modes share: per-channel symmetric INT8 weights
 * (zero point 0, values in [-127, 127] so that negating a weight never
 * overflows, as onnxruntime's own quantizer does for int8 weights) and the
 * report of what was quantized and what was left in FP32, and why.
 */
import type { GraphProto, NodeProto } from 'onnx-buf';
import { allNodes } from './onnx-model.js';

export interface QuantizeReport {
  /** Names of the nodes that now run on INT8 weights. */
  quantized: string[];
  /** Nodes left in FP32, each with the reason (unsupported form, excluded, slower quantized). */
  keptFloat: { node: string; reason: string }[];
}

export const INT8_WEIGHT_MAX = 127;

/** Ops that mean a model was quantized already: quantizing twice compounds the rounding error. */
const quantizedOps = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'MatMulInteger', 'ConvInteger', 'QLinearMatMul', 'QLinearConv', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat', 'DynamicQuantizeLSTM']);

/** The first node (subgraphs included) that shows the model is quantized already, if any. */
export function findQuantizedNode(graph: GraphProto): NodeProto | undefined {
  return allNodes(graph).find((n) => quantizedOps.has(n.opType));
}

/**
 * Quantizes `values` (row-major, shape `dims`) with one scale per index of
 * `axis`: scale = max |w| / 127 over the channel, q = round(w / scale).
 * An all-zero channel gets scale 1 (its q are 0 either way), so that
 * dequantizing never divides by zero.
 */
export function quantizeWeightsPerChannel(values: Float32Array, dims: number[], axis: number): { q: Int8Array; scales: Float32Array } {
  const count = dims.reduce((n, d) => n * d, 1);
  if (count !== values.length) throw new Error(`quantizeWeightsPerChannel: dims [${dims.join(', ')}] hold ${count} values, got ${values.length}`);
  if (!Number.isInteger(axis) || axis < 0 || axis >= dims.length) throw new Error(`quantizeWeightsPerChannel: axis ${axis} is outside dims [${dims.join(', ')}]`);
  const channels = dims[axis]!;
  // Index i of the flat array lies in channel floor(i / inner) % channels.
  const inner = dims.slice(axis + 1).reduce((n, d) => n * d, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;

  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i);
    maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(values[i]!));
  }
  const scales = Float32Array.from(maxAbs, (m) => (m > 0 ? m / INT8_WEIGHT_MAX : 1));
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const scaled = values[i]! / scales[channelOf(i)]!;
    // Round half away from zero, then clamp: float rounding may land a hair past 127.
    q[i] = Math.max(-INT8_WEIGHT_MAX, Math.min(INT8_WEIGHT_MAX, Math.sign(scaled) * Math.round(Math.abs(scaled))));
  }
  return { q, scales };
}
