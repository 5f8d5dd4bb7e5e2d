import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import {
  InferTensorContentsSchema,
  ModelInferRequest_InferInputTensorSchema,
  ModelInferRequestSchema,
  ModelInferResponseSchema,
} from '../../shared/gen/inference/grpc_service_pb.js';
import {
  decodeInferInputs,
  decodeInferOutputs,
  encodeInferInputs,
  encodeInferOutputs,
  fromV2Datatype,
  MAX_BYTES_ELEMENTS,
  MAX_TENSOR_ELEMENTS,
  toV2Datatype,
  type V2Datatype,
} from '../../shared/tensor-codec.js';
import type { Tensor, TensorType } from '../../shared/tensor.js';

const utf8 = (text: string) => new TextEncoder().encode(text);

/** One tensor of every v2 datatype, with the extreme values of its range. */
const samples: Record<V2Datatype, Tensor> = {
  BOOL: { type: 'bool', dims: [2, 3], data: Uint8Array.of(1, 0, 1, 1, 0, 0) },
  UINT8: { type: 'uint8', dims: [3], data: Uint8Array.of(0, 255, 7) },
  UINT16: { type: 'uint16', dims: [3], data: Uint16Array.of(0, 65535, 258) },
  UINT32: { type: 'uint32', dims: [3], data: Uint32Array.of(0, 4294967295, 65536) },
  UINT64: { type: 'uint64', dims: [3], data: BigUint64Array.of(0n, 2n ** 64n - 1n, 1n) },
  INT8: { type: 'int8', dims: [3], data: Int8Array.of(-128, 127, -1) },
  INT16: { type: 'int16', dims: [3], data: Int16Array.of(-32768, 32767, -1) },
  INT32: { type: 'int32', dims: [1, 3], data: Int32Array.of(-(2 ** 31), 2 ** 31 - 1, -1) },
  INT64: { type: 'int64', dims: [3], data: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, -1n) },
  FP16: { type: 'float16', dims: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x7bff) },
  FP32: { type: 'float32', dims: [3, 1], data: Float32Array.of(1.5, -0, Math.fround(3.4e38)) },
  FP64: { type: 'float64', dims: [3], data: Float64Array.of(Math.PI, -1e300, 0) },
  BYTES: { type: 'bytes', dims: [3], data: [utf8('hello'), new Uint8Array(0), Uint8Array.of(0, 255, 10)] },
};

const typeOf: Record<V2Datatype, TensorType> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'bytes',
};

/** The typed InferTensorContents of a tensor, written from the spec's field list. */
function typedContents(tensor: Tensor): MessageInitShape<typeof InferTensorContentsSchema> {
  const values = Array.from(tensor.data as ArrayLike<number | bigint | Uint8Array>);
  switch (tensor.type) {
    case 'bool':
      return { boolContents: values.map((v) => v === 1) };
    case 'int8':
    case 'int16':
    case 'int32':
      return { intContents: values as number[] };
    case 'uint8':
    case 'uint16':
    case 'uint32':
      return { uintContents: values as number[] };
    case 'int64':
      return { int64Contents: values as bigint[] };
    case 'uint64':
      return { uint64Contents: values as bigint[] };
    case 'float32':
      return { fp32Contents: values as number[] };
    case 'float64':
      return { fp64Contents: values as number[] };
    case 'bytes':
      return { bytesContents: values as Uint8Array[] };
    default:
      throw new Error(`no typed contents for ${tensor.type}`);
  }
}

/** Through the real wire: protobuf bytes of the request, parsed back (byte fields end up unaligned views). */
function overTheWire(init: MessageInitShape<typeof ModelInferRequestSchema>) {
  return fromBinary(ModelInferRequestSchema, toBinary(ModelInferRequestSchema, create(ModelInferRequestSchema, init)));
}

function invalidArgument(message: RegExp) {
  return { name: 'InferError', code: 'INVALID_ARGUMENT', message };
}

