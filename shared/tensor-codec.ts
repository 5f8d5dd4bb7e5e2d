/**
 * The project's one codec between KServe v2 tensors and the in-process Tensor.
 * Server side: decodeInferInputs / encodeInferOutputs; client side:
 * encodeInferInputs / decodeInferOutputs. We always send raw contents (the
 * project convention) and accept raw or typed contents, as the v2 spec allows.
 * Raw layout (grpc_predict_v2.proto): flattened row-major elements,
 * little-endian, no padding; a BYTES element is a 4-byte little-endian length
 * followed by its bytes. FP16 exists only as raw contents.
 */
import { create } from '@bufbuild/protobuf';
import { InferError } from './errors.js';
import { elementCount, type NumericData, type Tensor, type TensorType } from './tensor.js';
import {
  ModelInferRequest_InferInputTensorSchema,
  ModelInferResponse_InferOutputTensorSchema,
  type InferTensorContents,
  type ModelInferRequest,
  type ModelInferRequest_InferInputTensor,
  type ModelInferResponse,
  type ModelInferResponse_InferOutputTensor,
} from './gen/inference/grpc_service_pb.js';

export type V2Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

type ContentsField = Exclude<keyof InferTensorContents, '$typeName' | '$unknown'>;

interface Layout {
  datatype: V2Datatype;
  type: TensorType;
  /** Bytes per element on the wire and in `array`; absent for BYTES (length-prefixed). */
  elementBytes?: number;
  array?: new (length: number) => NumericData;
  /** The InferTensorContents field for this datatype; absent for FP16. */
  contentsField?: ContentsField;
}

const layouts: Layout[] = [
  { datatype: 'BOOL', type: 'bool', elementBytes: 1, array: Uint8Array, contentsField: 'boolContents' },
  { datatype: 'UINT8', type: 'uint8', elementBytes: 1, array: Uint8Array, contentsField: 'uintContents' },
  { datatype: 'UINT16', type: 'uint16', elementBytes: 2, array: Uint16Array, contentsField: 'uintContents' },
  { datatype: 'UINT32', type: 'uint32', elementBytes: 4, array: Uint32Array, contentsField: 'uintContents' },
  { datatype: 'UINT64', type: 'uint64', elementBytes: 8, array: BigUint64Array, contentsField: 'uint64Contents' },
  { datatype: 'INT8', type: 'int8', elementBytes: 1, array: Int8Array, contentsField: 'intContents' },
  { datatype: 'INT16', type: 'int16', elementBytes: 2, array: Int16Array, contentsField: 'intContents' },
  { datatype: 'INT32', type: 'int32', elementBytes: 4, array: Int32Array, contentsField: 'intContents' },
  { datatype: 'INT64', type: 'int64', elementBytes: 8, array: BigInt64Array, contentsField: 'int64Contents' },
  { datatype: 'FP16', type: 'float16', elementBytes: 2, array: Uint16Array },
  { datatype: 'FP32', type: 'float32', elementBytes: 4, array: Float32Array, contentsField: 'fp32Contents' },
  { datatype: 'FP64', type: 'float64', elementBytes: 8, array: Float64Array, contentsField: 'fp64Contents' },
  { datatype: 'BYTES', type: 'bytes', contentsField: 'bytesContents' },
];
const layoutByDatatype = new Map<string, Layout>(layouts.map((l) => [l.datatype, l]));
const layoutByType = new Map<string, Layout>(layouts.map((l) => [l.type, l]));
const datatypeList = layouts.map((l) => l.datatype).join(', ');

// Typed arrays use host byte order and the wire is little-endian: swap on big-endian hosts (s390x).
const hostIsLittleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Which side of a call a tensor list is on, for error messages. */
interface Side {
  what: 'input' | 'output';
  list: 'inputs' | 'outputs';
  raw: 'raw_input_contents' | 'raw_output_contents';
}
/**
 * Most elements one tensor may declare, checked against the shape before
 * anything is allocated: the product of a few dimensions can claim far more
 * than the message holds. BYTES elements are each one encoded medium or text
 * (an image, a frame), so they are bounded much lower: a flood of empty ones
 * costs an allocation each and stalls the event loop.
 */
export const MAX_TENSOR_ELEMENTS = 1 << 26;
export const MAX_BYTES_ELEMENTS = 1 << 16;

const REQUEST: Side = { what: 'input', list: 'inputs', raw: 'raw_input_contents' };
const RESPONSE: Side = { what: 'output', list: 'outputs', raw: 'raw_output_contents' };

interface WireTensor {
  name: string;
  datatype: string;
  shape: bigint[];
  contents?: InferTensorContents;
}

function invalid(message: string): InferError {
  return new InferError('INVALID_ARGUMENT', message);
}

