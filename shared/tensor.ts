/**
 * The in-process tensor shape shared by handlers, the ORT wrapper and the v2
 * codec. Plain data (no ORT objects) so tensors can cross worker threads.
 * Type names follow onnxruntime; 'bytes' is the v2 BYTES type (binary-safe).
 */
export type TensorType =
  | 'float32'
  | 'float16'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'bytes';

export type NumericData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export interface Tensor {
  type: TensorType;
  dims: number[];
  /** 'bytes' tensors hold one Uint8Array per element; 'float16' holds raw bits in a Uint16Array; 'bool' a Uint8Array. */
  data: NumericData | Uint8Array[];
}

export interface TensorMeta {
  name: string;
  type: TensorType;
  /** -1 marks a variable (symbolic) dimension, as the KServe v2 metadata does. */
  shape: number[];
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

export function float32(dims: number[], data: Float32Array): Tensor {
  return { type: 'float32', dims, data };
}

export function bytesTensor(items: Uint8Array[]): Tensor {
  return { type: 'bytes', dims: [items.length], data: items };
}

export function utf8Tensor(text: string): Tensor {
  return bytesTensor([new TextEncoder().encode(text)]);
}
