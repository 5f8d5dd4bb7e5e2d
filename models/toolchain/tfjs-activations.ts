/**
 * Keras activations, as an `activation` option of Conv2D / Dense or as the
 * Activation and ReLU layers. Softmax runs over the channels: the last axis
 * in Keras, axis 1 in the graph for images (NCHW) and vectors alike.
 */
import { unsupported, type TfjsGraphBuilder, type Value } from './tfjs-graph-builder.js';
import type { LayerCall } from './tfjs-topology.js';

type Activation = (input: string, output: string, g: TfjsGraphBuilder) => string;

const clip = (min: number, max: number): Activation => (input, output, g) =>
  g.op('Clip', [input, g.constant(`${output}/min`, [], new Float32Array([min])), g.constant(`${output}/max`, [], new Float32Array([max]))], output);

const activations: Record<string, Activation> = {
  relu: (input, output, g) => g.op('Relu', [input], output),
  relu6: clip(0, 6),
  elu: (input, output, g) => g.op('Elu', [input], output, { alpha: { float: 1 } }),
  sigmoid: (input, output, g) => g.op('Sigmoid', [input], output),
  tanh: (input, output, g) => g.op('Tanh', [input], output),
  softplus: (input, output, g) => g.op('Softplus', [input], output),
  swish: (input, output, g) => g.op('Mul', [input, g.op('Sigmoid', [input], `${output}/sigmoid`)], output),
  softmax: (input, output, g) => g.op('Softmax', [input], output, { axis: { int: 1 } }),
};

export const supportedActivations = ['linear', ...Object.keys(activations)];

/** `value` through the Keras activation `name` of layer `call` ('linear' passes it through). */
export function activate(call: LayerCall, value: Value, name: string, g: TfjsGraphBuilder): Value {
  if (name === 'linear') return value;
  const activation = activations[name];
  if (!activation) throw unsupported(call, 'activation', `the importer translates ${supportedActivations.join(', ')}`);
  return { name: activation(value.name, `${call.name}/${name}`, g), shape: value.shape };
}

/** The ReLU layer: Relu, or Clip with max_value (ReLU6). */
export function reluLayer(call: LayerCall, inputs: Value[], g: TfjsGraphBuilder): Value {
  const [input] = inputs as [Value];
  const { max_value: maxValue = null, negative_slope: slope = 0, threshold = 0 } = call.config;
  if (threshold !== 0) throw unsupported(call, 'threshold', 'the importer translates ReLU with threshold 0');
  if (slope !== 0) throw unsupported(call, 'negative_slope', 'the importer translates ReLU with negative_slope 0');
  const output = `${call.name}/relu`;
  return { name: maxValue === null ? g.op('Relu', [input.name], output) : clip(0, maxValue)(input.name, output, g), shape: input.shape };
}

export function activationLayer(call: LayerCall, inputs: Value[], g: TfjsGraphBuilder): Value {
  return activate(call, inputs[0]!, call.config.activation, g);
}
