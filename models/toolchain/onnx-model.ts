/**
 * Reading ONNX files for the model toolchain (inspect, quantize, prune):
 * parse with a clear error for anything that is not an ONNX model, decode
 * tensor values whatever field they travel in, and find a graph's weights
 * whether they are initializers or Constant nodes (Paddle's exports, like
 * PP-OCR, keep every weight in a Constant node). Writing goes through
 * onnx-graph.ts's `encodeModel`.
 */
import { readFileSync } from 'node:fs';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataLocation, TensorProto_DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from 'onnx-buf';

/** A model file that cannot be read or changed as asked; the message says what and why. */
export class ModelToolError extends Error {
  override name = 'ModelToolError';
}

export type DecodedValues = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array | Float64Array;

const elementSize: Partial<Record<TensorProto_DataType, number>> = {
  [TensorProto_DataType.FLOAT]: 4,
  [TensorProto_DataType.UINT8]: 1,
  [TensorProto_DataType.INT8]: 1,
  [TensorProto_DataType.INT32]: 4,
  [TensorProto_DataType.INT64]: 8,
  [TensorProto_DataType.DOUBLE]: 8,
  [TensorProto_DataType.FLOAT16]: 2,
  [TensorProto_DataType.BOOL]: 1,
  [TensorProto_DataType.UINT16]: 2,
  [TensorProto_DataType.INT16]: 2,
  [TensorProto_DataType.UINT32]: 4,
  [TensorProto_DataType.UINT64]: 8,
  [TensorProto_DataType.BFLOAT16]: 2,
};

export const dataTypeName = (type: TensorProto_DataType) => TensorProto_DataType[type]?.toLowerCase() ?? `type ${type}`;

/** Parses an ONNX file; anything else is refused with what it looks like instead. */
export function parseModel(bytes: Uint8Array, label: string): ModelProto {
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (err) {
    const head = Buffer.from(bytes.subarray(0, 8)).toString('hex').replace(/(..)/g, '$1 ').trim();
    throw new ModelToolError(`${label}: not an ONNX model (protobuf parse failed: ${(err as Error).message}; first bytes ${head}) — pass a .onnx file`);
  }
  if (!model.graph || model.graph.node.length === 0 || model.opsetImport.length === 0) {
    throw new ModelToolError(`${label}: not an ONNX model (no graph, nodes or opset) — pass a .onnx file`);
  }
  return model;
}

export function readModel(file: string): ModelProto {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new ModelToolError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseModel(bytes, file);
}

/** The opset of the default (ai.onnx) domain. */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return entry ? Number(entry.version) : 0;
}

export function elementCount(tensor: TensorProto): number {
  return tensor.dims.reduce((n, d) => n * Number(d), 1);
}

/** Bytes the tensor's values take (raw or not), for size accounting. */
export function tensorBytes(tensor: TensorProto): number {
  return elementCount(tensor) * (elementSize[tensor.dataType as TensorProto_DataType] ?? 0);
}

function copyRaw<T extends DecodedValues>(raw: Uint8Array, Type: { new (buffer: ArrayBuffer): T; BYTES_PER_ELEMENT: number }): T {
  // A copy: raw_data is not aligned for the element type inside the protobuf buffer. Not raw.slice():
  // read from a file, raw is a Buffer, whose slice() is a view of the whole file.
  return new Type(new Uint8Array(raw).buffer as ArrayBuffer);
}

/** The values of a tensor of a numeric type, from raw_data or the typed repeated fields. */
export function tensorValues(tensor: TensorProto): DecodedValues {
  if (tensor.dataLocation === TensorProto_DataLocation.EXTERNAL) {
    throw new ModelToolError(`tensor '${tensor.name}' keeps its data in an external file — save the model with its weights inside (onnx.save(..., save_as_external_data=False))`);
  }
  const raw = tensor.rawData.length > 0 ? tensor.rawData : undefined;
  const count = elementCount(tensor);
  switch (tensor.dataType) {
    case TensorProto_DataType.FLOAT:
      return raw ? copyRaw(raw, Float32Array) : Float32Array.from(tensor.floatData);
    case TensorProto_DataType.DOUBLE:
      return raw ? copyRaw(raw, Float64Array) : Float64Array.from(tensor.doubleData);
    case TensorProto_DataType.INT8:
      return raw ? copyRaw(raw, Int8Array) : Int8Array.from(tensor.int32Data);
    case TensorProto_DataType.UINT8:
    case TensorProto_DataType.BOOL:
      return raw ? new Uint8Array(raw) : Uint8Array.from(tensor.int32Data);
    case TensorProto_DataType.INT32:
      return raw ? copyRaw(raw, Int32Array) : Int32Array.from(tensor.int32Data);
    case TensorProto_DataType.INT64:
      return raw ? copyRaw(raw, BigInt64Array) : BigInt64Array.from(tensor.int64Data);
    default:
      throw new ModelToolError(`tensor '${tensor.name}' is ${dataTypeName(tensor.dataType)} (${count} values): the toolchain reads float, double and integer tensors only`);
  }
}

/** A weight as float32 values with its dims, or undefined when it is not a float tensor. */
export function floatWeight(tensor: TensorProto): { dims: number[]; values: Float32Array } | undefined {
  if (tensor.dataType !== TensorProto_DataType.FLOAT) return undefined;
  return { dims: tensor.dims.map(Number), values: tensorValues(tensor) as Float32Array };
}

/** Every node of a graph and of the graphs inside its nodes' attributes (If, Loop, Scan bodies). */
export function allNodes(graph: GraphProto): NodeProto[] {
  const nodes: NodeProto[] = [];
  const walk = (g: GraphProto) => {
    for (const node of g.node) {
      nodes.push(node);
      for (const attribute of node.attribute) {
        if (attribute.g) walk(attribute.g);
        for (const sub of attribute.graphs) walk(sub);
      }
    }
  };
  walk(graph);
  return nodes;
}

/** How reports and --exclude name a node: its name, or its op and first output when unnamed. */
export function nodeLabel(node: NodeProto): string {
  return node.name || `${node.opType}(${node.output[0] ?? ''})`;
}

/** The tensor a Constant node holds, when it holds one in its `value` attribute. */
export function constantTensor(node: NodeProto): TensorProto | undefined {
  if (node.opType !== 'Constant' || node.domain !== '') return undefined;
  const value = node.attribute.find((a) => a.name === 'value');
  return value?.t;
}

/**
 * The graph's constant tensors by name: initializers and Constant nodes of
 * the top-level graph (what a rewrite may replace).
 */
export function constantsOf(graph: GraphProto): Map<string, TensorProto> {
  const constants = new Map<string, TensorProto>();
  for (const init of graph.initializer) constants.set(init.name, init);
  for (const node of graph.node) {
    const t = constantTensor(node);
    if (t && node.output[0]) constants.set(node.output[0], t);
  }
  return constants;
}

/**
 * Moves the top-level graph's Constant-node tensors into initializers (same
 * names), so that rewrites find every weight in one place. The model is
 * changed in place; what the graph computes does not change.
 */
export function constantsToInitializers(model: ModelProto): void {
  const graph = model.graph!;
  const kept: NodeProto[] = [];
  for (const node of graph.node) {
    const t = constantTensor(node);
    if (t && node.output[0]) {
      t.name = node.output[0];
      graph.initializer.push(t);
    } else {
      kept.push(node);
    }
  }
  graph.node = kept;
}
