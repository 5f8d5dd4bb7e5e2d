/**
 * What one ModelStreamInfer stream may hold on the cloud tier: at most
 * `limits.maxInFlightPerStream` requests waiting or running (one more is
 * answered in-stream with RESOURCE_EXHAUSTED naming the limit), and when the
 * client cancels the stream, its requests still waiting for their model are
 * dropped, not run. A real server with one OCR run at a time (each about a
 * second on one CPU thread).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@grpc/grpc-js';
import type { CloudServer } from '../../cloud/server.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { openBidiStream } from '../../shared/grpc-service.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { pipelineRequest, slowOcrPage, StreamCollector } from '../helpers/inference.js';

let server: CloudServer;
let client: Client;
let slowPage: Uint8Array;

before(async () => {
  const cloud = await startTestCloud({ models: ['image-ocr'], limits: { concurrencyPerModel: 1, maxInFlightPerStream: 3 } });
  server = cloud.server;
  client = inferenceClient(cloud.address);
  slowPage = await slowOcrPage();
});

after(async () => {
  client?.close();
  await server?.drain(5_000);
});

async function counted(metric: 'requestSuccess' | 'requestFailure', reason?: string): Promise<number> {
  const { values } = await server.metrics[metric].get();
  return values.filter((v) => v.labels.model === 'image-ocr' && (reason === undefined || (v.labels as Record<string, unknown>).reason === reason)).reduce((sum, v) => sum + v.value, 0);
}

describe('ModelStreamInfer limits', () => {
  test('a request over limits.maxInFlightPerStream is answered RESOURCE_EXHAUSTED in-stream, naming the limit; the others run', async () => {
    const stream = openBidiStream(client, GRPCInferenceService.method.modelStreamInfer);
    const answers = new StreamCollector(stream);
    for (let i = 0; i < 5; i++) stream.write(pipelineRequest('image-ocr', slowPage, `limit-${i}`));
    stream.end();
    const received = await answers.waitFor(5, 60_000);
    const refused = received.filter((a) => a.errorMessage !== '');
    assert.deepEqual(refused.map((a) => a.inferResponse?.id).sort(), ['limit-3', 'limit-4']);
    for (const answer of refused) assert.match(answer.errorMessage, /^RESOURCE_EXHAUSTED: this stream already has 3 requests waiting or running, the limit \(cloud limits\.maxInFlightPerStream\)/);
    assert.equal(received.filter((a) => a.errorMessage === '').length, 3);
  });

  test("a cancelled stream's queued requests are dropped, not run", async () => {
    const ranBefore = await counted('requestSuccess');
    const stream = openBidiStream(client, GRPCInferenceService.method.modelStreamInfer);
    const answers = new StreamCollector(stream);
    stream.on('error', () => undefined);
    for (let i = 0; i < 3; i++) stream.write(pipelineRequest('image-ocr', slowPage, `cancel-${i}`));
    // The first is running (one run at a time), the other two wait for the model.
    const waitingUntil = performance.now() + 10_000;
    while (server.repository.resolve('image-ocr').queue.inFlight < 3 && performance.now() < waitingUntil) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.repository.resolve('image-ocr').queue.inFlight, 3, 'three requests reached the model queue');
    stream.cancel();
    const cancelledUntil = performance.now() + 10_000;
    while ((await counted('requestFailure', 'CANCELLED')) < 2 && performance.now() < cancelledUntil) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await counted('requestFailure', 'CANCELLED'), 2, 'the two waiting requests left the queue as CANCELLED');
    // The running one finishes; nothing else runs after it.
    const idleUntil = performance.now() + 30_000;
    while (server.repository.resolve('image-ocr').queue.inFlight > 0 && performance.now() < idleUntil) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok((await counted('requestSuccess')) - ranBefore <= 1, `${(await counted('requestSuccess')) - ranBefore} requests of the cancelled stream ran; at most the one already running may`);
    assert.equal(answers.messages.length, 0, 'nothing is answered on a cancelled stream');
  });
});