for (const [datatype, tensor] of Object.entries(samples) as [V2Datatype, Tensor][]) {
  test(`${datatype} request input survives raw_input_contents`, () => {
    const encoded = encodeInferInputs({ x: tensor });
    assert.equal(encoded.inputs[0]!.datatype, datatype);
    const decoded = decodeInferInputs(overTheWire({ modelName: 'm', ...encoded }));
    assert.deepEqual(decoded, { x: tensor });
  });

  test(`${datatype} response output survives raw_output_contents`, () => {
    const response = create(ModelInferResponseSchema, { modelName: 'm', ...encodeInferOutputs({ y: tensor }) });
    const decoded = decodeInferOutputs(fromBinary(ModelInferResponseSchema, toBinary(ModelInferResponseSchema, response)));
    assert.deepEqual(decoded, { y: tensor });
  });

  test(`${datatype} maps to tensor type ${typeOf[datatype]} and back`, () => {
    assert.equal(fromV2Datatype(datatype), typeOf[datatype]);
    assert.equal(toV2Datatype(typeOf[datatype]), datatype);
  });

  if (datatype === 'FP16') continue;
  test(`${datatype} request input decodes from typed contents`, () => {
    const wire = overTheWire({
      inputs: [{ name: 'x', datatype, shape: tensor.dims.map(BigInt), contents: typedContents(tensor) }],
    });
    assert.deepEqual(decodeInferInputs(wire), { x: tensor });
  });

  test(`${datatype} response output decodes from typed contents`, () => {
    const response = create(ModelInferResponseSchema, {
      outputs: [{ name: 'y', datatype, shape: tensor.dims.map(BigInt), contents: typedContents(tensor) }],
    });
    assert.deepEqual(decodeInferOutputs(fromBinary(ModelInferResponseSchema, toBinary(ModelInferResponseSchema, response))), {
      y: tensor,
    });
  });
}

test('BYTES raw contents are a 4-byte little-endian length then the bytes, per element', () => {
  const { rawInputContents } = encodeInferInputs({
    text: { type: 'bytes', dims: [3], data: [utf8('ab'), new Uint8Array(0), utf8('xyz')] },
  });
  assert.deepEqual([...rawInputContents[0]!], [2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 3, 0, 0, 0, 0x78, 0x79, 0x7a]);

  const long = new Uint8Array(0x0102);
  const [raw] = encodeInferOutputs({ blob: { type: 'bytes', dims: [1], data: [long] } }).rawOutputContents;
  assert.deepEqual([...raw!.subarray(0, 4)], [0x02, 0x01, 0, 0]);
  assert.equal(raw!.byteLength, 4 + 0x0102);
});

test('numeric raw contents are little-endian and unpadded', () => {
  const { rawInputContents } = encodeInferInputs({
    a: { type: 'int32', dims: [2], data: Int32Array.of(1, -2) },
    b: { type: 'uint16', dims: [1], data: Uint16Array.of(0x0102) },
  });
  assert.deepEqual([...rawInputContents[0]!], [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]);
  assert.deepEqual([...rawInputContents[1]!], [0x02, 0x01]);
});

test('raw contents at an odd offset decode into aligned typed arrays', () => {
  const buffer = new Uint8Array(1 + 8 * 2);
  new DataView(buffer.buffer).setFloat64(1, 2.5, true);
  new DataView(buffer.buffer).setFloat64(9, -7, true);
  const { x } = decodeInferInputs({
    inputs: [create(ModelInferRequest_InferInputTensorSchema, { name: 'x', datatype: 'FP64', shape: [2n] })],
    rawInputContents: [buffer.subarray(1)],
  });
  assert.ok(x!.data instanceof Float64Array);
  assert.deepEqual([...(x!.data as Float64Array)], [2.5, -7]);
});

test('BYTES elements are copied out of the request buffer', () => {
  const wire = overTheWire(encodeInferInputs({ t: { type: 'bytes', dims: [1], data: [utf8('hi')] } }));
  const element = (decodeInferInputs(wire).t!.data as Uint8Array[])[0]!;
  assert.equal(element.buffer.byteLength, 2);
});

