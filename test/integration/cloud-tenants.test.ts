/**
 * Tenants against a real cloud tier over gRPC, each caller its own client
 * (own channel, own API key): a tenant over its rate or queue share is
 * refused with RESOURCE_EXHAUSTED and a `retry-after-ms` trailer the client
 * can act on; a flooding tenant's backlog does not hold back another
 * tenant's requests; Triton's `timeout` parameter bounds a queued wait; the
 * metrics count by tenant.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { retryAfterHeader } from '../../cloud/inference-service.js';
import type { CloudServer } from '../../cloud/server.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { int64Parameter, ParameterNames } from '../../shared/infer-parameters.js';
import { sha256Hex } from '../../shared/secrets.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { assertStatus, deadlineIn, graphRequest, grpcFailure, metricValue, pipelineRequest, scrapeMetrics, silentSileroFrame, slowOcrPage, type InferRequestInit } from '../helpers/inference.js';

const rpc = GRPCInferenceService.method;
const keys = { flood: 'flood-key-0123456789', calm: 'calm-key-0123456789' };

describe('tenants: quotas and fair queues', () => {
  let server: CloudServer;
  let address: string;
  let slowPage: Uint8Array;
  const clients: grpc.Client[] = [];

  before(async () => {
    slowPage = await slowOcrPage();
    const cloud = await startTestCloud({
      models: ['image-ocr', 'audio-vad'],
      // One OCR page computes at a time, so the others wait in the model's fair queue.
      limits: { concurrencyPerModel: 1, maxQueuePerModel: 16 },
      auth: {
        apiKeys: [
          { tenant: 'flood', sha256: sha256Hex(keys.flood) },
          { tenant: 'calm', sha256: sha256Hex(keys.calm) },
        ],
        tenants: { flood: { maxQueued: 3 }, calm: {}, anonymous: { requestsPerSecond: 4, burst: 2 } },
        defaultTenant: 'anonymous',
      },
    });
    server = cloud.server;
    address = cloud.address;
  });

  after(async () => {
    for (const c of clients) c.close();
    await server?.drain(5_000);
  });

  /** Polls `condition` every 10 ms, for at most 20 s. */
  async function until(condition: () => boolean) {
    for (const started = Date.now(); !condition(); await sleep(10)) assert.ok(Date.now() - started < 20_000, 'timed out waiting for the server');
  }

  /** A client with its own channel, sending `key` on every call (none: anonymous). */
  function tenantClient(key?: string) {
    const client = inferenceClient(address, { 'grpc.use_local_subchannel_pool': 1 });
    clients.push(client);
    const metadata = () => {
      const m = new grpc.Metadata();
      if (key) m.set('authorization', `Bearer ${key}`);
      return m;
    };
    return (request: InferRequestInit) => callUnary(client, rpc.modelInfer, request, { metadata: metadata(), ...deadlineIn(120_000) });
  }

  test('an anonymous caller over the default tenant rate gets RESOURCE_EXHAUSTED with a retry-after-ms trailer, and a retry after it succeeds', async () => {
    const anonymous = tenantClient();
    const calm = tenantClient(keys.calm);
    const vad = graphRequest('silero-vad', silentSileroFrame());
    await anonymous(vad);
    await anonymous(vad);
    const refused = await grpcFailure(anonymous(vad));
    assertStatus(refused, grpc.status.RESOURCE_EXHAUSTED, /^tenant anonymous is over its request rate \(4\/s, burst 2\); retry after \d+ ms, or raise auth\.tenants\.anonymous\.requestsPerSecond$/);
    const retryAfterMs = Number(refused.metadata.get(retryAfterHeader)[0]);
    assert.ok(retryAfterMs > 0 && retryAfterMs <= 250, `retry-after-ms ${retryAfterMs}: one token at 4/s is at most 250 ms away`);
    assert.match(refused.details, new RegExp(`retry after ${retryAfterMs} ms`), 'the message says the same wait');
    await calm(vad);
    await sleep(retryAfterMs);
    await anonymous(vad);
  });

  test("a flooding tenant beyond its queue share is refused with a retry hint, and the other tenant's requests are served between the flood's", async () => {
    const flood = tenantClient(keys.flood);
    const calm = tenantClient(keys.calm);
    const finished: string[] = [];
    const send = (call: typeof flood, name: string) =>
      call(pipelineRequest('image-ocr', slowPage, name)).then(
        () => finished.push(name),
        (err: grpc.ServiceError) => {
          finished.push(`${name}:${grpc.status[err.code]}`);
          return err;
        },
      );
    // One runs, three wait (flood's maxQueued), the other six are refused at once (which six depends on arrival order).
    const floods = Array.from({ length: 10 }, (_, i) => send(flood, `f${i}`));
    await until(() => finished.length === 6 && server.repository.inFlight() === 4);
    const settled = await Promise.all(floods.map((f) => Promise.race([f, sleep(100, 'waiting')])));
    const refusals = settled.filter((r) => typeof r === 'object') as grpc.ServiceError[];
    assert.equal(refusals.length, 6);
    for (const err of refusals) {
      assertStatus(err, grpc.status.RESOURCE_EXHAUSTED, /^model image-ocr: tenant flood already has 3 requests waiting \(its maxQueued\); retry after ~\d+ ms/);
      assert.ok(Number(err.metadata.get(retryAfterHeader)[0]) >= 1, 'a retry hint in the trailers');
    }
    await Promise.all([...floods, send(calm, 'c0'), send(calm, 'c1')]);
    const served = finished.filter((n) => !n.includes(':')).map((n) => n[0]);
    assert.deepEqual(served.join(''), 'ffcfcf', 'after the running one, turns alternate: a first-come queue would put the calm tenant last');
  });

  test("Triton's timeout parameter (µs) takes a request out of the queue with DEADLINE_EXCEEDED when it passes", async () => {
    const calm = tenantClient(keys.calm);
    const running = calm(pipelineRequest('image-ocr', slowPage));
    await until(() => server.repository.inFlight() === 1);
    const late = { ...pipelineRequest('image-ocr', slowPage), parameters: { [ParameterNames.timeoutUs]: int64Parameter(100_000) } };
    const started = performance.now();
    assertStatus(await grpcFailure(calm(late)), grpc.status.DEADLINE_EXCEEDED, /waited \d+ ms in the queue, busy with earlier requests, until the request's timeout 100000 µs passed/);
    assert.ok(performance.now() - started < 1_500, 'refused when the timeout passed, not when the run ahead finished');
    await running;
  });

  test('the metrics count requests, refusals and queue time by tenant, with bounded labels', async () => {
    const exposition = await scrapeMetrics(server.metricsPort);
    assert.ok(metricValue(exposition, 'splitinfer_tenant_requests_total', { tenant: 'flood', code: 'RESOURCE_EXHAUSTED' }) >= 6);
    assert.ok(metricValue(exposition, 'splitinfer_tenant_requests_total', { tenant: 'calm', code: 'OK' }) >= 3);
    assert.ok(metricValue(exposition, 'splitinfer_tenant_requests_total', { tenant: 'calm', code: 'DEADLINE_EXCEEDED' }) >= 1);
    assert.equal(metricValue(exposition, 'splitinfer_tenant_quota_refusals_total', { tenant: 'anonymous', limit: 'rate' }), 1);
    assert.ok(metricValue(exposition, 'splitinfer_tenant_queue_duration_us', { tenant: 'calm' }) > 0);
    assert.equal(metricValue(exposition, 'splitinfer_tenant_in_flight', { tenant: 'flood' }), 0);
    const tenantsSeen = new Set([...exposition.matchAll(/^splitinfer_tenant_\w+\{[^}]*tenant="([^"]*)"/gm)].map((m) => m[1]));
    assert.deepEqual([...tenantsSeen].sort(), ['anonymous', 'calm', 'flood']);
  });
});

test('a default priority outside the priority levels stops start-up, saying which levels exist', async () => {
  await assert.rejects(startTestCloud({ models: ['audio-vad'], limits: { priorityLevels: 3 } }), /config limits\.defaultPriorityLevel 0 is not one of its 3 priorityLevels; set it to 1 … 3/);
});
