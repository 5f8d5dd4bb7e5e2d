/**
 * A small builder for ONNX models (ModelProto over onnx-buf / @bufbuild/protobuf),
 * for the scripts under models/ that make or rewrite graphs: training exports,
 * quantization, pruning. It writes the ONNX IR directly, so no Python is needed.
 */
import { endianness } from 'node:os';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';

export const DEFAULT_OPSET = 17;

/** 'bool' only for graph inputs and outputs: constants are built from typed arrays, which have no bool. */
export type ElementType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool';
export type TensorValues = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;
/** A fixed size, or a name for a symbolic dimension (e.g. 'batch'). */
export type Dim = number | string;

const dataTypes: Record<ElementType, TensorProto_DataType> = {
  float32: TensorProto_DataType.FLOAT,
  uint8: TensorProto_DataType.UINT8,
  int8: TensorProto_DataType.INT8,
  int32: TensorProto_DataType.INT32,
  int64: TensorProto_DataType.INT64,
  bool: TensorProto_DataType.BOOL,
};

function elementTypeOf(data: TensorValues): ElementType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int32Array) return 'int32';
  return 'int64';
}

/** A constant tensor (an initializer, or a tensor attribute); the values travel as little-endian raw_data. */
export function tensor(name: string, dims: readonly number[], data: TensorValues): TensorProto {
  const count = dims.reduce((n, d) => n * d, 1);
  if (count !== data.length) throw new Error(`tensor ${name}: dims [${dims.join(', ')}] hold ${count} values, data has ${data.length}`);
  // raw_data is little-endian by the ONNX spec; typed arrays use the host's byte order.
  if (endianness() !== 'LE') throw new Error('onnx-graph writes raw_data from typed arrays and needs a little-endian host');
  return create(TensorProtoSchema, {
    name,
    dims: dims.map(BigInt),
    dataType: dataTypes[elementTypeOf(data)],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
  });
}

/**
 * A graph input or output: element type and shape, with named symbolic
 * dimensions. Without a shape the rank is left unknown (an intermediate
 * tensor exposed as an output, whose shape the runtime infers).
 */
export function valueInfo(name: string, type: ElementType, shape?: readonly Dim[]): ValueInfoProto {
  const dim = (shape ?? []).map((d) =>
    create(TensorShapeProto_DimensionSchema, {
      value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
    }),
  );
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, { elemType: dataTypes[type], shape: shape ? create(TensorShapeProtoSchema, { dim }) : undefined }),
      },
    }),
  });
}

/** Attribute values say their ONNX type, because a number alone cannot tell INT from FLOAT. */
export type AttributeValue =
  | { int: number }
  | { float: number }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { string: string }
  | { tensor: TensorProto }
  /** A subgraph: an If branch, a Loop or Scan body. */
  | { graph: GraphProto };

function attribute(name: string, value: AttributeValue): AttributeProto {
  const T = AttributeProto_AttributeType;
  if ('int' in value) return create(AttributeProtoSchema, { name, type: T.INT, i: BigInt(value.int) });
  if ('float' in value) return create(AttributeProtoSchema, { name, type: T.FLOAT, f: value.float });
  if ('ints' in value) return create(AttributeProtoSchema, { name, type: T.INTS, ints: value.ints.map(BigInt) });
  if ('floats' in value) return create(AttributeProtoSchema, { name, type: T.FLOATS, floats: [...value.floats] });
  if ('string' in value) return create(AttributeProtoSchema, { name, type: T.STRING, s: new TextEncoder().encode(value.string) });
  if ('graph' in value) return create(AttributeProtoSchema, { name, type: T.GRAPH, g: value.graph });
  return create(AttributeProtoSchema, { name, type: T.TENSOR, t: value.tensor });
}

/** The domain of onnxruntime's contrib operators (e.g. per-axis QuantizeLinear before opset 13). */
export const MS_DOMAIN = 'com.microsoft';

/** One operator, of the default (ai.onnx) domain unless `domain` says otherwise; the node is named after its first output. */
export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: Record<string, AttributeValue> = {},
  domain = '',
): NodeProto {
  return create(NodeProtoSchema, {
    name: `${opType}_${outputs[0]}`,
    opType,
    // onnx.proto is proto2: an explicit '' would be written out; leaving it unset keeps files byte-identical to before.
    ...(domain ? { domain } : {}),
    input: [...inputs],
    output: [...outputs],
    attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
  });
}

export interface SubgraphSpec {
  /** Graph name (shown by viewers such as Netron). */
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
}

/** A graph on its own, for the { graph } attribute of If, Loop and Scan nodes. */
export function subgraph(spec: SubgraphSpec): GraphProto {
  return create(GraphProtoSchema, { name: spec.name, node: spec.nodes, initializer: spec.initializers, input: spec.inputs, output: spec.outputs });
}

export interface GraphSpec extends SubgraphSpec {
  opset?: number;
  /** Opsets of further domains the nodes use, e.g. { [MS_DOMAIN]: 1 }. */
  domainOpsets?: Record<string, number>;
  docString?: string;
  /** Free-form model metadata (ModelProto.metadata_props). */
  metadata?: Record<string, string>;
}

/** The IR version released together with an opset, so that older runtimes accept the file. */
function irVersionFor(opset: number): bigint {
  if (opset <= 18) return 8n;
  if (opset <= 20) return 9n;
  return 10n;
}

export function buildModel(spec: GraphSpec): ModelProto {
  const opset = spec.opset ?? DEFAULT_OPSET;
  return create(ModelProtoSchema, {
    irVersion: irVersionFor(opset),
    opsetImport: [
      create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) }),
      ...Object.entries(spec.domainOpsets ?? {}).map(([domain, version]) => create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) })),
    ],
    producerName: 'splitinfer',
    docString: spec.docString ?? '',
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
    graph: subgraph(spec),
  });
}

/** The .onnx file bytes of a model. */
export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}