function protoName(field: ContentsField): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function toV2Datatype(type: TensorType): V2Datatype {
  const layout = layoutByType.get(type);
  if (!layout) throw invalid(`tensor type '${type}' has no KServe v2 datatype`);
  return layout.datatype;
}

export function fromV2Datatype(datatype: string): TensorType {
  const layout = layoutByDatatype.get(datatype);
  if (!layout) throw invalid(`unknown datatype '${datatype}' — use one of ${datatypeList}`);
  return layout.type;
}

function reverseEachElement(bytes: Uint8Array, elementBytes: number): void {
  for (let i = 0; i < bytes.length; i += elementBytes) bytes.subarray(i, i + elementBytes).reverse();
}

function decodeRawFixed(label: string, side: Side, layout: Layout, count: number, raw: Uint8Array): NumericData {
  const elementBytes = layout.elementBytes!;
  const expected = count * elementBytes;
  if (raw.byteLength !== expected) {
    throw invalid(
      `${label}: ${side.raw} entry has ${raw.byteLength} bytes, expected ${expected} (${count} elements × ${elementBytes} bytes)`,
    );
  }
  // A fresh array is aligned; protobuf byte fields point anywhere into the message.
  const data = new layout.array!(count);
  const bytes = new Uint8Array(data.buffer);
  bytes.set(raw);
  if (!hostIsLittleEndian) reverseEachElement(bytes, elementBytes);
  return data;
}

