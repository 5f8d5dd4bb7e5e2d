/**
 * The video-encoder sequence model served by the cloud tier over real gRPC:
 * chunks of encoded frames on one ModelStreamInfer stream with Triton's
 * sequence parameters, state kept per tenant and sequence between chunks and
 * freed at the end or on idle; clear errors for what a client must fix; and
 * the unary one-off chunk a generic KServe client can send.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { status, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { CloudServer } from '../../cloud/server.js';
import { GRPCInferenceService, type ModelInferRequestSchema, type ModelStreamInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary, openBidiStream } from '../../shared/grpc-service.js';
import { int64Parameter, ParameterNames, stringParameter } from '../../shared/infer-parameters.js';
import { readStreamFailure } from '../../shared/pipeline-wire.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { encodeInferInputs } from '../../shared/tensor-codec.js';
import { bytesTensor } from '../../shared/tensor.js';
import { chunkRequest, readChunkAnswer, type ChunkAnswerReply, type SequenceFlags } from '../../shared/video/chunk-wire.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';
import { sceneFrames } from '../../models/video-encoder/scene-frames.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { metricValue, scrapeMetrics, StreamCollector } from '../helpers/inference.js';

type Stream = ClientDuplexStream<MessageInitShape<typeof ModelInferRequestSchema>, ModelStreamInferResponse>;

const idleTimeoutMs = 1_500;
let server: CloudServer;
let client: Client;
/** Two scenes of four frames each: a cut between sceneA[3] and sceneB[0]. */
let sceneA: Uint8Array[];
let sceneB: Uint8Array[];

before(async () => {
  const cloud = await startTestCloud({ models: ['video-encoder'], sequences: { idleTimeoutMs } });
  server = cloud.server;
  client = inferenceClient(cloud.address);
  const [a, b] = await photoLikeImages(2, 7);
  const random = seededRandom(3);
  sceneA = await sceneFrames(a!.bytes, 4, random);
  sceneB = await sceneFrames(b!.bytes, 4, random);
});

after(async () => {
  client?.close();
  await server?.drain(5_000);
});

/** A stream whose answers are read as chunk answers or failures, by request id. */
function openStream() {
  const stream: Stream = openBidiStream(client, GRPCInferenceService.method.modelStreamInfer);
  const answers = new StreamCollector(stream);
  let sent = 0;
  const read = (message: ModelStreamInferResponse): ChunkAnswerReply | Error =>
    message.errorMessage ? readStreamFailure(message) : readChunkAnswer(message.inferResponse!);
  return {
    stream,
    /** Sends a chunk and resolves with its answer (or failure) once it is in. */
    send(frames: Uint8Array[], seq: SequenceFlags | undefined, options: { id: string; tenant?: string; timesMs?: number[]; weights?: number[] }) {
      stream.write(chunkRequest('video-encoder', frames, options.timesMs ?? [], seq, { id: options.id, tenant: options.tenant, resultOnly: true, weights: options.weights }));
      sent++;
      return answers.waitFor(sent, 60_000).then(() => {
        const message = answers.messages.find((m) => m.inferResponse?.id === options.id);
        assert.ok(message, `no answer for ${options.id}`);
        return read(message);
      });
    },
    async close() {
      stream.end();
      assert.equal((await answers.status).code, status.OK);
    },
  };
}

function ok(reply: ChunkAnswerReply | Error): ChunkAnswerReply['answer'] {
  if (reply instanceof Error) assert.fail(reply.message);
  return reply.answer;
}

function failure(reply: ChunkAnswerReply | Error): Error & { code?: string } {
  assert.ok(reply instanceof Error, 'expected a failure');
  return reply;
}