test('inputs keep their names, including ones that are Object.prototype keys', () => {
  const one: Tensor = { type: 'uint8', dims: [1], data: Uint8Array.of(9) };
  const decoded = decodeInferInputs(overTheWire(encodeInferInputs({ a: one, b: one })));
  assert.deepEqual(Object.keys(decoded), ['a', 'b']);
  const odd = decodeInferInputs(
    overTheWire({ inputs: [{ name: '__proto__', datatype: 'UINT8', shape: [1n] }], rawInputContents: [Uint8Array.of(9)] }),
  );
  assert.deepEqual(Object.getOwnPropertyDescriptor(odd, '__proto__')?.value, one);
});

function request(
  inputs: { name?: string; datatype: string; shape: bigint[]; contents?: MessageInitShape<typeof InferTensorContentsSchema> }[],
  rawInputContents: Uint8Array[] = [],
) {
  return overTheWire({ inputs: inputs.map((i) => ({ name: 'x', ...i })), rawInputContents });
}

test('an unknown datatype is rejected with the list of valid ones', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'FLOAT32', shape: [1n] }], [new Uint8Array(4)])),
    invalidArgument(/input 'x': unknown datatype 'FLOAT32' — use one of BOOL, UINT8, .*FP32.*BYTES/),
  );
  assert.throws(() => fromV2Datatype('BF16'), invalidArgument(/unknown datatype 'BF16'/));
});

test('a shape with a negative dimension is rejected', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'FP32', shape: [1n, -1n] }], [new Uint8Array(4)])),
    invalidArgument(/input 'x' \(FP32 \[1,-1\]\): the shape has a negative dimension/),
  );
});

test('a raw byte count that does not match the shape names both numbers', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'FP32', shape: [2n, 3n] }], [new Uint8Array(20)])),
    invalidArgument(/input 'x' \(FP32 \[2,3\]\): raw_input_contents entry has 20 bytes, expected 24 \(6 elements × 4 bytes\)/),
  );
  const response = create(ModelInferResponseSchema, {
    outputs: [{ name: 'y', datatype: 'INT64', shape: [2n] }],
    rawOutputContents: [new Uint8Array(8)],
  });
  assert.throws(() => decodeInferOutputs(response), invalidArgument(/output 'y' .*raw_output_contents entry has 8 bytes, expected 16/));
});

test('typed contents with the wrong element count are rejected', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'INT32', shape: [4n], contents: { intContents: [1, 2, 3] } }])),
    invalidArgument(/input 'x' \(INT32 \[4\]\): contents.int_contents has 3 elements, the shape needs 4/),
  );
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'FP32', shape: [2n], contents: { fp64Contents: [1, 2] } }])),
    invalidArgument(/contents.fp32_contents has 0 elements, the shape needs 2 \(contents.fp64_contents is set — FP32 data belongs in contents.fp32_contents\)/),
  );
});

test('FP16 given as typed contents is rejected: the spec has raw only', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'FP16', shape: [1n], contents: { uintContents: [0x3c00] } }])),
    invalidArgument(/FP16 has no typed contents field — send it in raw_input_contents/),
  );
});

test('raw and typed contents in one request are rejected', () => {
  assert.throws(
    () =>
      decodeInferInputs(
        request(
          [
            { name: 'a', datatype: 'UINT8', shape: [1n] },
            { name: 'b', datatype: 'UINT8', shape: [1n], contents: { uintContents: [1] } },
          ],
          [Uint8Array.of(1), Uint8Array.of(1)],
        ),
      ),
    invalidArgument(/input 'b' sets contents while raw_input_contents is used/),
  );
});

