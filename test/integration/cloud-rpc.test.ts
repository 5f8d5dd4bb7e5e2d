/**
 * Every RPC of the cloud tier over real gRPC on loopback: the KServe v2
 * GRPCInferenceService, grpc.health.v1, and the Prometheus endpoint.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { status, type Client } from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../shared/gen/grpc/health/v1/health_pb.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { packageRoot } from '../../shared/paths.js';
import { decodeInferOutputs } from '../../shared/tensor-codec.js';
import type { CloudServer } from '../../cloud/server.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import {
  assertStatus,
  expectedOcrLines,
  graphRequest,
  grpcFailure,
  healthClient,
  int64ResponseParameter,
  metricValue,
  pipelineRequest,
  readFixture,
  resultOf,
  scrapeMetrics,
  silentSileroFrame,
  StreamCollector,
  textIntentOptions,
  utf8Elements,
  watchHealth,
} from '../helpers/inference.js';

const rpc = GRPCInferenceService.method;
const packageVersion = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

let server: CloudServer;
let client: Client;
let health: Client;

before(async () => {
  // Every catalog model: the pipelines and their raw graphs.
  const cloud = await startTestCloud();
  server = cloud.server;
  client = inferenceClient(cloud.address);
  health = healthClient(cloud.address);
});

after(async () => {
  client?.close();
  health?.close();
  await server?.drain(5_000);
});

describe('server and model status', () => {
  test('ServerLive and ServerReady are true', async () => {
    assert.equal((await callUnary(client, rpc.serverLive, {})).live, true);
    assert.equal((await callUnary(client, rpc.serverReady, {})).ready, true);
  });

  test('ModelReady is true for pipelines and raw graphs, with or without their version', async () => {
    for (const name of ['image-ocr', 'audio-vad', 'ocr-det', 'ocr-rec', 'silero-vad']) {
      assert.equal((await callUnary(client, rpc.modelReady, { name })).ready, true, name);
    }
    assert.equal((await callUnary(client, rpc.modelReady, { name: 'audio-vad', version: 'fp32' })).ready, true);
  });

  test('ModelReady of an unknown model is NOT_FOUND and lists the served models', async () => {
    const err = await grpcFailure(callUnary(client, rpc.modelReady, { name: 'no-such-model' }));
    assertStatus(err, status.NOT_FOUND, /no-such-model.*image-ocr/);
  });

  test('ModelReady of an unknown version is NOT_FOUND and names the served version', async () => {
    const err = await grpcFailure(callUnary(client, rpc.modelReady, { name: 'audio-vad', version: '42' }));
    assertStatus(err, status.NOT_FOUND, /'42'.*'fp32'/);
  });

  test('ServerMetadata names the server, its version and protocol extensions', async () => {
    const meta = await callUnary(client, rpc.serverMetadata, {});
    assert.equal(meta.name, 'splitinfer');
    assert.equal(meta.version, packageVersion);
    assert.ok(meta.extensions.includes('model_stream_infer'), `extensions: ${meta.extensions.join(', ')}`);
  });
});

describe('ModelMetadata', () => {
  const plain = (tensors: { name: string; datatype: string; shape: bigint[] }[]) =>
    tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape.map(Number) }));

  test('a pipeline takes one BYTES input [1] and returns its typed outputs plus a BYTES result', async () => {
    const meta = await callUnary(client, rpc.modelMetadata, { name: 'image-ocr' });
    assert.equal(meta.name, 'image-ocr');
    assert.deepEqual(meta.versions, ['fp32']);
    assert.deepEqual(plain(meta.inputs), [{ name: 'input', datatype: 'BYTES', shape: [1] }]);
    assert.deepEqual(plain(meta.outputs), [
      { name: 'text', datatype: 'BYTES', shape: [-1] },
      { name: 'scores', datatype: 'FP32', shape: [-1] },
      { name: 'boxes', datatype: 'FP32', shape: [-1, 4, 2] },
      { name: 'result', datatype: 'BYTES', shape: [1] },
    ]);
    const vad = await callUnary(client, rpc.modelMetadata, { name: 'audio-vad' });
    assert.deepEqual(plain(vad.inputs), [{ name: 'input', datatype: 'BYTES', shape: [1] }]);
    assert.equal(vad.outputs.at(-1)?.name, 'result');
  });

  test('a raw graph reports the ONNX graph’s own inputs and outputs', async () => {
    const det = await callUnary(client, rpc.modelMetadata, { name: 'ocr-det' });
    assert.equal(det.platform, 'onnxruntime_onnx');
    assert.deepEqual(plain(det.inputs), [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }]);
    assert.equal(det.outputs.length, 1);
    assert.equal(det.outputs[0]!.datatype, 'FP32');

    const vad = await callUnary(client, rpc.modelMetadata, { name: 'silero-vad' });
    const inputs = plain(vad.inputs);
    assert.deepEqual(inputs.map((i) => i.name), ['input', 'state', 'sr']);
    assert.deepEqual(inputs[2], { name: 'sr', datatype: 'INT64', shape: [] });
    assert.deepEqual(inputs[1], { name: 'state', datatype: 'FP32', shape: [2, -1, 128] });
    assert.deepEqual(plain(vad.outputs).map((o) => o.name), ['output', 'stateN']);
  });

  test('ModelMetadata of an unknown model is NOT_FOUND', async () => {
    const err = await grpcFailure(callUnary(client, rpc.modelMetadata, { name: 'ocr-detector' }));
    assertStatus(err, status.NOT_FOUND, /ocr-detector/);
  });
});

describe('ModelInfer', () => {
  test('image-ocr reads the text of a fixture image, echoes the id and reports queue and compute time', async () => {
    const response = await callUnary(client, rpc.modelInfer, pipelineRequest('image-ocr', readFixture('ocr', 'total-two-lines.png'), 'ocr-1'));
    assert.equal(response.id, 'ocr-1');
    assert.equal(response.modelName, 'image-ocr');
    assert.equal(response.modelVersion, 'fp32');
    const expected = expectedOcrLines['total-two-lines.png']!.map((l) => l.text);
    const outputs = decodeInferOutputs(response);
    assert.deepEqual(utf8Elements(outputs.text), expected);
    assert.deepEqual(outputs.scores?.dims, [expected.length]);
    assert.deepEqual(outputs.boxes?.dims, [expected.length, 4, 2]);
    const result = resultOf(response) as { lines: { text: string }[] };
    assert.deepEqual(result.lines.map((l) => l.text), expected);
    // queue_us is an honest measurement and may round to 0 when nothing waits; compute_us cannot.
    assert.ok(int64ResponseParameter(response, 'queue_us') >= 0);
    assert.ok(int64ResponseParameter(response, 'compute_us') > 0);
  });

  test('audio-vad finds speech segments in the speech recording', async () => {
    const response = await callUnary(client, rpc.modelInfer, pipelineRequest('audio-vad', readFixture('audio', 'speech-en.wav'), 'vad-1'));
    assert.equal(response.id, 'vad-1');
    const outputs = decodeInferOutputs(response);
    const segments = outputs.segments!;
    assert.equal(segments.type, 'float32');
    assert.equal(segments.dims[1], 2);
    assert.ok(segments.dims[0]! >= 1, `segments ${JSON.stringify(segments.dims)}`);
    const result = resultOf(response) as { segments: { startMs: number; endMs: number }[] };
    assert.equal(result.segments.length, segments.dims[0]);
    for (const s of result.segments) assert.ok(s.endMs > s.startMs);
    assert.ok(int64ResponseParameter(response, 'queue_us') >= 0);
    assert.ok(int64ResponseParameter(response, 'compute_us') > 0);
  });

  test('text-intent classifies a support-chat sentence', textIntentOptions, async () => {
    const response = await callUnary(client, rpc.modelInfer, pipelineRequest('text-intent', 'Could you let me know if my order has been dispatched?', 'intent-1'));
    assert.equal(response.id, 'intent-1');
    assert.ok(response.outputs.some((o) => o.name === 'result'));
    assert.match(JSON.stringify(resultOf(response)), /"order_status"/);
    assert.ok(int64ResponseParameter(response, 'queue_us') >= 0);
    assert.ok(int64ResponseParameter(response, 'compute_us') > 0);
  });

  test('a raw graph runs on plain tensors: Silero VAD hears no speech in silence', async () => {
    const response = await callUnary(client, rpc.modelInfer, graphRequest('silero-vad', silentSileroFrame(), 'frame-1'));
    assert.equal(response.id, 'frame-1');
    assert.equal(response.modelName, 'silero-vad');
    const outputs = decodeInferOutputs(response);
    assert.deepEqual(outputs.output?.dims, [1, 1]);
    const probability = (outputs.output!.data as Float32Array)[0]!;
    assert.ok(probability >= 0 && probability < 0.5, `speech probability of silence: ${probability}`);
    assert.deepEqual(outputs.stateN?.dims, [2, 1, 128]);
    assert.ok(int64ResponseParameter(response, 'compute_us') > 0);
  });

  test('requested outputs are the only ones returned, in the order asked', async () => {
    const ocr = await callUnary(client, rpc.modelInfer, {
      ...pipelineRequest('image-ocr', readFixture('ocr', 'invoice.png')),
      outputs: [{ name: 'text' }],
    });
    assert.deepEqual(ocr.outputs.map((o) => o.name), ['text']);
    assert.equal(ocr.rawOutputContents.length, 1);
    assert.deepEqual(utf8Elements(decodeInferOutputs(ocr).text), ['Invoice 2024-0042']);

    const vad = await callUnary(client, rpc.modelInfer, {
      ...pipelineRequest('audio-vad', readFixture('audio', 'speech-en.wav')),
      outputs: [{ name: 'result' }, { name: 'segments' }],
    });
    assert.deepEqual(vad.outputs.map((o) => o.name), ['result', 'segments']);

    const frame = await callUnary(client, rpc.modelInfer, { ...graphRequest('silero-vad', silentSileroFrame()), outputs: [{ name: 'stateN' }] });
    assert.deepEqual(frame.outputs.map((o) => o.name), ['stateN']);
  });
});

describe('grpc.health.v1', () => {
  test('Check reports SERVING for the server and for each served model', async () => {
    for (const service of ['', 'image-ocr', 'audio-vad', 'silero-vad']) {
      const response = await callUnary(health, Health.method.check, { service });
      assert.equal(ServingStatus[response.status], 'SERVING', `service '${service}'`);
    }
  });

  test('Check of an unknown service is NOT_FOUND', async () => {
    const err = await grpcFailure(callUnary(health, Health.method.check, { service: 'no-such-model' }));
    assertStatus(err, status.NOT_FOUND, /no-such-model/);
  });

  test('Watch sends SERVING at once; an unknown service is SERVICE_UNKNOWN', async () => {
    for (const [service, expected] of [
      ['', 'SERVING'],
      ['audio-vad', 'SERVING'],
      ['no-such-model', 'SERVICE_UNKNOWN'],
    ] as const) {
      const watch = watchHealth(health, service);
      const updates = new StreamCollector(watch);
      const [first] = await updates.waitFor(1, 5_000);
      assert.equal(ServingStatus[first!.status], expected, `service '${service}'`);
      watch.cancel();
      assert.equal((await updates.status).code, status.CANCELLED);
    }
  });
});

describe('Prometheus endpoint', () => {
  test('counts successful requests per model', async () => {
    const series = { model: 'audio-vad', version: 'fp32' };
    const before = metricValue(await scrapeMetrics(server.metricsPort), 'nv_inference_request_success', series);
    await callUnary(client, rpc.modelInfer, pipelineRequest('audio-vad', readFixture('audio', 'speech-en.wav')));
    const exposition = await scrapeMetrics(server.metricsPort);
    assert.match(exposition, /^nv_inference_request_success\{[^}]*model="audio-vad"[^}]*\} \d+/m);
    assert.equal(metricValue(exposition, 'nv_inference_request_success', series), before + 1);
    assert.ok(metricValue(exposition, 'nv_inference_compute_infer_duration_us', series) > 0);
  });

  test('counts failed requests per model and reason', async () => {
    const series = { model: 'audio-vad', reason: 'INVALID_ARGUMENT' };
    const before = metricValue(await scrapeMetrics(server.metricsPort), 'nv_inference_request_failure', series);
    await grpcFailure(callUnary(client, rpc.modelInfer, pipelineRequest('audio-vad', new TextEncoder().encode('RIFF....WAVEnot really'))));
    const exposition = await scrapeMetrics(server.metricsPort);
    assert.match(exposition, /^nv_inference_request_failure\{[^}]*model="audio-vad"[^}]*\} \d+/m);
    assert.equal(metricValue(exposition, 'nv_inference_request_failure', series), before + 1);
  });

  test('a failure of a known model is labelled with the served version, like its successes', async () => {
    await grpcFailure(callUnary(client, rpc.modelInfer, pipelineRequest('audio-vad', new TextEncoder().encode('RIFF....WAVEnot really'))));
    const exposition = await scrapeMetrics(server.metricsPort);
    assert.ok(metricValue(exposition, 'nv_inference_request_failure', { model: 'audio-vad', version: 'fp32', reason: 'INVALID_ARGUMENT' }) >= 1);
  });

  test('requests for unknown model names do not create a metrics series per name', async () => {
    const names = Array.from({ length: 3 }, (_, i) => `made-up-model-${process.pid}-${i}`);
    for (const name of names) await grpcFailure(callUnary(client, rpc.modelInfer, pipelineRequest(name, 'hello')));
    const exposition = await scrapeMetrics(server.metricsPort);
    for (const name of names) assert.ok(!exposition.includes(`model="${name}"`), `a series is labelled model="${name}"`);
  });

  test('answers 404 off the /metrics path', async () => {
    const res = await fetch(`http://127.0.0.1:${server.metricsPort}/`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  });
});