describe('video-encoder sequences over ModelStreamInfer', () => {
  test('a 3-chunk sequence keeps state between chunks, carries the cut across chunks, answers the summary at the end and frees it', async () => {
    const s = openStream();
    const first = ok(await s.send(sceneA.slice(0, 2), { id: 'clip-1', start: true, end: false }, { id: 'c0' }));
    assert.deepEqual([first.chunk, first.startMs, first.endMs, first.frames, first.model], [0, 0, 250, 2, 'inception-v3']);
    assert.equal(server.sequences.size, 1, 'state created');
    const second = ok(await s.send(sceneA.slice(2, 4), { id: 'clip-1', start: false, end: false }, { id: 'c1' }));
    assert.deepEqual([second.chunk, second.startMs, second.endMs], [1, 500, 750], 'default spacing continues from the last frame');
    assert.deepEqual(second.boundaries, []);
    const last = ok(await s.send(sceneB.slice(0, 3), { id: 'clip-1', start: false, end: true }, { id: 'c2' }));
    assert.deepEqual([last.chunk, last.startMs, last.endMs], [2, 1000, 1500]);
    assert.deepEqual(last.boundaries, [1000], "the first frame is compared with the previous chunk's last");
    const summary = last.summary!;
    assert.deepEqual([summary.chunks, summary.frames, summary.startMs, summary.endMs], [3, 7, 0, 1500]);
    assert.deepEqual(summary.boundaries, [1000]);
    assert.deepEqual(summary.embeddings.map((e) => [e.model, e.frames, e.embedding.length]), [['inception-v3', 7, 2048]]);
    assert.ok(summary.segments.length >= 1 && summary.segments[0]!.startMs === 0 && summary.segments.at(-1)!.endMs === 1500);
    assert.equal(server.sequences.size, 0, 'state freed at sequence_end');
    assert.equal(first.summary, undefined);
    await s.close();
  });

  test('an idle sequence is freed after the timeout and a later chunk without start hears that it expired', async () => {
    const s = openStream();
    ok(await s.send(sceneA.slice(0, 1), { id: 'idle', start: true, end: false }, { id: 'i0' }));
    assert.equal(server.sequences.size, 1);
    await sleep(idleTimeoutMs + 500);
    assert.equal(server.sequences.size, 0, 'freed on idle');
    const late = failure(await s.send(sceneA.slice(1, 2), { id: 'idle', start: false, end: false }, { id: 'i1' }));
    assert.equal(late.code, 'INVALID_ARGUMENT');
    assert.match(late.message, /sequence 'idle' expired after 1500 ms without a chunk .* must specify the sequence_start flag/);
    const metrics = await scrapeMetrics(server.metricsPort);
    assert.equal(metricValue(metrics, 'splitinfer_sequences_expired_total', { model: 'video-encoder' }), 1);
    assert.equal(metricValue(metrics, 'splitinfer_sequences_live', { model: 'video-encoder' }), 0);
    await s.close();
  });

  test('a chunk for a sequence never started is INVALID_ARGUMENT naming the start flag', async () => {
    const s = openStream();
    const reply = failure(await s.send(sceneA.slice(0, 1), { id: 'never', start: false, end: false }, { id: 'n0' }));
    assert.equal(reply.code, 'INVALID_ARGUMENT');
    assert.match(reply.message, /sequence 'never' is not open; must specify the sequence_start flag on the first request of the sequence/);
    await s.close();
  });

  test('two tenants using the same sequence_id do not see each other’s state', async () => {
    const s = openStream();
    ok(await s.send(sceneA.slice(0, 1), { id: 'shared', start: true, end: false }, { id: 't-a0', tenant: 'a' }));
    ok(await s.send(sceneA.slice(1, 2), { id: 'shared', start: false, end: false }, { id: 't-a1', tenant: 'a' }));
    assert.match(failure(await s.send(sceneA.slice(0, 1), { id: 'shared', start: false, end: false }, { id: 't-b0', tenant: 'b' })).message, /not open/);
    const b = ok(await s.send(sceneB.slice(0, 1), { id: 'shared', start: true, end: true }, { id: 't-b1', tenant: 'b' }));
    assert.deepEqual([b.chunk, b.summary?.chunks], [0, 1]);
    const a = ok(await s.send(sceneA.slice(2, 3), { id: 'shared', start: false, end: true }, { id: 't-a2', tenant: 'a' }));
    assert.deepEqual([a.chunk, a.summary?.chunks, a.summary?.frames], [2, 3, 3]);
    await s.close();
  });

  test('chunks of one sequence sent without waiting are applied in the order sent', async () => {
    const s = openStream();
    const sizes = [3, 1, 2, 1];
    const replies = sizes.map((n, i) =>
      s.send(sceneA.slice(0, n), { id: 'burst', start: i === 0, end: i === sizes.length - 1 }, { id: `b${i}`, timesMs: Array.from({ length: n }, (_, k) => i * 1000 + k * 100) }),
    );
    const answers = (await Promise.all(replies)).map(ok);
    assert.deepEqual(answers.map((a) => [a.chunk, a.startMs]), [[0, 0], [1, 1000], [2, 2000], [3, 3000]]);
    assert.deepEqual([answers[3]!.summary?.chunks, answers[3]!.summary?.frames], [4, 7]);
    assert.equal(server.sequences.size, 0);
    await s.close();
  });

  test('bad chunks are INVALID_ARGUMENT saying what to fix, a failed chunk leaves its sequence as it was, and the server keeps serving', async () => {
    const s = openStream();
    ok(await s.send(sceneA.slice(0, 1), { id: 'bad', start: true, end: false }, { id: 'x0' }));
    const corrupt = [sceneA[1]!, sceneA[2]!.subarray(0, 300)];
    const cases: [string, Uint8Array[], number[], RegExp, number[]?][] = [
      ['no-frames', [], [], /BYTES \[N\] with 1 ≤ N ≤ 64/],
      ['too-many', Array.from({ length: 65 }, () => sceneA[0]!), [], /BYTES \[65\].*1 ≤ N ≤ 64.*split longer runs/],
      ['corrupt', corrupt, [], /video frame 1: 300 bytes starting ff d8 ff .* do not decode/],
      ['times', sceneA.slice(0, 2), [0, 250, 500], /'times_ms' is FP64 \[3\]; it must be FP64 \[2\]/],
      ['weights', sceneA.slice(0, 2), [], /'frame_weights' is FP64 \[1\]; it must be FP64 \[2\]/, [3]],
      ['weight', sceneA.slice(0, 2), [], /'frame_weights'\[1\] = 0: a frame's weight is the number of sampled frames it stands for/, [3, 0]],
    ];
    for (const [id, frames, timesMs, message, weights] of cases) {
      const reply = failure(await s.send(frames, { id: 'bad', start: false, end: false }, { id, timesMs, weights }));
      assert.equal(reply.code, 'INVALID_ARGUMENT', id);
      assert.match(reply.message, message, id);
    }
    const next = ok(await s.send(sceneA.slice(1, 2), { id: 'bad', start: false, end: true }, { id: 'x1' }));
    assert.equal(next.chunk, 1, 'the failed chunks did not count');
    await s.close();
  });
});

describe('video-encoder for a generic KServe client', () => {
  test('a one-off chunk (no sequence_id) on ModelInfer answers the chunk and its typed outputs, keeping no state', async () => {
    const request = {
      modelName: 'video-encoder',
      id: 'one-off',
      parameters: { [ParameterNames.frameIntervalMs]: int64Parameter(500), [ParameterNames.tenant]: stringParameter('generic') },
      ...encodeInferInputs({ input: bytesTensor(sceneA.slice(0, 3)) }),
    };
    const { answer, tensors } = readChunkAnswer(await callUnary(client, GRPCInferenceService.method.modelInfer, request));
    assert.deepEqual([answer.chunk, answer.startMs, answer.endMs, answer.frames, answer.summary], [0, 0, 1000, 3, undefined]);
    assert.deepEqual(tensors.embedding?.dims, [3, 2048]);
    assert.deepEqual(tensors.probabilities?.dims, [3, 5]);
    assert.equal(server.sequences.size, 0);
  });

  test('ModelMetadata lists the chunk inputs and the outputs, served at fp32', async () => {
    const meta = await callUnary(client, GRPCInferenceService.method.modelMetadata, { name: 'video-encoder' });
    assert.deepEqual(meta.versions, ['fp32']);
    assert.deepEqual(meta.inputs.map((i) => [i.name, i.datatype, i.shape.map(Number)]), [['input', 'BYTES', [-1]], ['times_ms', 'FP64', [-1]], ['frame_weights', 'FP64', [-1]]]);
    assert.deepEqual(meta.outputs.map((o) => [o.name, o.datatype, o.shape.map(Number)]), [['embedding', 'FP32', [-1, -1]], ['probabilities', 'FP32', [-1, 5]], ['result', 'BYTES', [1]]]);
  });
});
