/**
 * The Keras model config of a tfjs layers model, as an ordered list of layer
 * calls: which layer reads which layers' outputs. Sequential and functional
 * (`Model` / `Functional`) configs in the Keras 2 serialization that tfjs
 * reads and writes. The importer takes one image input and one output, and
 * layers called once (no shared layers).
 */
import { Ajv } from 'ajv';
import type { TfjsModelFiles } from './tfjs-model-files.js';
import { ModelToolError } from './onnx-model.js';

/** A layer's config as Keras serializes it; its fields are checked where they are read. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LayerConfig = Record<string, any>;

export interface LayerCall {
  name: string;
  className: string;
  config: LayerConfig;
  /** The layers whose outputs it reads, in argument order. */
  inputs: string[];
}

export interface TfjsTopology {
  /** The input layer's name and its [height, width, channels]. */
  input: { name: string; shape: [number, number, number] };
  /** Every layer the output depends on, each after the layers it reads; the input layer is not one of them. */
  layers: LayerCall[];
  /** The layer whose output is the model's output. */
  output: string;
}

interface SerializedLayer {
  name?: string;
  class_name: string;
  config: LayerConfig;
  inbound_nodes?: unknown[];
}

function inputShape(layer: SerializedLayer): [number, number, number] {
  const shape = (layer.config.batch_input_shape ?? layer.config.batch_shape) as (number | null)[] | undefined;
  const spatial = shape?.slice(1);
  if (!spatial || spatial.length !== 3 || spatial.some((d) => typeof d !== 'number')) {
    throw new ModelToolError(`input '${layer.config.name}': shape [${shape?.map(String).join(', ') ?? ''}] is not [batch, height, width, channels] with fixed sizes — the importer computes TF "same" padding from the image size, so the input needs one`);
  }
  return spatial as [number, number, number];
}

/** Keras 2 inbound nodes: `[[[layerName, nodeIndex, tensorIndex, kwargs], ...]]`, one list per call of the layer. */
function inboundLayers(layer: SerializedLayer): string[] {
  const calls = layer.inbound_nodes ?? [];
  const name = layer.config.name as string;
  if (calls.length > 1) throw new ModelToolError(`layer '${name}' (${layer.class_name}): called ${calls.length} times (a shared layer) — the importer takes layers called once`);
  if (calls.length === 0) return [];
  const args = calls[0];
  if (!Array.isArray(args) || !args.every((a) => Array.isArray(a) && typeof a[0] === 'string')) {
    throw new ModelToolError(`layer '${name}' (${layer.class_name}): inbound nodes are not in the Keras 2 format [[name, node, tensor, kwargs], …] — re-save the model with tfjs or Keras 2`);
  }
  return args.map((a: unknown[]) => {
    if (a[1] !== 0 || a[2] !== 0) throw new ModelToolError(`layer '${name}' (${layer.class_name}): reads output ${a[2]} of call ${a[1]} of '${a[0]}' — the importer takes single-output layers called once`);
    return a[0] as string;
  });
}

function sequential(layers: SerializedLayer[]): TfjsTopology {
  const [first] = layers;
  if (!first) throw new ModelToolError('the Sequential model has no layers');
  const input = { name: first.class_name === 'InputLayer' ? (first.config.name as string) : 'input', shape: inputShape(first) };
  const body = first.class_name === 'InputLayer' ? layers.slice(1) : layers;
  const calls = body.map((layer, i) => ({
    name: layer.config.name as string,
    className: layer.class_name,
    config: layer.config,
    inputs: [i === 0 ? input.name : (body[i - 1]!.config.name as string)],
  }));
  return { input, layers: calls, output: calls.at(-1)?.name ?? input.name };
}

function functional(config: LayerConfig): TfjsTopology {
  const layers = config.layers as SerializedLayer[];
  const inputs = config.input_layers as [string, number, number][];
  const outputs = config.output_layers as [string, number, number][];
  if (inputs.length !== 1) throw new ModelToolError(`the model has ${inputs.length} inputs — the importer takes models with one image input`);
  if (outputs.length !== 1) throw new ModelToolError(`the model has ${outputs.length} outputs — the importer takes models with one output`);
  const byName = new Map(layers.map((layer) => [layer.config.name as string, layer]));
  const inputLayer = byName.get(inputs[0]![0]);
  if (!inputLayer) throw new ModelToolError(`the model's input layer '${inputs[0]![0]}' is not among its layers`);
  const input = { name: inputs[0]![0], shape: inputShape(inputLayer) };
  const ordered: LayerCall[] = [];
  const placed = new Set([input.name]);
  // Depth first from the output: each layer after what it reads, and layers the output does not need are left out.
  const place = (name: string, reader: string) => {
    if (placed.has(name)) return;
    const layer = byName.get(name);
    if (!layer) throw new ModelToolError(`layer '${reader}' reads '${name}', which is not a layer of the model`);
    const call = { name, className: layer.class_name, config: layer.config, inputs: inboundLayers(layer) };
    if (layer.class_name === 'InputLayer') throw new ModelToolError(`input layer '${name}' is not the model's input — the importer takes models with one image input`);
    call.inputs.forEach((producer) => place(producer, name));
    placed.add(name);
    ordered.push(call);
  };
  place(outputs[0]![0], 'the model output');
  return { input, layers: ordered, output: outputs[0]![0] };
}

/** The shape of the serialized topology the walk below relies on; each layer's own options are checked by its converter. */
const layerSchema = {
  type: 'object',
  required: ['class_name', 'config'],
  properties: { class_name: { type: 'string' }, config: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } }, inbound_nodes: { type: 'array' } },
};
// A reference is [layer name, node, tensor] or with kwargs a fourth entry: only the name's type is fixed here.
const layerRefs = { type: 'array', items: { type: 'array', minItems: 1, items: [{ type: 'string' }] } };
const topologySchema = {
  type: 'object',
  required: ['class_name', 'config'],
  properties: { class_name: { type: 'string' } },
  if: { properties: { class_name: { const: 'Sequential' } } },
  then: { properties: { config: { anyOf: [{ type: 'array', items: layerSchema }, { type: 'object', required: ['layers'], properties: { layers: { type: 'array', items: layerSchema } } }] } } },
  else: {
    if: { properties: { class_name: { enum: ['Model', 'Functional'] } } },
    then: {
      properties: {
        config: { type: 'object', required: ['layers', 'input_layers', 'output_layers'], properties: { layers: { type: 'array', items: layerSchema }, input_layers: layerRefs, output_layers: layerRefs } },
      },
    },
  },
};
const validateTopology = new Ajv({ allErrors: false, strictTuples: false }).compile(topologySchema);

export function readTopology(modelConfig: TfjsModelFiles['modelConfig']): TfjsTopology {
  if (!validateTopology(modelConfig)) {
    const [error] = validateTopology.errors!;
    throw new ModelToolError(`the model topology is not a Keras 2 model config: model_config${error!.instancePath.replaceAll('/', '.')} ${error!.message} — re-save the model with tfjs or Keras 2`);
  }
  const { class_name: kind, config } = modelConfig;
  if (kind === 'Sequential') return sequential((Array.isArray(config) ? config : config.layers) as SerializedLayer[]);
  if (kind === 'Model' || kind === 'Functional') return functional(config);
  throw new ModelToolError(`the model is a Keras '${kind}'; the importer reads Sequential and functional (Model) models`);
}