test('a raw_input_contents count that differs from the inputs is rejected', () => {
  assert.throws(
    () =>
      decodeInferInputs(
        request(
          [
            { name: 'a', datatype: 'UINT8', shape: [1n] },
            { name: 'b', datatype: 'UINT8', shape: [1n] },
          ],
          [Uint8Array.of(1)],
        ),
      ),
    invalidArgument(/raw_input_contents has 1 entries but there are 2 inputs — send one entry per input, in the order of inputs/),
  );
});

test('BYTES elements running past the buffer are rejected', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'BYTES', shape: [1n] }], [Uint8Array.of(9, 0, 0, 0, 0x61, 0x62)])),
    invalidArgument(/input 'x' \(BYTES \[1\]\): BYTES element 0 at byte 0 declares 9 bytes but only 2 follow/),
  );
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'BYTES', shape: [2n] }], [Uint8Array.of(1, 0, 0, 0, 0x61, 2, 0, 0)])),
    invalidArgument(/BYTES element 1 starts at byte 5 with 3 bytes left, too few for its 4-byte length/),
  );
});

test('BYTES raw contents with a different element count than the shape are rejected', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'BYTES', shape: [2n] }], [Uint8Array.of(4, 0, 0, 0, 0x61, 0x62, 0x63, 0x64)])),
    invalidArgument(/raw_input_contents entry holds 1 BYTES elements, the shape needs 2/),
  );
});

test('zero-length BYTES elements past the shape\'s count are refused, not decoded', () => {
  // A 4 MiB flood of empty elements used to decode as ~1 M items before the count was checked.
  const flood = new Uint8Array(4 * 1024 * 1024);
  const started = performance.now();
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'BYTES', shape: [1n] }], [flood])),
    invalidArgument(/input 'x' \(BYTES \[1\]\): raw_input_contents entry has 4194300 bytes after its 1 BYTES elements — send exactly the elements the shape declares/),
  );
  assert.ok(performance.now() - started < 50, 'refused without walking the flood');
});

test('BYTES raw contents too short for the declared count are refused before decoding any element', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'BYTES', shape: [1000n] }], [new Uint8Array(40)])),
    invalidArgument(/raw_input_contents entry has 40 bytes, too few for the 1000 BYTES elements the shape declares/),
  );
});

test('a shape declaring more elements than a tensor may hold is refused before allocating', () => {
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'BYTES', shape: [30_000_000n] }], [new Uint8Array(4)])),
    invalidArgument(new RegExp(`the shape declares 30000000 elements, over the limit of ${MAX_BYTES_ELEMENTS} per BYTES tensor — split the data over several requests`)),
  );
  assert.throws(
    () => decodeInferInputs(request([{ datatype: 'FP32', shape: [100_000n, 100_000n] }], [new Uint8Array(4)])),
    invalidArgument(new RegExp(`the shape declares 10000000000 elements, over the limit of ${MAX_TENSOR_ELEMENTS} per FP32 tensor`)),
  );
});

test('an input name given twice is rejected', () => {
  assert.throws(
    () =>
      decodeInferInputs(
        request(
          [
            { datatype: 'UINT8', shape: [1n] },
            { datatype: 'UINT8', shape: [1n] },
          ],
          [Uint8Array.of(1), Uint8Array.of(2)],
        ),
      ),
    invalidArgument(/input 'x' is given twice/),
  );
});

test('encoding a tensor whose data does not fit its dims or type is rejected', () => {
  assert.throws(
    () => encodeInferInputs({ x: { type: 'float32', dims: [2, 2], data: new Float32Array(3) } }),
    invalidArgument(/input 'x' \(float32 \[2,2\]\): data has 3 elements, the dims need 4/),
  );
  assert.throws(
    () => encodeInferOutputs({ y: { type: 'int64', dims: [1], data: Int32Array.of(1) } }),
    invalidArgument(/output 'y' \(int64 \[1\]\): data is a Int32Array, expected BigInt64Array/),
  );
  assert.throws(
    () => encodeInferOutputs({ y: { type: 'uint8', dims: [-1], data: new Uint8Array(0) } }),
    invalidArgument(/dims must be non-negative integers/),
  );
});
