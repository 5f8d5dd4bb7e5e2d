/**
 * Wire compatibility: a client that shares no code with the project — its own
 * copy of the public KServe v2 protocol (kserve/kserve
 * docs/predict-api/v2/grpc_predict_v2.proto) plus Triton's ModelStreamInfer
 * extension (triton-inference-server/common protobuf/grpc_service.proto),
 * loaded with @grpc/proto-loader, tensors packed and unpacked by hand — talks
 * to the cloud tier as any KServe/Triton client would.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import type { CloudServer } from '../../cloud/server.js';
import { startTestCloud } from '../helpers/cloud.js';
import { readFixture, StreamCollector } from '../helpers/inference.js';

const KSERVE_V2_PROTO = `
syntax = "proto3";
package inference;

service GRPCInferenceService {
  rpc ServerLive(ServerLiveRequest) returns (ServerLiveResponse) {}
  rpc ServerReady(ServerReadyRequest) returns (ServerReadyResponse) {}
  rpc ModelReady(ModelReadyRequest) returns (ModelReadyResponse) {}
  rpc ServerMetadata(ServerMetadataRequest) returns (ServerMetadataResponse) {}
  rpc ModelMetadata(ModelMetadataRequest) returns (ModelMetadataResponse) {}
  rpc ModelInfer(ModelInferRequest) returns (ModelInferResponse) {}
  // Triton extension.
  rpc ModelStreamInfer(stream ModelInferRequest) returns (stream ModelStreamInferResponse) {}
}

message ServerLiveRequest {}
message ServerLiveResponse { bool live = 1; }
message ServerReadyRequest {}
message ServerReadyResponse { bool ready = 1; }
message ModelReadyRequest { string name = 1; string version = 2; }
message ModelReadyResponse { bool ready = 1; }
message ServerMetadataRequest {}
message ServerMetadataResponse { string name = 1; string version = 2; repeated string extensions = 3; }
message ModelMetadataRequest { string name = 1; string version = 2; }
message ModelMetadataResponse {
  message TensorMetadata { string name = 1; string datatype = 2; repeated int64 shape = 3; }
  string name = 1;
  repeated string versions = 2;
  string platform = 3;
  repeated TensorMetadata inputs = 4;
  repeated TensorMetadata outputs = 5;
}

message ModelInferRequest {
  message InferInputTensor {
    string name = 1;
    string datatype = 2;
    repeated int64 shape = 3;
    map<string, InferParameter> parameters = 4;
    InferTensorContents contents = 5;
  }
  message InferRequestedOutputTensor {
    string name = 1;
    map<string, InferParameter> parameters = 2;
  }
  string model_name = 1;
  string model_version = 2;
  string id = 3;
  map<string, InferParameter> parameters = 4;
  repeated InferInputTensor inputs = 5;
  repeated InferRequestedOutputTensor outputs = 6;
  repeated bytes raw_input_contents = 7;
}

message ModelInferResponse {
  message InferOutputTensor {
    string name = 1;
    string datatype = 2;
    repeated int64 shape = 3;
    map<string, InferParameter> parameters = 4;
    InferTensorContents contents = 5;
  }
  string model_name = 1;
  string model_version = 2;
  string id = 3;
  map<string, InferParameter> parameters = 4;
  repeated InferOutputTensor outputs = 5;
  repeated bytes raw_output_contents = 6;
}

// Triton extension.
message ModelStreamInferResponse {
  string error_message = 1;
  ModelInferResponse infer_response = 2;
}

message InferParameter {
  oneof parameter_choice {
    bool bool_param = 1;
    int64 int64_param = 2;
    string string_param = 3;
    double double_param = 4;
    uint64 uint64_param = 5;
  }
}

message InferTensorContents {
  repeated bool bool_contents = 1;
  repeated int32 int_contents = 2;
  repeated int64 int64_contents = 3;
  repeated uint32 uint_contents = 4;
  repeated uint64 uint64_contents = 5;
  repeated float fp32_contents = 6;
  repeated double fp64_contents = 7;
  repeated bytes bytes_contents = 8;
}
`;

/** Messages as proto-loader hands them over with keepCase, longs: String, defaults: true. */
interface WireTensor {
  name: string;
  datatype: string;
  shape: string[];
}
interface WireParameter {
  int64_param?: string;
  string_param?: string;
}
interface WireInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, WireParameter>;
  outputs: WireTensor[];
  raw_output_contents: Buffer[];
}
interface WireStreamResponse {
  error_message: string;
  infer_response: WireInferResponse | null;
}
interface WireInferRequest {
  model_name: string;
  id?: string;
  inputs: { name: string; datatype: string; shape: number[]; contents?: Record<string, unknown> }[];
  outputs?: { name: string }[];
  raw_input_contents?: Buffer[];
}

