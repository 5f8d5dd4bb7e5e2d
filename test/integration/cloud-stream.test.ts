/**
 * ModelStreamInfer (Triton's bidirectional extension): many requests on one
 * stream, each answered once, in completion order; failures in-band.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  GRPCInferenceService,
  type ModelInferRequestSchema,
  type ModelStreamInferResponse,
} from '../../shared/gen/inference/grpc_service_pb.js';
import { openBidiStream } from '../../shared/grpc-service.js';
import { decodeInferOutputs } from '../../shared/tensor-codec.js';
import { float32 } from '../../shared/tensor.js';
import type { CloudServer } from '../../cloud/server.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import {
  expectedOcrLines,
  graphRequest,
  pipelineRequest,
  readFixture,
  resultOf,
  silentSileroFrame,
  slowOcrPage,
  StreamCollector,
  textIntentInCatalog,
  utf8Elements,
  type InferRequestInit,
} from '../helpers/inference.js';

type Stream = ClientDuplexStream<MessageInitShape<typeof ModelInferRequestSchema>, ModelStreamInferResponse>;

let server: CloudServer;
let client: Client;
let slowPage: Uint8Array;

before(async () => {
  const models = ['image-ocr', 'audio-vad', ...(textIntentInCatalog ? ['text-intent'] : [])];
  const cloud = await startTestCloud({ models });
  server = cloud.server;
  client = inferenceClient(cloud.address);
  slowPage = await slowOcrPage();
});

after(async () => {
  client?.close();
  await server?.drain(5_000);
});

function openStream(): { stream: Stream; answers: StreamCollector<ModelStreamInferResponse> } {
  const stream = openBidiStream(client, GRPCInferenceService.method.modelStreamInfer);
  return { stream, answers: new StreamCollector(stream) };
}

/** Answers by request id, asserting each id is answered exactly once. */
function byId(answers: ModelStreamInferResponse[]): Map<string, ModelStreamInferResponse> {
  const map = new Map<string, ModelStreamInferResponse>();
  for (const answer of answers) {
    const id = answer.inferResponse?.id ?? '';
    assert.ok(!map.has(id), `request '${id}' was answered twice`);
    map.set(id, answer);
  }
  return map;
}

const ocrFixtures = ['invoice.png', 'welcome-zh.png', 'shipped-zh.jpg', 'edge-notice.webp'];

/** 12 requests across pipelines and raw graphs, each with a check of its own answer. */
function mixedRequests(): { request: InferRequestInit; check: (answer: ModelStreamInferResponse) => void }[] {
  const requests: { request: InferRequestInit; check: (answer: ModelStreamInferResponse) => void }[] = [];
  for (let i = 0; i < 12; i++) {
    const id = `mixed-${i}`;
    switch (i % 4) {
      case 0: {
        const file = ocrFixtures[(i / 4) % ocrFixtures.length]!;
        requests.push({
          request: pipelineRequest('image-ocr', readFixture('ocr', file), id),
          check: (a) => assert.deepEqual(utf8Elements(decodeInferOutputs(a.inferResponse!).text), expectedOcrLines[file]!.map((l) => l.text), id),
        });
        break;
      }
      case 1:
        requests.push({
          request: pipelineRequest('audio-vad', readFixture('audio', 'speech-en.wav'), id),
          check: (a) => assert.ok((resultOf(a.inferResponse!) as { segments: unknown[] }).segments.length >= 1, id),
        });
        break;
      case 2:
        requests.push({
          request: graphRequest('silero-vad', silentSileroFrame(), id),
          check: (a) => assert.ok((decodeInferOutputs(a.inferResponse!).output!.data as Float32Array)[0]! < 0.5, id),
        });
        break;
      default:
        if (textIntentInCatalog && i === 3) {
          requests.push({
            request: pipelineRequest('text-intent', 'I want my money back for this broken kettle', id),
            check: (a) => assert.ok(a.inferResponse!.outputs.some((o) => o.name === 'result'), id),
          });
        } else {
          requests.push({
            request: graphRequest('ocr-det', { x: float32([1, 3, 64, 64], new Float32Array(3 * 64 * 64)) }, id),
            check: (a) => assert.deepEqual(decodeInferOutputs(a.inferResponse!)['sigmoid_0.tmp_0']?.dims, [1, 1, 64, 64], id),
          });
        }
    }
  }
  return requests;
}

