/**
 * Content-addressed offload from the edge's offload client to a real cloud
 * tier: a repeat is answered by its digest without uploading the input; a
 * new input is asked for by digest only when the link makes the upload cost
 * more than the extra round trip, and a miss then uploads it; a cloud that
 * caches nothing is never asked, nor is a server that refused the form once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import type { CloudServer } from '../../cloud/server.js';
import { loadEdgeConfig } from '../../edge/config.js';
import { OffloadClient } from '../../edge/offload/offload-client.js';
import { GRPCInferenceService, ModelInferResponseSchema, ModelStreamInferResponseSchema, type ModelInferRequest } from '../../shared/gen/inference/grpc_service_pb.js';
import { addService } from '../../shared/grpc-service.js';
import { boolParameter, ParameterNames } from '../../shared/infer-parameters.js';
import { createLogger } from '../../shared/log.js';
import { encodeInferOutputs } from '../../shared/tensor-codec.js';
import { utf8Tensor } from '../../shared/tensor.js';
import { startTestCloud } from '../helpers/cloud.js';
import { textIntentOptions } from '../helpers/inference.js';

const log = createLogger('test-content', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const text = (s: string) => new TextEncoder().encode(`${s} ${'Please check where my order is. '.repeat(40)}`);
const call = (taskId: string) => ({ taskId, budgetMs: 10_000, image: false });
/** A link whose upload of any payload takes `uploadMs` against a `rttMs` round trip. */
const link = (rttMs: number, uploadMs: number) => ({ rttEstimate: () => ({ high: rttMs }), uploadEstimate: () => ({ meanMs: uploadMs }), uploadWaitMs: () => 0, recordProbe: () => {} });

describe('content-addressed offload', textIntentOptions, () => {
  const clouds: { server: CloudServer; address: string }[] = [];
  let caching: string;
  let uncached: string;

  before(async () => {
    for (const cache of [{ bytes: 1 << 20 }, { bytes: 0 }]) clouds.push(await startTestCloud({ models: ['text-intent'], cache }));
    [caching, uncached] = clouds.map((c) => c.address) as [string, string];
  });

  after(async () => {
    for (const cloud of clouds) await cloud.server.drain(2_000);
  });

  const connect = async (address: string, contentAddressing = true) => {
    const client = await OffloadClient.connect(loadEdgeConfig(undefined, { cloud: address, offload: { contentAddressing } }), log);
    client.watchForStalls(link(5, 1));
    return client;
  };

  test('a repeat is answered by its digest, without uploading the input', async (t) => {
    const client = await connect(caching);
    t.after(() => client.close());
    const first = await client.infer('text-intent', text('repeat'), call('a'));
    const again = await client.infer('text-intent', text('repeat'), call('b'));
    assert.deepEqual(again.result, first.result);
    assert.deepEqual([client.stats().askedByDigest, client.stats().foundByDigest], [1, 1]);
    assert.ok(first.sentBytes > 1_000 && again.sentBytes < 300, `the repeat sent a digest, not the input (${first.sentBytes} then ${again.sentBytes} bytes)`);
  });

  test('a new input is asked for by digest only when its upload costs more than the round trip; a miss then uploads it', async (t) => {
    const client = await connect(caching);
    t.after(() => client.close());
    await client.infer('text-intent', text('teaches the client that this model is cached'), call('c'));
    client.watchForStalls(link(5, 1));
    await client.infer('text-intent', text('cheap to upload'), call('d'));
    assert.equal(client.stats().askedByDigest, 0, 'a 1 ms upload against a 5 ms round trip: sent in full at once');
    // watchForStalls keeps its first link's probe; the decision reads the latest link.
    client.watchForStalls(link(5, 200));
    const answer = await client.infer('text-intent', text('dear to upload'), call('e'));
    assert.deepEqual([client.stats().askedByDigest, client.stats().foundByDigest], [1, 0]);
    assert.ok(answer.sentBytes > 1_000, 'the miss uploaded it');
    assert.equal(typeof answer.result.intent, 'string');
  });

  test('a cloud that caches nothing, or an edge with the switch off, never asks by digest', async (t) => {
    for (const [address, enabled] of [[uncached, true], [caching, false]] as const) {
      const client = await connect(address, enabled);
      t.after(() => client.close());
      client.watchForStalls(link(5, 1_000));
      for (const id of ['f', 'g', 'h']) await client.infer('text-intent', text('the same'), call(id));
      assert.equal(client.stats().askedByDigest, 0);
    }
  });

  test('a server that refuses the digest-only form gets every input in full from then on', async (t) => {
    // A foreign server that caches (says cache_hit) but knows no content_sha256: no contents is a free-text failure.
    let requests = 0;
    const server = new grpc.Server();
    addService(server, GRPCInferenceService, {
      serverReady: (_call, callback) => callback(null, { ready: true }),
      modelStreamInfer: (stream) => {
        stream.on('data', (request: ModelInferRequest) => {
          requests++;
          const inferResponse = create(ModelInferResponseSchema, { id: request.id, parameters: { [ParameterNames.cacheHit]: boolParameter(false) }, ...encodeInferOutputs({ result: utf8Tensor('{}') }) });
          const failure = { errorMessage: `unexpected explicit tensor data for input tensor 'input'`, inferResponse: { id: request.id } };
          stream.write(create(ModelStreamInferResponseSchema, request.rawInputContents.length > 0 ? { inferResponse } : failure));
        });
        stream.on('end', () => stream.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    t.after(() => server.forceShutdown());
    const client = await connect(`127.0.0.1:${port}`);
    t.after(() => client.close());
    for (const id of ['i', 'j', 'k', 'l']) assert.deepEqual((await client.infer('m', text('same'), call(id))).result, {});
    assert.equal(client.stats().askedByDigest, 1, 'asked once, refused, never again');
    assert.equal(requests, 5);
    assert.equal(client.health().state, 'closed', 'a refusal is not a cloud fault');
  });
});
