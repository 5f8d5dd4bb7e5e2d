/**
 * What the tfjs layer converters write into: ONNX nodes and initializers,
 * the weights of the tfjs model (each taken once, so that a weight no
 * converter read shows up), and the static shape of each value. Inside the
 * graph images are NCHW, as ONNX's Conv and pooling operators want them;
 * shapes here leave out the batch: [channels, height, width] for an image,
 * [features] for a vector.
 */
import type { NodeProto, TensorProto } from 'onnx-buf';
import { node, tensor, type AttributeValue, type TensorValues } from '../onnx-graph.js';
import { ModelToolError } from './onnx-model.js';
import type { TfjsWeight } from './tfjs-model-files.js';
import type { LayerCall } from './tfjs-topology.js';

export interface Value {
  name: string;
  shape: number[];
}

/** Translates one layer call: its input values in, its output value out. */
export type Converter = (call: LayerCall, inputs: Value[], g: TfjsGraphBuilder) => Value;

export const isImage = (value: Value) => value.shape.length === 3;

export class TfjsGraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  /** Weights a converter has read, by manifest name. */
  readonly used = new Set<string>();

  constructor(private readonly weights: Map<string, TfjsWeight>) {}

  /** Adds one node writing `output`; returns `output`. */
  op(opType: string, inputs: readonly string[], output: string, attributes: Record<string, AttributeValue> = {}): string {
    this.nodes.push(node(opType, inputs, [output], attributes));
    return output;
  }

  constant(name: string, dims: readonly number[], values: TensorValues): string {
    this.initializers.push(tensor(name, dims, values));
    return name;
  }

  /** The layer's weight `<layer>/<suffix>` (e.g. `conv1/kernel`), refused when the manifest lacks it. */
  weight(call: LayerCall, suffix: string): TfjsWeight {
    const name = `${call.name}/${suffix}`;
    const weight = this.weights.get(name);
    if (!weight) throw layerError(call, `weight '${name}' is not in the weights manifest — the model files do not match its topology`);
    this.used.add(name);
    return weight;
  }
}

export function layerError(call: LayerCall, what: string): ModelToolError {
  return new ModelToolError(`layer '${call.name}' (${call.className}): ${what}`);
}

/** The error for a layer option the importer does not translate. */
export function unsupported(call: LayerCall, option: string, hint: string): ModelToolError {
  return layerError(call, `${option} ${JSON.stringify(call.config[option])} is not supported — ${hint}`);
}

/** `values` of a row-major tensor of `shape`, with its axes reordered by `perm` (as numpy's transpose). */
export function transposeValues(values: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const outShape = perm.map((p) => shape[p]!);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((n, d) => n * d, 1));
  const permStrides = perm.map((p) => strides[p]!);
  const out = new Float32Array(values.length);
  const index = new Array<number>(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let source = 0;
    for (let k = 0; k < index.length; k++) source += index[k]! * permStrides[k]!;
    out[o] = values[source]!;
    for (let k = index.length - 1; k >= 0; k--) {
      if (++index[k]! < outShape[k]!) break;
      index[k] = 0;
    }
  }
  return out;
}
