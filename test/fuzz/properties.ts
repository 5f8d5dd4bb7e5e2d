/**
 * Properties of the code that reads what strangers send: the MQTT payload
 * parser, the WAV decoder, the KServe tensor codec, image sniffing and the
 * model toolchain's ONNX and tfjs readers. Each either reads the input or
 * refuses it with the project's own error naming the problem — never a
 * TypeError, RangeError or a hang — and what the project writes, it reads
 * back unchanged. `npm test` runs them with a fixed seed (fuzz.test.ts);
 * `npm run fuzz` runs them long (run.ts).
 */
import { create } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { loadEdgeConfig } from '../../edge/config.js';
import { parsePayload, requestValidators, toAgentRequest } from '../../edge/ingress/payload.js';
import { ModelToolError, parseModel } from '../../models/toolchain/onnx-model.js';
import { readTopology } from '../../models/toolchain/tfjs-topology.js';
import { InferError } from '../../shared/errors.js';
import { ModelInferRequestSchema } from '../../shared/gen/inference/grpc_service_pb.js';
import { checkImageInput, sniffImageFormat } from '../../shared/handlers/image-decode.js';
import { decodeAudio, encodeWavPcm16 } from '../../shared/handlers/wav.js';
import { decodeInferInputs, encodeInferInputs } from '../../shared/tensor-codec.js';
import type { Tensor } from '../../shared/tensor.js';

export interface FuzzProperty {
  name: string;
  property: fc.IPropertyWithHooks<never> | fc.IAsyncPropertyWithHooks<never> | fc.IRawProperty<unknown>;
}

/** The call either returns or throws `kind` (with a message); anything else is a finding. */
function readsOrRefuses(call: () => unknown, kind: 'InferError' | 'ModelToolError'): void {
  try {
    call();
  } catch (err) {
    const ok = kind === 'InferError' ? err instanceof InferError && err.code === 'INVALID_ARGUMENT' : err instanceof ModelToolError;
    if (!ok || !(err as Error).message) throw new Error(`expected a ${kind} naming the problem, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`, { cause: err });
  }
}

const validators = requestValidators(loadEdgeConfig().limits);
const packr = new Packr({ useRecords: false });
const bytes = (max = 512) => fc.uint8Array({ maxLength: max });

const wavBytes = fc
  .array(fc.float({ min: -1, max: Math.fround(0.99), noNaN: true }), { minLength: 1, maxLength: 2000 })
  .map((samples) => ({ samples: Float32Array.from(samples), wav: encodeWavPcm16(Float32Array.from(samples)) }));

const datatypes = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES', 'BF16', 'STRING', ''];

const numericTensor: fc.Arbitrary<Tensor> = fc.oneof(
  fc.array(fc.float({ noNaN: true }), { maxLength: 24 }).map((v) => ({ type: 'float32' as const, dims: [v.length], data: Float32Array.from(v) })),
  fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 24 }).map((v) => ({ type: 'int64' as const, dims: [v.length], data: BigInt64Array.from(v) })),
  fc.array(fc.integer({ min: -128, max: 127 }), { maxLength: 24 }).map((v) => ({ type: 'int8' as const, dims: [1, v.length], data: Int8Array.from(v) })),
  fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }).map((items) => ({ type: 'bytes' as const, dims: [items.length], data: items })),
);