let server: CloudServer;
let client: grpc.Client;
let protoDir: string;

before(async () => {
  const cloud = await startTestCloud({ models: ['audio-vad'] });
  server = cloud.server;
  protoDir = mkdtempSync(path.join(tmpdir(), 'kserve-v2-'));
  const protoFile = path.join(protoDir, 'grpc_predict_v2.proto');
  writeFileSync(protoFile, KSERVE_V2_PROTO);
  const definition = protoLoader.loadSync(protoFile, { keepCase: true, longs: String, defaults: true });
  const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
  const Client = inference.GRPCInferenceService as grpc.ServiceClientConstructor;
  client = new Client(cloud.address, grpc.credentials.createInsecure());
});

after(async () => {
  client?.close();
  await server?.drain(5_000);
  if (protoDir) rmSync(protoDir, { recursive: true, force: true });
});

/** Calls a unary method of the proto-loader client by its proto name. */
function unary<Res>(method: string, request: object): Promise<Res> {
  const fn = (client as unknown as Record<string, (req: object, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void>)[method]!;
  return new Promise((resolve, reject) =>
    fn.call(client, request, { deadline: new Date(Date.now() + 20_000) }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/** A BYTES tensor's raw contents, per the v2 spec: each element as a 4-byte little-endian length, then its bytes. */
function packBytes(elements: Buffer[]): Buffer {
  return Buffer.concat(elements.flatMap((element) => {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(element.length);
    return [length, element];
  }));
}

function unpackBytes(raw: Buffer): Buffer[] {
  const elements: Buffer[] = [];
  for (let offset = 0; offset < raw.length; ) {
    const length = raw.readUInt32LE(offset);
    elements.push(raw.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return elements;
}

function unpackFloat32(raw: Buffer): number[] {
  return Array.from({ length: raw.length / 4 }, (_, i) => raw.readFloatLE(i * 4));
}

/** The output tensor named `name` and its raw contents (outputs and raw_output_contents are parallel lists). */
function output(response: WireInferResponse, name: string): { tensor: WireTensor; raw: Buffer } {
  const index = response.outputs.findIndex((o) => o.name === name);
  assert.ok(index >= 0, `no output '${name}' (got ${response.outputs.map((o) => o.name).join(', ')})`);
  assert.equal(response.raw_output_contents.length, response.outputs.length);
  return { tensor: response.outputs[index]!, raw: response.raw_output_contents[index]! };
}

function audioVadRequest(id: string, wav: Buffer): WireInferRequest {
  return {
    model_name: 'audio-vad',
    id,
    inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }],
    raw_input_contents: [packBytes([wav])],
  };
}

/** One frame of silence for silero-vad: input FP32 [1,576], state FP32 [2,1,128] of zeros, sr INT64 scalar 16000. */
function sileroRequest(id: string): WireInferRequest {
  const sr = Buffer.alloc(8);
  sr.writeBigInt64LE(16000n);
  return {
    model_name: 'silero-vad',
    id,
    inputs: [
      { name: 'input', datatype: 'FP32', shape: [1, 576] },
      { name: 'state', datatype: 'FP32', shape: [2, 1, 128] },
      { name: 'sr', datatype: 'INT64', shape: [] },
    ],
    raw_input_contents: [Buffer.alloc(576 * 4), Buffer.alloc(256 * 4), sr],
  };
}

function assertSileroSilence(response: WireInferResponse): void {
  const probability = output(response, 'output');
  assert.equal(probability.tensor.datatype, 'FP32');
  assert.deepEqual(probability.tensor.shape, ['1', '1']);
  const [p] = unpackFloat32(probability.raw);
  assert.ok(p! >= 0 && p! < 0.5, `speech probability of silence: ${p}`);
  const state = output(response, 'stateN');
  assert.deepEqual(state.tensor.shape, ['2', '1', '128']);
  assert.equal(state.raw.length, 256 * 4);
}

function assertSpeechFound(response: WireInferResponse): void {
  const segments = output(response, 'segments');
  assert.equal(segments.tensor.datatype, 'FP32');
  const [count, pair] = segments.tensor.shape.map(Number);
  assert.equal(pair, 2);
  assert.ok(count! >= 1, 'no speech segment found');
  const bounds = unpackFloat32(segments.raw);
  assert.equal(bounds.length, count! * 2);
  for (let i = 0; i < count!; i++) assert.ok(bounds[2 * i + 1]! > bounds[2 * i]!, `segment ${i}: ${bounds[2 * i]}..${bounds[2 * i + 1]}`);
  const result = output(response, 'result');
  assert.equal(result.tensor.datatype, 'BYTES');
  const [json] = unpackBytes(result.raw);
  const parsed = JSON.parse(json!.toString('utf8')) as { segments: unknown[] };
  assert.equal(parsed.segments.length, count);
}

describe('a KServe v2 client built from the public spec', () => {
  test('ServerLive reports the server live', async () => {
    assert.deepEqual(await unary('ServerLive', {}), { live: true });
  });

  test('ModelMetadata of a pipeline and a raw graph', async () => {
    const pipeline = await unary<{ name: string; inputs: WireTensor[]; outputs: WireTensor[] }>('ModelMetadata', { name: 'audio-vad' });
    assert.equal(pipeline.name, 'audio-vad');
    assert.deepEqual(pipeline.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })), [{ name: 'input', datatype: 'BYTES', shape: ['1'] }]);
    assert.ok(pipeline.outputs.some((o) => o.name === 'result' && o.datatype === 'BYTES'));

    const graph = await unary<{ inputs: WireTensor[] }>('ModelMetadata', { name: 'silero-vad' });
    assert.deepEqual(graph.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })), [
      { name: 'input', datatype: 'FP32', shape: ['-1', '-1'] },
      { name: 'state', datatype: 'FP32', shape: ['2', '-1', '128'] },
      { name: 'sr', datatype: 'INT64', shape: [] },
    ]);
  });

  test('ModelInfer on audio-vad with a hand-packed BYTES input', async () => {
    const response = await unary<WireInferResponse>('ModelInfer', audioVadRequest('compat-vad', Buffer.from(readFixture('audio', 'speech-en.wav'))));
    assert.equal(response.id, 'compat-vad');
    assert.equal(response.model_name, 'audio-vad');
    assertSpeechFound(response);
    assert.match(response.parameters.compute_us?.int64_param ?? '', /^[1-9]\d*$/);
    assert.match(response.parameters.queue_us?.int64_param ?? '', /^\d+$/);
  });

  test('ModelInfer on silero-vad with hand-packed FP32 and INT64 inputs', async () => {
    const response = await unary<WireInferResponse>('ModelInfer', sileroRequest('compat-frame'));
    assert.equal(response.id, 'compat-frame');
    assertSileroSilence(response);
  });

  test('ModelInfer with typed contents instead of raw bytes', async () => {
    const request: WireInferRequest = {
      model_name: 'silero-vad',
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [1, 576], contents: { fp32_contents: new Array<number>(576).fill(0) } },
        { name: 'state', datatype: 'FP32', shape: [2, 1, 128], contents: { fp32_contents: new Array<number>(256).fill(0) } },
        { name: 'sr', datatype: 'INT64', shape: [], contents: { int64_contents: ['16000'] } },
      ],
    };
    assertSileroSilence(await unary<WireInferResponse>('ModelInfer', request));
  });

  test('ModelStreamInfer answers each request with its id and reports a bad one in error_message', async () => {
    const stream = (client as unknown as { ModelStreamInfer(): grpc.ClientDuplexStream<WireInferRequest, WireStreamResponse> }).ModelStreamInfer();
    const answers = new StreamCollector<WireStreamResponse>(stream);
    stream.write(audioVadRequest('stream-vad', Buffer.from(readFixture('audio', 'speech-en.wav'))));
    stream.write(sileroRequest('stream-frame'));
    stream.write({ ...sileroRequest('stream-bad'), raw_input_contents: [Buffer.alloc(3), Buffer.alloc(256 * 4), Buffer.alloc(8)] });
    stream.end();
    assert.equal((await answers.status).code, grpc.status.OK);
    assert.equal(await answers.ended, 3);
    const byId = new Map(answers.messages.map((m) => [m.infer_response?.id, m]));
    assert.equal(byId.get('stream-vad')?.error_message, '');
    assertSpeechFound(byId.get('stream-vad')!.infer_response!);
    assert.equal(byId.get('stream-frame')?.error_message, '');
    assertSileroSilence(byId.get('stream-frame')!.infer_response!);
    assert.match(byId.get('stream-bad')?.error_message ?? '', /^INVALID_ARGUMENT: .*'input'.*3 bytes/);
    assert.equal(byId.get('stream-bad')?.infer_response?.model_name, 'silero-vad');
  });
});
