/**
 * A tfjs layers model (Keras) as an ONNX model that computes the same: the
 * graph takes what tfjs takes, an NHWC float image `input` [batch, H, W, C],
 * turns it NCHW once, and gives the model's output (`probabilities` when it
 * ends in softmax, else `output`), the input of its final Dense layer
 * (`features`), and any layer asked for by name, pooled to a vector.
 */
import path from 'node:path';
import type { ModelProto } from 'onnx-buf';
import { buildModel, valueInfo } from '../onnx-graph.js';
import { ModelToolError } from './onnx-model.js';
import { activationLayer, reluLayer } from './tfjs-activations.js';
import { coreLayers } from './tfjs-core-layers.js';
import { isImage, layerError, TfjsGraphBuilder, type Converter, type Value } from './tfjs-graph-builder.js';
import type { TfjsModelFiles } from './tfjs-model-files.js';
import { spatialLayers } from './tfjs-spatial-layers.js';
import { readTopology, type LayerCall, type TfjsTopology } from './tfjs-topology.js';

const converters: Record<string, Converter> = { ...spatialLayers, ...coreLayers, ReLU: reluLayer, Activation: activationLayer };

export const supportedLayers = ['InputLayer', ...Object.keys(converters)];

export const INPUT_NAME = 'input';
export const FEATURES_NAME = 'features';

export interface ImportOptions {
  /** Layers whose outputs become extra graph outputs (images global-average pooled to [batch, C]): `LAYER`, named as the layer, or `NAME=LAYER`. */
  outputs?: string[];
  /** Where the model came from, for the ONNX doc string (e.g. `npm:nsfwjs/dist/models/mobilenet_v2`); not an absolute path, so that the file's sha256 does not depend on where it was built. */
  source?: string;
}

export interface ImportReport {
  /** Layers translated (the input layer not counted). */
  layers: number;
  parameters: number;
  input: { name: string; shape: (number | string)[] };
  outputs: { name: string; shape: (number | string)[]; layer: string }[];
}

/** The Dense layer whose input is the model's features: the last one, past trailing Activation / Dropout layers. */
function headDense(topology: TfjsTopology): LayerCall | undefined {
  const byName = new Map(topology.layers.map((call) => [call.name, call]));
  let call = byName.get(topology.output);
  while (call && (call.className === 'Activation' || call.className === 'Dropout')) call = byName.get(call.inputs[0]!);
  return call?.className === 'Dense' ? call : undefined;
}

function endsInSoftmax(topology: TfjsTopology): boolean {
  const last = topology.layers.find((call) => call.name === topology.output);
  return last?.config.activation === 'softmax';
}

/** Layers of the output's path whose weights no converter read: an option the importer would silently drop. */
function assertAllWeightsRead(files: TfjsModelFiles, topology: TfjsTopology, g: TfjsGraphBuilder): void {
  const byName = new Map(topology.layers.map((call) => [call.name, call]));
  for (const name of files.weights.keys()) {
    const call = byName.get(name.slice(0, name.lastIndexOf('/')));
    if (call && !g.used.has(name)) throw layerError(call, `weight '${name}' is not read by the importer — the layer has an option it does not translate`);
  }
}

export function importTfjs(files: TfjsModelFiles, options: ImportOptions = {}): { model: ModelProto; report: ImportReport } {
  const topology = readTopology(files.modelConfig);
  const g = new TfjsGraphBuilder(files.weights);
  const [height, width, channels] = topology.input.shape;
  const values = new Map<string, Value>();
  values.set(topology.input.name, { name: g.op('Transpose', [INPUT_NAME], 'input/nchw', { perm: { ints: [0, 3, 1, 2] } }), shape: [channels, height, width] });
  for (const call of topology.layers) {
    const convert = converters[call.className];
    if (!convert) throw layerError(call, `layer class ${call.className} is not supported — the importer translates ${supportedLayers.join(', ')}`);
    values.set(call.name, convert(call, call.inputs.map((name) => values.get(name)!), g));
  }
  assertAllWeightsRead(files, topology, g);

  const outputs: ImportReport['outputs'] = [];
  const expose = (name: string, layer: string, value: Value) => {
    if (outputs.some((o) => o.name === name) || name === INPUT_NAME) throw new ModelToolError(`output '${name}' is named twice — ask for each layer once, and not for '${INPUT_NAME}'`);
    let source = value.name;
    if (isImage(value)) source = g.op('Flatten', [g.op('GlobalAveragePool', [value.name], `${name}/pool`)], `${name}/pooled`, { axis: { int: 1 } });
    g.op('Identity', [source], name);
    outputs.push({ name, shape: ['batch', value.shape[0]!], layer });
  };
  const final = values.get(topology.output)!;
  if (isImage(final)) throw new ModelToolError(`the model's output '${topology.output}' is an image [${final.shape.join(', ')}] — the importer writes classifiers and encoders that end in a vector`);
  expose(endsInSoftmax(topology) ? 'probabilities' : 'output', topology.output, final);
  const head = headDense(topology);
  if (head) expose(FEATURES_NAME, head.inputs[0]!, values.get(head.inputs[0]!)!);
  for (const spec of options.outputs ?? []) {
    const [name, layer] = spec.includes('=') ? (spec.split('=', 2) as [string, string]) : [spec, spec];
    const value = values.get(layer);
    if (!value) throw new ModelToolError(`--output '${spec}': no layer '${layer}' on the path to the model's output — the layers are ${[...values.keys()].slice(0, 12).join(', ')}, …`);
    expose(name, layer, value);
  }

  const parameters = [...g.used].reduce((n, name) => n + files.weights.get(name)!.values.length, 0);
  const input = { name: INPUT_NAME, shape: ['batch', height, width, channels] };
  const model = buildModel({
    name: String(files.modelConfig.config.name ?? 'tfjs_model'),
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [valueInfo(INPUT_NAME, 'float32', input.shape)],
    outputs: outputs.map((o) => valueInfo(o.name, 'float32', o.shape)),
    docString: `imported from the tfjs layers model ${options.source ?? path.basename(files.files[0]!)}`,
  });
  return { model, report: { layers: topology.layers.length, parameters, input, outputs } };
}