export const properties: FuzzProperty[] = [
  {
    name: 'payload: any bytes, as msgpack or JSON, are a request or an INVALID_ARGUMENT',
    property: fc.property(bytes(2048), fc.constantFrom('msgpack' as const, 'json' as const), (payload, format) =>
      readsOrRefuses(() => toAgentRequest(parsePayload(payload, format), format, validators), 'InferError'),
    ),
  },
  {
    name: 'payload: any document (deeply nested, huge numbers, odd keys) is a request or an INVALID_ARGUMENT',
    property: fc.property(fc.anything({ maxDepth: 8, withBigInt: true, withTypedArray: true, withNullPrototype: true, withMap: true }), (doc) => {
      let packed: Uint8Array;
      try {
        packed = packr.pack(doc);
      } catch {
        return; // msgpackr cannot write it, so no client can send it
      }
      readsOrRefuses(() => toAgentRequest(parsePayload(packed, 'msgpack'), 'msgpack', validators), 'InferError');
    }),
  },
  {
    name: 'payload: a valid request survives msgpack and JSON unchanged',
    property: fc.property(
      fc.string({ minLength: 1, maxLength: 64 }),
      fc.string({ minLength: 1, maxLength: 200 }).filter((t) => t.trim().length > 0),
      fc.integer({ min: 1, max: 86_400_000 }),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      (id, text, deadlineMs, image) => {
        const request = { id, inputs: { text, image }, deadlineMs };
        const fromMsgpack = toAgentRequest(parsePayload(packr.pack(request), 'msgpack'), 'msgpack', validators).request;
        const json = JSON.stringify({ ...request, inputs: { text, image: Buffer.from(image).toString('base64') } });
        const fromJson = toAgentRequest(parsePayload(new TextEncoder().encode(json), 'json'), 'json', validators).request;
        for (const got of [fromMsgpack, fromJson]) {
          if (got.id !== id || got.inputs.text !== text || got.deadlineMs !== deadlineMs || !Buffer.from(got.inputs.image!).equals(Buffer.from(image))) {
            throw new Error(`request changed on the way: ${JSON.stringify(got).slice(0, 200)}`);
          }
        }
      },
    ),
  },
  {
    name: 'wav: any bytes decode or are an INVALID_ARGUMENT',
    property: fc.property(bytes(4096), (wav) => readsOrRefuses(() => decodeAudio(wav), 'InferError')),
  },
  {
    name: 'wav: a WAV with bytes of its header changed decodes or is an INVALID_ARGUMENT',
    property: fc.property(wavBytes, fc.array(fc.tuple(fc.nat(63), fc.nat(255)), { minLength: 1, maxLength: 6 }), ({ wav }, edits) => {
      const damaged = wav.slice();
      for (const [at, value] of edits) if (at < damaged.length) damaged[at] = value;
      readsOrRefuses(() => decodeAudio(damaged), 'InferError');
    }),
  },
  {
    name: 'wav: what encodeWavPcm16 writes decodes to the same samples (within a PCM16 step)',
    property: fc.property(wavBytes, ({ samples, wav }) => {
      const decoded = decodeAudio(wav).samples;
      if (decoded.length !== samples.length) throw new Error(`${samples.length} samples in, ${decoded.length} out`);
      decoded.forEach((v, i) => {
        // Written as × 32767 and read as / 32768: one step of 1/32768 plus the scale's difference.
        if (Math.abs(v - samples[i]!) > 2 / 32_768) throw new Error(`sample ${i}: ${samples[i]} became ${v}`);
      });
    }),
  },
  {
    name: 'tensor codec: any datatype, shape and raw bytes decode or are an INVALID_ARGUMENT',
    property: fc.property(
      fc.constantFrom(...datatypes),
      fc.array(fc.bigInt({ min: -2n, max: 2n ** 40n }), { maxLength: 5 }),
      bytes(256),
      (datatype, shape, raw) => readsOrRefuses(() => decodeInferInputs(create(ModelInferRequestSchema, { inputs: [{ name: 'x', datatype, shape }], rawInputContents: [raw] })), 'InferError'),
    ),
  },
  {
    name: 'tensor codec: tensors survive encoding and decoding unchanged',
    property: fc.property(numericTensor, (tensor) => {
      const decoded = decodeInferInputs(create(ModelInferRequestSchema, encodeInferInputs({ x: tensor }))).x!;
      const same = decoded.type === tensor.type && JSON.stringify(decoded.dims) === JSON.stringify(tensor.dims);
      const items = (t: Tensor) => (t.type === 'bytes' ? (t.data as Uint8Array[]).map((b) => Buffer.from(b).toString('hex')) : Array.from(t.data as ArrayLike<unknown>, String));
      if (!same || JSON.stringify(items(decoded)) !== JSON.stringify(items(tensor))) throw new Error(`${tensor.type} ${JSON.stringify(tensor.dims)} changed`);
    }),
  },
  {
    name: 'image: sniffing never throws, and the input check accepts exactly what sniffing recognises',
    property: fc.property(fc.oneof(bytes(64), fc.constantFrom([0xff, 0xd8, 0xff], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).chain((head) => bytes(32).map((tail) => Uint8Array.from([...head, ...tail])))), (input) => {
      const format = sniffImageFormat(input);
      let accepted = true;
      readsOrRefuses(() => {
        try {
          checkImageInput(input, 'image input');
        } catch (err) {
          accepted = false;
          throw err;
        }
      }, 'InferError');
      if (accepted !== (format !== undefined)) throw new Error(`sniffed ${format}, but the check ${accepted ? 'accepted' : 'refused'} it`);
    }),
  },
  {
    name: 'onnx: any bytes are a model or a ModelToolError',
    property: fc.property(bytes(1024), (model) => readsOrRefuses(() => parseModel(model, 'fuzz.onnx'), 'ModelToolError')),
  },
  {
    name: 'tfjs: any model topology is read or refused with a ModelToolError',
    property: fc.property(
      fc.record({ class_name: fc.constantFrom('Sequential', 'Model', 'Functional', 'Other'), config: fc.jsonValue({ maxDepth: 5 }) }),
      (modelConfig) => readsOrRefuses(() => readTopology(modelConfig as never), 'ModelToolError'),
    ),
  },
];
