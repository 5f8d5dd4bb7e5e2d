/**
 * Each way a request can be wrong gets the right gRPC status and a message
 * naming the problem; limits refuse work instead of queueing it without
 * bound; draining finishes in-flight work and refuses new work.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { status, type Client } from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../shared/gen/grpc/health/v1/health_pb.js';
import { GRPCInferenceService, InferTensorContentsSchema } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { decodeInferOutputs, encodeInferInputs } from '../../shared/tensor-codec.js';
import { sessionWorker } from '../../shared/ort/session.js';
import { bytesTensor, float32, utf8Tensor, type Tensor } from '../../shared/tensor.js';
import type { CloudServer } from '../../cloud/server.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import {
  assertStatus,
  deadlineIn,
  graphRequest,
  grpcFailure,
  healthClient,
  int64ResponseParameter,
  pipelineRequest,
  readFixture,
  silentSileroFrame,
  slowOcrPage,
  StreamCollector,
  utf8Elements,
  watchHealth,
  type InferRequestInit,
} from '../helpers/inference.js';

const rpc = GRPCInferenceService.method;
const html = new TextEncoder().encode('<!doctype html><html><body>404 not found</body></html>');

let slowPage: Uint8Array;

before(async () => {
  slowPage = await slowOcrPage();
});

describe('bad requests', () => {
  // One request computes per model and one waits, so the queue test below can overflow it.
  let server: CloudServer;
  let client: Client;

  before(async () => {
    const cloud = await startTestCloud({ models: ['image-ocr', 'audio-vad'], limits: { maxQueuePerModel: 1, concurrencyPerModel: 1 } });
    server = cloud.server;
    client = inferenceClient(cloud.address);
  });

  after(async () => {
    client?.close();
    await server?.drain(5_000);
  });

  const failureOf = (request: InferRequestInit) => grpcFailure(callUnary(client, rpc.modelInfer, request, deadlineIn(20_000)));
  const sileroWith = (changes: Record<string, Tensor>, omit: string[] = []) => {
    const tensors = { ...silentSileroFrame(), ...changes };
    for (const name of omit) delete tensors[name];
    return graphRequest('silero-vad', tensors);
  };

  test('an unknown model is NOT_FOUND and the message lists the served models', async () => {
    assertStatus(await failureOf(pipelineRequest('image-ocr-v9', readFixture('ocr', 'invoice.png'))), status.NOT_FOUND, /unknown model 'image-ocr-v9'.*image-ocr/);
  });

  test('an unknown version is NOT_FOUND and the message names the served one', async () => {
    const err = await failureOf({ ...graphRequest('silero-vad', silentSileroFrame()), modelVersion: 'int8' });
    assertStatus(err, status.NOT_FOUND, /no version 'int8'.*'fp32'/);
  });

  test('a wrong datatype to a graph is INVALID_ARGUMENT naming the input and the expected type', async () => {
    const err = await failureOf(sileroWith({ input: { type: 'float64', dims: [1, 576], data: new Float64Array(576) } }));
    assertStatus(err, status.INVALID_ARGUMENT, /input 'input' is FP64 .*expected FP32/);
  });

  test('a wrong shape to a graph is INVALID_ARGUMENT naming the expected shape', async () => {
    const err = await failureOf(sileroWith({ state: float32([2, 1, 64], new Float32Array(128)) }));
    assertStatus(err, status.INVALID_ARGUMENT, /input 'state' .*\[2,1,64\].*expected .*\[2,-1,128\]/);
    const rank = await failureOf(sileroWith({ sr: { type: 'int64', dims: [1], data: BigInt64Array.of(16000n) } }));
    assertStatus(rank, status.INVALID_ARGUMENT, /input 'sr' .*\[1\].*expected .*\[\]/);
  });

  test('raw contents whose byte count does not match the shape are INVALID_ARGUMENT', async () => {
    const request = sileroWith({});
    request.rawInputContents[0] = new Uint8Array(100);
    assertStatus(await failureOf(request), status.INVALID_ARGUMENT, /input 'input'.*100 bytes, expected 2304/);
  });

  test('an input with both raw and typed contents is INVALID_ARGUMENT', async () => {
    const request = sileroWith({});
    const [input, ...rest] = request.inputs;
    input!.contents = create(InferTensorContentsSchema, { fp32Contents: new Array<number>(576).fill(0) });
    const both = { ...request, inputs: [input!, ...rest] };
    assertStatus(await failureOf(both), status.INVALID_ARGUMENT, /'input' sets contents while raw_input_contents is used/);
  });

  test('a missing graph input is INVALID_ARGUMENT naming it', async () => {
    assertStatus(await failureOf(sileroWith({}, ['sr'])), status.INVALID_ARGUMENT, /missing input 'sr'/);
  });

  test('an unknown graph input name is INVALID_ARGUMENT listing the expected inputs', async () => {
    const err = await failureOf(sileroWith({ samples: float32([1, 576], new Float32Array(576)) }, ['input']));
    assertStatus(err, status.INVALID_ARGUMENT, /unknown input 'samples'.*expected inputs: input /);
  });

  test('a pipeline input under another name than `input` is INVALID_ARGUMENT', async () => {
    const request = { modelName: 'image-ocr', id: '', ...encodeInferInputs({ image: bytesTensor([readFixture('ocr', 'invoice.png')]) }) };
    assertStatus(await failureOf(request), status.INVALID_ARGUMENT, /'image'.*'input'/);
  });

  test('HTML bytes to image-ocr are INVALID_ARGUMENT: not an image', async () => {
    assertStatus(await failureOf(pipelineRequest('image-ocr', html)), status.INVALID_ARGUMENT, /image input: .*not a JPEG\/PNG\/WebP image/);
  });

  test('a truncated PNG to image-ocr is INVALID_ARGUMENT: does not decode', async () => {
    const png = readFixture('ocr', 'invoice.png');
    assertStatus(await failureOf(pipelineRequest('image-ocr', png.subarray(0, 200))), status.INVALID_ARGUMENT, /look like PNG but do not decode/);
  });

  test('a malformed WAV to audio-vad is INVALID_ARGUMENT naming the broken part', async () => {
    const wav = readFixture('audio', 'speech-en.wav');
    assertStatus(await failureOf(pipelineRequest('audio-vad', wav.subarray(0, 30))), status.INVALID_ARGUMENT, /audio input: WAV .*truncated/);
    const notWave = new TextEncoder().encode('RIFF\x10\x00\x00\x00AVI LIST\x00\x00\x00\x00');
    assertStatus(await failureOf(pipelineRequest('audio-vad', notWave)), status.INVALID_ARGUMENT, /audio input: RIFF file of type 'AVI ' is not WAVE/);
  });

  test('a pipeline given two elements is INVALID_ARGUMENT: one item per request', async () => {
    const two = { modelName: 'image-ocr', id: '', ...encodeInferInputs({ input: bytesTensor([readFixture('ocr', 'invoice.png'), readFixture('ocr', 'small-text.png')]) }) };
    assertStatus(await failureOf(two), status.INVALID_ARGUMENT, /input 'input' must be BYTES with shape \[1\].*\[2\]/);
  });

  test('a pipeline given a non-BYTES input or two inputs is INVALID_ARGUMENT', async () => {
    const typed = { modelName: 'audio-vad', id: '', ...encodeInferInputs({ input: float32([1, 512], new Float32Array(512)) }) };
    assertStatus(await failureOf(typed), status.INVALID_ARGUMENT, /must be BYTES with shape \[1\].*got FP32/);
    const extra = { modelName: 'audio-vad', id: '', ...encodeInferInputs({ input: utf8Tensor('a'), other: utf8Tensor('b') }) };
    assertStatus(await failureOf(extra), status.INVALID_ARGUMENT, /expected exactly one input 'input'.*got 2 inputs/);
  });

  test('an unknown requested output is INVALID_ARGUMENT listing the outputs', async () => {
    const request = { ...pipelineRequest('image-ocr', readFixture('ocr', 'invoice.png')), outputs: [{ name: 'lines' }] };
    assertStatus(await failureOf(request), status.INVALID_ARGUMENT, /no output 'lines'; outputs are: text, scores, boxes, result/);
  });

  test('an unknown datatype is INVALID_ARGUMENT listing the valid ones', async () => {
    const request = pipelineRequest('audio-vad', 'x');
    request.inputs[0]!.datatype = 'STRING';
    assertStatus(await failureOf(request), status.INVALID_ARGUMENT, /unknown datatype 'STRING'.*BYTES/);
  });

  test('a queue over limits.maxQueuePerModel is RESOURCE_EXHAUSTED at once; admitted requests succeed and none hang', async () => {
    const calls = Array.from({ length: 6 }, (_, i) =>
      callUnary(client, rpc.modelInfer, pipelineRequest('image-ocr', slowPage, `burst-${i}`), deadlineIn(30_000)).then(
        (response) => ({ response }),
        (err: unknown) => ({ err: err as Awaited<ReturnType<typeof grpcFailure>> }),
      ),
    );
    const outcomes = await Promise.all(calls);
    const answered = outcomes.flatMap((o) => ('response' in o ? [o.response] : []));
    const refused = outcomes.flatMap((o) => ('err' in o ? [o.err] : []));
    // The burst lands within milliseconds while one page takes about a second: one computes, one waits, four are refused.
    assert.equal(answered.length, 2, `${answered.length} answered, ${refused.length} refused`);
    for (const err of refused) assertStatus(err, status.RESOURCE_EXHAUSTED, /image-ocr: queue is full \(1 waiting\)/);
    for (const response of answered) assert.equal(decodeInferOutputs(response).text?.dims[0], 20);
    const waited = Math.max(...answered.map((r) => int64ResponseParameter(r, 'queue_us')));
    assert.ok(waited > 100_000, `the queued request reports queue_us ${waited}, expected about the first one's compute time`);
  });

  test('after all of that the server still answers a good request', async () => {
    const response = await callUnary(client, rpc.modelInfer, pipelineRequest('image-ocr', readFixture('ocr', 'invoice.png'), 'still-fine'), deadlineIn(20_000));
    assert.equal(response.id, 'still-fine');
    assert.deepEqual(utf8Elements(decodeInferOutputs(response).text), ['Invoice 2024-0042']);
    assert.equal(server.repository.inFlight(), 0);
  });
});

describe('message size limit', () => {
  let server: CloudServer;
  let client: Client;

  before(async () => {
    const cloud = await startTestCloud({ models: ['audio-vad'], limits: { maxMessageBytes: 64 * 1024 } });
    server = cloud.server;
    client = inferenceClient(cloud.address);
  });

  after(async () => {
    client?.close();
    await server?.drain(5_000);
  });

  test('a request over limits.maxMessageBytes is RESOURCE_EXHAUSTED naming the sizes, and the server goes on', async () => {
    const wav = readFixture('audio', 'speech-en.wav').subarray(0, 200_000);
    const err = await grpcFailure(callUnary(client, rpc.modelInfer, pipelineRequest('audio-vad', wav), deadlineIn(10_000)));
    assertStatus(err, status.RESOURCE_EXHAUSTED, /larger than max.*65536/);
    const small = await callUnary(client, rpc.modelInfer, graphRequest('silero-vad', silentSileroFrame(), 'small'), deadlineIn(10_000));
    assert.equal(small.id, 'small');
  });
});

describe('draining', () => {
  test('drain finishes in-flight requests, reports NOT_SERVING, refuses new requests UNAVAILABLE, then resolves', async () => {
    const { server, address } = await startTestCloud({ models: ['image-ocr', 'audio-vad'] });
    const client = inferenceClient(address);
    const health = healthClient(address);
    try {
      const watch = watchHealth(health, '');
      const healthUpdates = new StreamCollector(watch);
      await healthUpdates.waitFor(1, 5_000);

      const slow = Array.from({ length: 3 }, (_, i) => callUnary(client, rpc.modelInfer, pipelineRequest('image-ocr', slowPage, `in-flight-${i}`), deadlineIn(30_000)));
      const deadline = Date.now() + 10_000;
      while (server.repository.inFlight() < slow.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(server.repository.inFlight(), slow.length, 'the slow requests never reached the server');

      const drained = server.drain(10_000);
      const checked = await callUnary(health, Health.method.check, { service: '' }, deadlineIn(5_000));
      assert.equal(ServingStatus[checked.status], 'NOT_SERVING');
      const modelChecked = await callUnary(health, Health.method.check, { service: 'image-ocr' }, deadlineIn(5_000));
      assert.equal(ServingStatus[modelChecked.status], 'NOT_SERVING');

      const late = await grpcFailure(callUnary(client, rpc.modelInfer, pipelineRequest('audio-vad', readFixture('audio', 'speech-en.wav'), 'late'), deadlineIn(5_000)));
      assertStatus(late, status.UNAVAILABLE, /shutting down/);
      assert.equal((await callUnary(client, rpc.serverReady, {}, deadlineIn(5_000))).ready, false);

      const answers = await Promise.all(slow);
      answers.forEach((response, i) => {
        assert.equal(response.id, `in-flight-${i}`);
        assert.equal(decodeInferOutputs(response).text?.dims[0], 20);
      });
      await drained;

      // Watchers saw the flip and were let go, so the shutdown did not wait on them.
      assert.deepEqual(healthUpdates.messages.map((m) => ServingStatus[m.status]), ['SERVING', 'NOT_SERVING']);
      assert.equal(await healthUpdates.ended, 2);
      const closed = await grpcFailure(callUnary(client, rpc.serverLive, {}, deadlineIn(5_000)));
      assert.equal(status[closed.code], 'UNAVAILABLE', closed.details);
    } finally {
      client.close();
      health.close();
      await server.drain(1_000);
    }
  });
});

describe('a model whose runtime worker dies', () => {
  test('reports NOT_SERVING on grpc.health.v1 until the worker is back, then serves again', async () => {
    const { server, address } = await startTestCloud({ models: ['audio-vad'] });
    const client = inferenceClient(address);
    const health = healthClient(address);
    try {
      const watch = watchHealth(health, 'silero-vad');
      const updates = new StreamCollector(watch);
      await updates.waitFor(1, 5_000);
      const served = server.repository.resolve('silero-vad');
      assert.equal(served.kind, 'graph');
      // Ended the way a crash ends it (the thread is gone); it is idle, so no run is cut short inside onnxruntime.
      await sessionWorker(served.kind === 'graph' ? served.session : assert.fail())!.terminate();
      await updates.waitFor(3, 10_000);
      assert.deepEqual(updates.messages.map((m) => ServingStatus[m.status]), ['SERVING', 'NOT_SERVING', 'SERVING']);
      watch.cancel();
      const answer = await callUnary(client, rpc.modelInfer, pipelineRequest('audio-vad', readFixture('audio', 'speech-en.wav'), 'after-restart'), deadlineIn(20_000));
      assert.equal(answer.id, 'after-restart');
    } finally {
      client.close();
      health.close();
      await server.drain(5_000);
    }
  });
});
