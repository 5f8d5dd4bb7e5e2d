/**
 * The response cache's shared tier over a real redis-server: two cloud
 * replicas answer each other's repeats through Redis; with Redis killed
 * mid-run every request still succeeds (as a miss, counted, with a logged
 * warning) and none waits on Redis, nor longer than the command timeout on
 * a Redis that hangs; with Redis back, hits resume.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@grpc/grpc-js';
import type { CloudServer } from '../../cloud/server.js';
import { GRPCInferenceService, type ModelInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { boolParameterValue, ParameterNames } from '../../shared/infer-parameters.js';
import { createLogger } from '../../shared/log.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { metricValue, pipelineRequest, resultOf, scrapeMetrics, textIntentOptions } from '../helpers/inference.js';
import { redisMissing, startRedis, type TestRedis } from '../helpers/redis.js';

const infer = GRPCInferenceService.method.modelInfer;
const cacheHit = (r: ModelInferResponse) => boolParameterValue(r.parameters, ParameterNames.cacheHit);

describe('response cache shared through Redis', { skip: redisMissing ?? textIntentOptions.skip }, () => {
  let redis: TestRedis;
  const replicas: { server: CloudServer; client: Client; warnings: string[] }[] = [];
  let sentence = 0;
  const fresh = () => `Where is parcel number ${++sentence}? It has not arrived.`;
  const ask = (replica: number, text: string) => callUnary(replicas[replica]!.client, infer, pipelineRequest('text-intent', text));
  const metric = async (replica: number, name: string, labels: Record<string, string> = { model: 'text-intent' }) =>
    metricValue(await scrapeMetrics(replicas[replica]!.server.metricsPort), name, labels);

  before(async () => {
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      const warnings: string[] = [];
      const log = createLogger(`cloud-${i}`, 'warn', { write: (line: string) => void warnings.push(line) });
      // 200 ms: this CI machine is shared; the default 50 ms is for a Redis next to the replicas.
      const cloud = await startTestCloud({ models: ['text-intent'], cache: { bytes: 1 << 20, redis: { url: redis.url, timeoutMs: 200 } } }, log);
      replicas.push({ server: cloud.server, client: inferenceClient(cloud.address), warnings });
    }
  });

  after(async () => {
    for (const r of replicas) {
      r.client.close();
      await r.server.drain(2_000);
    }
    await redis?.stop();
  });

  test("one replica answers another's repeat from Redis", async () => {
    const text = fresh();
    const first = await ask(0, text);
    assert.equal(cacheHit(first), false);
    const repeat = await ask(1, text);
    assert.equal(cacheHit(repeat), true, 'replica 1 never ran it: the answer came through Redis');
    assert.deepEqual(resultOf(repeat), resultOf(first));
    assert.equal(await metric(1, 'nv_cache_num_hits_per_model'), 1);
    assert.equal(await metric(1, 'nv_cache_num_misses_per_model'), 0);
  });

  test('a Redis that hangs costs a request at most the command timeout, and is a miss', async () => {
    const text = fresh();
    await ask(0, text);
    redis.freeze();
    try {
      const timeoutsBefore = await metric(1, 'splitinfer_cache_redis_errors_total', { operation: 'get' });
      const started = performance.now();
      const answer = await ask(1, text);
      const tookMs = performance.now() - started;
      assert.equal(cacheHit(answer), false);
      assert.ok(tookMs >= 200 && tookMs < 2_000, `the lookup gave up after the 200 ms timeout and the request ran (${Math.round(tookMs)} ms)`);
      assert.equal((await metric(1, 'splitinfer_cache_redis_errors_total', { operation: 'get' })) - timeoutsBefore, 1);
    } finally {
      redis.thaw();
    }
  });

  test('with Redis killed, requests succeed at once as misses, counted, with a warning', async () => {
    await redis.kill();
    const missesBefore = await metric(1, 'nv_cache_num_misses_per_model');
    for (let i = 0; i < 3; i++) {
      const text = fresh();
      assert.equal(cacheHit(await ask(0, text)), false);
      const started = performance.now();
      const other = await ask(1, text);
      assert.equal(cacheHit(other), false, 'Redis cannot share it now');
      assert.ok(performance.now() - started < 2_000, 'no request waits on a dead Redis');
    }
    assert.equal((await metric(1, 'nv_cache_num_misses_per_model')) - missesBefore, 3);
    assert.ok((await metric(1, 'splitinfer_cache_redis_errors_total', { operation: 'get' })) >= 3);
    const warned = replicas[1]!.warnings.filter((line) => line.includes('Redis at redis://127.0.0.1'));
    assert.ok(warned.length >= 1, 'a warning names Redis and says requests are answered as misses');
    assert.ok(warned.length <= 2, `warnings are rate-limited, not one per request (${warned.length})`);
    assert.match(warned[0]!, /answering as cache misses/);
  });

  test('with Redis back, replicas share answers again', async () => {
    await redis.start();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const text = fresh();
      await ask(0, text);
      if (cacheHit(await ask(1, text))) break;
      assert.ok(Date.now() < deadline, 'hits through Redis did not resume within 15 s of its restart');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
});