function decodeRawBytes(label: string, side: Side, count: number, raw: Uint8Array): Uint8Array[] {
  // Every element takes at least its 4-byte length: a shape claiming more cannot match, so nothing is decoded.
  if (count * 4 > raw.byteLength) {
    throw invalid(
      `${label}: ${side.raw} entry has ${raw.byteLength} bytes, too few for the ${count} BYTES elements the shape declares (each needs at least its 4-byte length) — send the shape of the data`,
    );
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const items: Uint8Array[] = [];
  let offset = 0;
  // Stops at the element count the shape declares; what follows is an error, never more elements.
  while (items.length < count) {
    const left = raw.byteLength - offset;
    if (left === 0) throw invalid(`${label}: ${side.raw} entry holds ${items.length} BYTES elements, the shape needs ${count}`);
    if (left < 4) {
      throw invalid(
        `${label}: BYTES element ${items.length} starts at byte ${offset} with ${left} bytes left, too few for its 4-byte length — prefix every element with its length (uint32 little-endian)`,
      );
    }
    const length = view.getUint32(offset, true);
    if (length > left - 4) {
      throw invalid(
        `${label}: BYTES element ${items.length} at byte ${offset} declares ${length} bytes but only ${left - 4} follow — the length prefix must be uint32 little-endian and match the element`,
      );
    }
    items.push(new Uint8Array(raw.subarray(offset + 4, offset + 4 + length)));
    offset += 4 + length;
  }
  if (offset < raw.byteLength) {
    throw invalid(
      `${label}: ${side.raw} entry has ${raw.byteLength - offset} bytes after its ${count} BYTES elements — send exactly the elements the shape declares`,
    );
  }
  return items;
}

function decodeTyped(label: string, side: Side, layout: Layout, count: number, contents?: InferTensorContents): Tensor['data'] {
  const field = layout.contentsField;
  if (!field) throw invalid(`${label}: ${layout.datatype} has no typed contents field — send it in ${side.raw}`);
  const values = contents?.[field] ?? [];
  if (values.length !== count) {
    const other = contents && (Object.keys(contents) as ContentsField[]).find((f) => Array.isArray(contents[f]) && f !== field && contents[f].length > 0);
    const hint = other ? ` (contents.${protoName(other)} is set — ${layout.datatype} data belongs in contents.${protoName(field)})` : '';
    throw invalid(`${label}: contents.${protoName(field)} has ${values.length} elements, the shape needs ${count}${hint}`);
  }
  if (!layout.array) return (values as Uint8Array[]).map((item) => new Uint8Array(item));
  const data = new layout.array(count);
  (data as { set(values: ArrayLike<unknown>): void }).set(values as ArrayLike<unknown>);
  return data;
}

function decodeTensors(side: Side, wires: readonly WireTensor[], raws: readonly Uint8Array[]): Record<string, Tensor> {
  if (raws.length > 0) {
    if (raws.length !== wires.length) {
      throw invalid(
        `${side.raw} has ${raws.length} entries but there are ${wires.length} ${side.list} — send one entry per ${side.what}, in the order of ${side.list}`,
      );
    }
    const typed = wires.find((w) => w.contents !== undefined);
    if (typed) {
      throw invalid(`${side.what} '${typed.name}' sets contents while ${side.raw} is used — send every ${side.what} either raw or typed, not both`);
    }
  }
  const names = new Set<string>();
  const entries = wires.map((wire, i): [string, Tensor] => {
    const label = `${side.what} '${wire.name}' (${wire.datatype} [${wire.shape.join(',')}])`;
    if (names.has(wire.name)) throw invalid(`${side.what} '${wire.name}' is given twice — tensor names must be unique`);
    names.add(wire.name);
    const layout = layoutByDatatype.get(wire.datatype);
    if (!layout) throw invalid(`${side.what} '${wire.name}': unknown datatype '${wire.datatype}' — use one of ${datatypeList}`);
    if (wire.shape.some((d) => d < 0n)) {
      throw invalid(`${label}: the shape has a negative dimension — send the actual shape of the data (-1 only appears in metadata)`);
    }
    if (wire.shape.some((d) => d > BigInt(Number.MAX_SAFE_INTEGER))) throw invalid(`${label}: a dimension is too large`);
    const dims = wire.shape.map(Number);
    const count = elementCount(dims);
    const maxElements = layout.array ? MAX_TENSOR_ELEMENTS : MAX_BYTES_ELEMENTS;
    if (count > maxElements) {
      throw invalid(`${label}: the shape declares ${count} elements, over the limit of ${maxElements} per ${layout.datatype} tensor — split the data over several requests`);
    }
    const raw = raws[i];
    let data: Tensor['data'];
    if (raw === undefined) data = decodeTyped(label, side, layout, count, wire.contents);
    else if (layout.array) data = decodeRawFixed(label, side, layout, count, raw);
    else data = decodeRawBytes(label, side, count, raw);
    return [wire.name, { type: layout.type, dims, data }];
  });
  // fromEntries defines own properties, so a tensor named '__proto__' stays a tensor.
  return Object.fromEntries(entries);
}

function encodeRawBytes(items: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(items.reduce((n, item) => n + 4 + item.byteLength, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const item of items) {
    view.setUint32(offset, item.byteLength, true);
    out.set(item, offset + 4);
    offset += 4 + item.byteLength;
  }
  return out;
}

function encodeTensors(side: Side, tensors: Record<string, Tensor>): { wires: Omit<WireTensor, 'contents'>[]; raws: Uint8Array[] } {
  const wires: Omit<WireTensor, 'contents'>[] = [];
  const raws: Uint8Array[] = [];
  for (const [name, tensor] of Object.entries(tensors)) {
    const label = `${side.what} '${name}' (${tensor.type} [${tensor.dims.join(',')}])`;
    const layout = layoutByType.get(tensor.type);
    if (!layout) throw invalid(`${side.what} '${name}': tensor type '${tensor.type}' has no KServe v2 datatype`);
    if (tensor.dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw invalid(`${label}: dims must be non-negative integers`);
    const { data } = tensor;
    const count = elementCount(tensor.dims);
    if (layout.array ? !(data instanceof layout.array) : !Array.isArray(data)) {
      throw invalid(`${label}: data is a ${data.constructor.name}, expected ${layout.array?.name ?? 'an array of Uint8Array'}`);
    }
    if (data.length !== count) throw invalid(`${label}: data has ${data.length} elements, the dims need ${count}`);
    let raw: Uint8Array;
    if (Array.isArray(data)) raw = encodeRawBytes(data);
    else if (hostIsLittleEndian) raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      raw = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
      reverseEachElement(raw, layout.elementBytes!);
    }
    wires.push({ name, datatype: layout.datatype, shape: tensor.dims.map(BigInt) });
    raws.push(raw);
  }
  return { wires, raws };
}

/** Server side: the request's input tensors by name, from raw or typed contents. */
export function decodeInferInputs(request: Pick<ModelInferRequest, 'inputs' | 'rawInputContents'>): Record<string, Tensor> {
  return decodeTensors(REQUEST, request.inputs, request.rawInputContents);
}

/** Server side: response outputs, raw, in the order of `tensors`. */
export function encodeInferOutputs(tensors: Record<string, Tensor>): {
  outputs: ModelInferResponse_InferOutputTensor[];
  rawOutputContents: Uint8Array[];
} {
  const { wires, raws } = encodeTensors(RESPONSE, tensors);
  return { outputs: wires.map((w) => create(ModelInferResponse_InferOutputTensorSchema, w)), rawOutputContents: raws };
}

/** Client side: request inputs, raw, in the order of `tensors`. */
export function encodeInferInputs(tensors: Record<string, Tensor>): {
  inputs: ModelInferRequest_InferInputTensor[];
  rawInputContents: Uint8Array[];
} {
  const { wires, raws } = encodeTensors(REQUEST, tensors);
  return { inputs: wires.map((w) => create(ModelInferRequest_InferInputTensorSchema, w)), rawInputContents: raws };
}

/** Client side: the response's output tensors by name, from raw or typed contents. */
export function decodeInferOutputs(response: Pick<ModelInferResponse, 'outputs' | 'rawOutputContents'>): Record<string, Tensor> {
  return decodeTensors(RESPONSE, response.outputs, response.rawOutputContents);
}
