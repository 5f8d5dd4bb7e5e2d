/**
 * The edge's offload client against a foreign KServe v2 server (written here
 * from the public spec, as a Triton would answer): the edge asks only for the
 * `result` output; a failure that comes back as free text is UNKNOWN and
 * never opens the breaker, nor does a busy cloud or a task's own short
 * deadline, while failures that say the cloud is unhealthy do; a stalled
 * link trips the breaker through the stall probe.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { loadEdgeConfig } from '../../edge/config.js';
import { OffloadClient } from '../../edge/offload/offload-client.js';
import { InferError } from '../../shared/errors.js';
import {
  GRPCInferenceService,
  ModelInferResponseSchema,
  ModelStreamInferResponseSchema,
  type ModelInferRequest,
} from '../../shared/gen/inference/grpc_service_pb.js';
import { addService } from '../../shared/grpc-service.js';
import { int64Parameter, ParameterNames } from '../../shared/infer-parameters.js';
import { createLogger } from '../../shared/log.js';
import { encodeInferOutputs } from '../../shared/tensor-codec.js';
import { utf8Tensor } from '../../shared/tensor.js';

const log = createLogger('test-offload', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');

/**
 * A foreign server: `echo` answers with every output, `bad` fails in free
 * text, `busy`, `full` and `late` fail as UNAVAILABLE, RESOURCE_EXHAUSTED and
 * DEADLINE_EXCEEDED by prefix only, any other model never answers.
 */
