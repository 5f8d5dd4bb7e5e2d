/**
 * The tfjs (Keras) layers that are not tied to images: batch normalization,
 * Dense, Flatten, merging branches, and what inference skips (Dropout).
 */
import { activate } from './tfjs-activations.js';
import { isImage, layerError, unsupported, type Converter, type TfjsGraphBuilder, type Value } from './tfjs-graph-builder.js';
import type { LayerCall } from './tfjs-topology.js';

function oneInput(call: LayerCall, inputs: Value[]): Value {
  if (inputs.length !== 1) throw layerError(call, `expects one input, got ${inputs.length}`);
  return inputs[0]!;
}

/** A Keras axis of an NHWC image or an [N, F] vector, as the axis of the graph's NCHW / [N, F] value. */
function graphAxis(call: LayerCall, option: string, value: Value): number {
  const raw = call.config[option];
  const axis = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
  const rank = value.shape.length + 1;
  const positive = typeof axis === 'number' ? (axis < 0 ? axis + rank : axis) : -1;
  if (positive < 1 || positive >= rank) throw unsupported(call, option, `expected an axis other than the batch of a rank-${rank} input`);
  if (!isImage(value)) return positive;
  return [0, 2, 3, 1][positive]!;
}

/** Inference-mode batch normalization over the channel axis; without `scale` / `center` Keras has no gamma / beta. */
function batchNormalization(call: LayerCall, inputs: Value[], g: TfjsGraphBuilder): Value {
  const input = oneInput(call, inputs);
  if (graphAxis(call, 'axis', input) !== 1) throw unsupported(call, 'axis', 'the importer normalizes over the channels (the last axis)');
  const channels = input.shape[0]!;
  const { scale = true, center = true, epsilon = 0.001 } = call.config;
  const named = (suffix: string, present: boolean, fill: number) =>
    g.constant(`${call.name}/${suffix}`, [channels], present ? g.weight(call, suffix).values : new Float32Array(channels).fill(fill));
  const operands = [input.name, named('gamma', scale, 1), named('beta', center, 0), named('moving_mean', true, 0), named('moving_variance', true, 1)];
  return { name: g.op('BatchNormalization', operands, `${call.name}/batch_norm`, { epsilon: { float: epsilon } }), shape: input.shape };
}

/** Dense on a vector: Gemm with the Keras kernel [in, units] as B. */
function dense(call: LayerCall, inputs: Value[], g: TfjsGraphBuilder): Value {
  const input = oneInput(call, inputs);
  if (isImage(input)) throw layerError(call, `reads an image [${input.shape.join(', ')}] — the importer translates Dense on vectors; put a Flatten or a global pooling layer before it`);
  const kernel = g.weight(call, 'kernel');
  const [inFeatures, units] = kernel.shape as [number, number];
  if (inFeatures !== input.shape[0]) throw layerError(call, `kernel reads ${inFeatures} features, the input has ${input.shape[0]}`);
  const operands = [input.name, g.constant(`${call.name}/kernel`, kernel.shape, kernel.values)];
  if (call.config.use_bias ?? true) operands.push(g.constant(`${call.name}/bias`, [units], g.weight(call, 'bias').values));
  const output = { name: g.op('Gemm', operands, `${call.name}/gemm`), shape: [units] };
  return activate(call, output, call.config.activation ?? 'linear', g);
}

/** Keras flattens NHWC: the image goes back to NHWC first, so that the Dense after it reads its features in the order it was trained on. */
function flatten(call: LayerCall, inputs: Value[], g: TfjsGraphBuilder): Value {
  const input = oneInput(call, inputs);
  if ((call.config.data_format ?? 'channels_last') !== 'channels_last') throw unsupported(call, 'data_format', "the importer reads 'channels_last' (NHWC) models");
  if (!isImage(input)) return input;
  const nhwc = g.op('Transpose', [input.name], `${call.name}/nhwc`, { perm: { ints: [0, 2, 3, 1] } });
  return { name: g.op('Flatten', [nhwc], `${call.name}/flatten`, { axis: { int: 1 } }), shape: [input.shape.reduce((n, d) => n * d, 1)] };
}

function concatenate(call: LayerCall, inputs: Value[], g: TfjsGraphBuilder): Value {
  const axis = graphAxis(call, 'axis', inputs[0]!);
  const shape = [...inputs[0]!.shape];
  const others = shape.filter((_, i) => i !== axis - 1).join(',');
  if (inputs.some((v) => v.shape.length !== shape.length || v.shape.filter((_, i) => i !== axis - 1).join(',') !== others)) {
    throw layerError(call, `inputs ${inputs.map((v) => `[${v.shape.join(', ')}]`).join(', ')} differ beyond the concatenation axis`);
  }
  shape[axis - 1] = inputs.reduce((n, v) => n + v.shape[axis - 1]!, 0);
  return { name: g.op('Concat', inputs.map((v) => v.name), `${call.name}/concat`, { axis: { int: axis } }), shape };
}

function add(call: LayerCall, inputs: Value[], g: TfjsGraphBuilder): Value {
  const shape = inputs[0]!.shape.join(',');
  if (inputs.length < 2 || inputs.some((v) => v.shape.join(',') !== shape)) {
    throw layerError(call, `adds inputs ${inputs.map((v) => `[${v.shape.join(', ')}]`).join(', ')} — the importer adds two or more inputs of one shape`);
  }
  return { name: g.op('Sum', inputs.map((v) => v.name), `${call.name}/sum`), shape: inputs[0]!.shape };
}

export const coreLayers: Record<string, Converter> = {
  BatchNormalization: batchNormalization,
  Dense: dense,
  Flatten: flatten,
  Concatenate: concatenate,
  Add: add,
  Dropout: oneInput,
};