describe('ModelStreamInfer', () => {
  test('serves 12 interleaved requests across pipelines and graphs on one stream, each answered exactly once', async () => {
    const { stream, answers } = openStream();
    const requests = mixedRequests();
    for (const { request } of requests) stream.write(request);
    const received = byId(await answers.waitFor(requests.length, 30_000));
    for (const { request, check } of requests) {
      const answer = received.get(request.id);
      assert.ok(answer, `no answer for '${request.id}'`);
      assert.equal(answer.errorMessage, '', `${request.id}: ${answer.errorMessage}`);
      assert.equal(answer.inferResponse?.modelName, request.modelName);
      check(answer);
    }
    stream.end();
    assert.equal((await answers.status).code, status.OK);
    assert.equal(answers.messages.length, requests.length, 'no answer beyond one per request');
  });

  test('a cheap request sent after a slow one is answered first (completion order, not submission order)', async () => {
    const { stream, answers } = openStream();
    stream.write(pipelineRequest('image-ocr', slowPage, 'slow-page'));
    stream.write(graphRequest('silero-vad', silentSileroFrame(), 'cheap-frame'));
    stream.write(pipelineRequest('audio-vad', readFixture('audio', 'speech-en.wav'), 'cheap-audio'));
    const order = (await answers.waitFor(3, 30_000)).map((a) => a.inferResponse?.id);
    assert.equal(order.at(-1), 'slow-page', `answer order: ${order.join(', ')}`);
    assert.ok(answers.messages.every((a) => a.errorMessage === ''));
    assert.equal(decodeInferOutputs(answers.messages[2]!.inferResponse!).text?.dims[0], 20);
    stream.end();
    assert.equal((await answers.status).code, status.OK);
  });

  test('a bad request in the middle is reported in error_message with its id; the others succeed and the stream stays open', async () => {
    const { stream, answers } = openStream();
    const html = new TextEncoder().encode('<!doctype html><html><body>not an image</body></html>');
    stream.write(graphRequest('silero-vad', silentSileroFrame(), 'good-1'));
    stream.write(pipelineRequest('image-ocr', readFixture('ocr', 'invoice.png'), 'good-2'));
    stream.write(pipelineRequest('image-ocr', html, 'bad-image'));
    stream.write(pipelineRequest('no-such-model', html, 'bad-model'));
    stream.write(pipelineRequest('audio-vad', readFixture('audio', 'speech-en.wav'), 'good-3'));
    const received = byId(await answers.waitFor(5, 30_000));

    const badImage = received.get('bad-image')!;
    assert.match(badImage.errorMessage, /^INVALID_ARGUMENT: image input: .*not a JPEG\/PNG\/WebP/);
    assert.equal(badImage.inferResponse?.modelName, 'image-ocr');
    const badModel = received.get('bad-model')!;
    assert.match(badModel.errorMessage, /^NOT_FOUND: unknown model 'no-such-model'/);
    assert.equal(badModel.inferResponse?.modelName, 'no-such-model');
    for (const id of ['good-1', 'good-2', 'good-3']) {
      assert.equal(received.get(id)?.errorMessage, '', id);
      assert.ok(received.get(id)!.inferResponse!.outputs.length > 0, id);
    }

    // The stream is still open: a later request on it is answered too.
    assert.equal(answers.endedAfter, undefined);
    stream.write(graphRequest('silero-vad', silentSileroFrame(), 'after-errors'));
    const [, , , , , later] = await answers.waitFor(6, 10_000);
    assert.equal(later!.inferResponse?.id, 'after-errors');
    assert.equal(later!.errorMessage, '');
    stream.end();
    assert.equal((await answers.status).code, status.OK);
  });

  test('a client cancelling its stream mid-request leaves the server serving, with nothing left in flight', async () => {
    const { stream, answers } = openStream();
    stream.write(pipelineRequest('image-ocr', slowPage, 'abandoned'));
    const deadline = Date.now() + 10_000;
    while (server.repository.inFlight() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.repository.inFlight(), 1, 'the request never reached the server');
    stream.cancel();
    assert.equal((await answers.status).code, status.CANCELLED);
    while (server.repository.inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.repository.inFlight(), 0, 'the abandoned request is still counted in flight');

    const next = openStream();
    next.stream.write(graphRequest('silero-vad', silentSileroFrame(), 'after-cancel'));
    next.stream.end();
    const [answer] = await next.answers.waitFor(1, 10_000);
    assert.equal(answer!.inferResponse?.id, 'after-cancel');
    assert.equal(answer!.errorMessage, '');
  });

  test('client half-close ends the stream only after every pending request is answered', async () => {
    const { stream, answers } = openStream();
    stream.write(pipelineRequest('image-ocr', slowPage, 'half-close-slow'));
    for (let i = 0; i < 4; i++) stream.write(graphRequest('silero-vad', silentSileroFrame(), `half-close-${i}`));
    stream.end();
    const final = await answers.status;
    assert.equal(final.code, status.OK, final.details);
    assert.equal(await answers.ended, 5, 'the server ended the stream before answering everything');
    const ids = [...byId(answers.messages).keys()].sort();
    assert.deepEqual(ids, ['half-close-0', 'half-close-1', 'half-close-2', 'half-close-3', 'half-close-slow']);
  });
});