async function startForeignServer() {
  const asked: string[][] = [];
  const state = { silent: false };
  const server = new grpc.Server();
  addService(server, GRPCInferenceService, {
    // A silent server (a stalled link, seen from the edge) leaves ServerLive unanswered too.
    serverLive: (_call, callback) => state.silent || callback(null, { live: true }),
    serverReady: (_call, callback) => callback(null, { ready: true }),
    modelStreamInfer: (call) => {
      call.on('data', (request: ModelInferRequest) => {
        asked.push(request.outputs.map((o) => o.name));
        const echo = () =>
          create(ModelInferResponseSchema, {
            modelName: request.modelName,
            id: request.id,
            parameters: { [ParameterNames.queueUs]: int64Parameter(1500), [ParameterNames.computeUs]: int64Parameter(2500) },
            ...encodeInferOutputs({ result: utf8Tensor(JSON.stringify({ echoed: request.rawInputContents[0]!.length - 4 })), extra: utf8Tensor('x') }),
          });
        const failure = (errorMessage: string) => create(ModelStreamInferResponseSchema, { errorMessage, inferResponse: { id: request.id, modelName: request.modelName } });
        if (request.modelName === 'echo') call.write(create(ModelStreamInferResponseSchema, { inferResponse: echo() }));
        else if (request.modelName === 'bad') call.write(failure(`[request id: ${request.id}] inference request for unknown model 'bad'`));
        else if (request.modelName === 'busy') call.write(failure('UNAVAILABLE: too many requests'));
        else if (request.modelName === 'full') call.write(failure('RESOURCE_EXHAUSTED: queue is full (64 waiting)'));
        else if (request.modelName === 'late') call.write(failure('DEADLINE_EXCEEDED: waited in the queue until the deadline passed'));
      });
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { server, address: `127.0.0.1:${port}`, asked, state };
}

describe('offload client against a foreign KServe v2 server', () => {
  let foreign: Awaited<ReturnType<typeof startForeignServer>>;

  before(async () => {
    foreign = await startForeignServer();
  });

  after(() => foreign?.server.forceShutdown());

  const connect = (policy: Record<string, unknown> = {}, offload: Record<string, unknown> = {}) =>
    OffloadClient.connect(loadEdgeConfig(undefined, { cloud: foreign.address, policy, offload }), log, { coolDownMs: 60_000 });

  test("asks for the 'result' output only and reads the server's queue and compute time", async (t) => {
    const client = await connect();
    t.after(() => client.close());
    const answer = await client.infer('echo', new Uint8Array(10), { taskId: 'e1', budgetMs: 2_000, image: false });
    assert.deepEqual(answer.result, { echoed: 10 });
    assert.deepEqual([answer.queueMs, answer.computeMs, answer.sentBytes], [1.5, 2.5, 10]);
    assert.deepEqual(foreign.asked.at(-1), ['result']);
  });

  test("a foreign server's free-text failures are UNKNOWN and keep the circuit closed; UNAVAILABLE ones open it", async (t) => {
    const client = await connect();
    t.after(() => client.close());
    for (let i = 0; i < 5; i++) {
      await assert.rejects(client.infer('bad', new Uint8Array(4), { taskId: `b${i}`, budgetMs: 2_000, image: false }), (err: InferError) => {
        assert.equal(err.code, 'UNKNOWN');
        assert.match(err.message, /^cloud: \[request id: b\d#\d+\] inference request for unknown model 'bad'$/);
        return true;
      });
    }
    assert.deepEqual(client.health(), { state: 'closed', consecutiveFailures: 0 });
    for (let i = 0; i < 3; i++) await assert.rejects(client.infer('busy', new Uint8Array(4), { taskId: `u${i}`, budgetMs: 2_000, image: false }), { code: 'UNAVAILABLE' });
    assert.equal(client.health().state, 'open');
    await assert.rejects(client.infer('echo', new Uint8Array(4), { taskId: 'after', budgetMs: 2_000, image: false }), /circuit open: cloud: too many requests/);
  });

  test('a busy cloud (RESOURCE_EXHAUSTED) is not a fault: the circuit stays closed', async (t) => {
    const client = await connect();
    t.after(() => client.close());
    for (let i = 0; i < 5; i++) await assert.rejects(client.infer('full', new Uint8Array(4), { taskId: `f${i}`, budgetMs: 2_000, image: false }), { code: 'RESOURCE_EXHAUSTED' });
    assert.deepEqual(client.health(), { state: 'closed', consecutiveFailures: 0 });
  });

  test("three short deadlines no longer open the breaker for everyone: only a budget the cloud should have met counts", async (t) => {
    const client = await connect({}, { minFaultBudgetMs: 200 });
    t.after(() => client.close());
    // The tasks' own deadlines (under offload.minFaultBudgetMs) run out: silence, and the cloud's own DEADLINE_EXCEEDED.
    for (let i = 0; i < 3; i++) {
      await assert.rejects(client.infer('mute', new Uint8Array(4), { taskId: `s${i}`, budgetMs: 30, image: false }), { code: 'DEADLINE_EXCEEDED' });
      await assert.rejects(client.infer('late', new Uint8Array(4), { taskId: `l${i}`, budgetMs: 30, image: false }), { code: 'DEADLINE_EXCEEDED' });
    }
    assert.deepEqual(client.health(), { state: 'closed', consecutiveFailures: 0 });
    const answer = await client.infer('echo', new Uint8Array(4), { taskId: 'still', budgetMs: 2_000, image: false });
    assert.deepEqual(answer.result, { echoed: 4 });
    // Two high round trips raise the floor on a slow link.
    client.watchForStalls({ rttEstimate: () => ({ high: 150 }), uploadWaitMs: () => 0, recordProbe: () => {} });
    await assert.rejects(client.infer('mute', new Uint8Array(4), { taskId: 'slow-link', budgetMs: 250, image: false }), { code: 'DEADLINE_EXCEEDED' });
    assert.equal(client.health().consecutiveFailures, 0);
    // Budgets the cloud should have met: three timeouts open the circuit.
    for (let i = 0; i < 3; i++) await assert.rejects(client.infer('mute', new Uint8Array(4), { taskId: `m${i}`, budgetMs: 320, image: false }), { code: 'DEADLINE_EXCEEDED' });
    assert.equal(client.health().state, 'open');
  });

  test('a silent server with items in flight trips the breaker through the stall probe, failing them over at once', async (t) => {
    const client = await connect({ stallSilenceMs: 100, stallProbeSlackMs: 100 });
    t.after(() => client.close());
    client.watchForStalls({ rttEstimate: () => ({ high: 5 }), uploadWaitMs: () => 0, recordProbe: () => {} });
    foreign.state.silent = true;
    t.after(() => (foreign.state.silent = false));
    const started = performance.now();
    await assert.rejects(client.infer('mute', new Uint8Array(4), { taskId: 'm1', budgetMs: 10_000, image: false }), (err: InferError) => {
      assert.equal(err.code, 'UNAVAILABLE');
      assert.match(err.message, /stalled \(the link stalled: 1 offload\(s\) unanswered for \d+ ms/);
      return true;
    });
    assert.ok(performance.now() - started < 2_000, 'failed over long before the 10 s budget');
    assert.equal(client.health().state, 'open');
  });
});
