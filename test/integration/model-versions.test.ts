/**
 * Several versions of one model on one server: model_version picks one, the
 * A/B split sends the others by weight and sticks per ab_key or tenant, each
 * version has its own metrics, and a shadow version's copies are compared
 * and counted, never returned.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status, type Client } from '@grpc/grpc-js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { stringParameter } from '../../shared/infer-parameters.js';
import type { CloudServer } from '../../cloud/server.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { assertStatus, deadlineIn, grpcFailure, metricValue, pipelineRequest, resultOf, scrapeMetrics, textIntentOptions } from '../helpers/inference.js';

const rpc = GRPCInferenceService.method;
const message = 'I forgot my password and cannot log in';

describe('model versions and A/B', textIntentOptions, () => {
  let server: CloudServer;
  let client: Client;

  before(async () => {
    const cloud = await startTestCloud({
      models: ['text-intent'],
      versions: { 'text-intent': { variants: ['fp32', 'int8-pruned'], weights: { fp32: 3, 'int8-pruned': 1 }, shadow: 'int8-pruned' } },
    });
    server = cloud.server;
    client = inferenceClient(cloud.address);
  });

  after(async () => {
    client?.close();
    await server?.drain(1_000);
  });

  const ask = (parameters: Record<string, string> = {}, modelVersion = '', id = '') =>
    callUnary(
      client,
      rpc.modelInfer,
      { ...pipelineRequest('text-intent', message, id), modelVersion, parameters: Object.fromEntries(Object.entries(parameters).map(([k, v]) => [k, stringParameter(v)])) },
      deadlineIn(10_000),
    );

  test('ModelMetadata lists every version; ModelReady answers per version', async () => {
    const meta = await callUnary(client, rpc.modelMetadata, { name: 'text-intent' }, deadlineIn(5_000));
    assert.deepEqual(meta.versions, ['fp32', 'int8-pruned']);
    const graph = await callUnary(client, rpc.modelMetadata, { name: 'text-intent-mlp', version: 'int8-pruned' }, deadlineIn(5_000));
    assert.deepEqual(graph.versions, ['int8-pruned']);
    for (const version of ['', 'fp32', 'int8-pruned']) assert.equal((await callUnary(client, rpc.modelReady, { name: 'text-intent', version }, deadlineIn(5_000))).ready, true);
    assertStatus(await grpcFailure(callUnary(client, rpc.modelReady, { name: 'text-intent', version: 'int8' }, deadlineIn(5_000))), status.NOT_FOUND, /serving versions 'fp32', 'int8-pruned'/);
  });

  test('model_version picks the version that answers', async () => {
    for (const version of ['fp32', 'int8-pruned']) {
      const response = await ask({}, version);
      assert.equal(response.modelVersion, version);
      assert.equal(typeof resultOf(response).intent, 'string');
    }
  });

  test('requests without a version split about 3:1 by ab_key, and one key keeps its version', async () => {
    const keys = Array.from({ length: 120 }, (_, i) => `device-${i}`);
    const versions: string[] = [];
    for (const key of keys) versions.push((await ask({ ab_key: key })).modelVersion);
    const share = versions.filter((v) => v === 'fp32').length / keys.length;
    assert.ok(share > 0.6 && share < 0.9, `fp32 answered ${share} of the keys, expected about 0.75`);
    for (const [i, key] of keys.slice(0, 10).entries()) {
      for (let n = 0; n < 3; n++) assert.equal((await ask({ ab_key: key })).modelVersion, versions[i], `${key} moved to another version`);
    }
  });

  test('without ab_key the tenant is the sticky key', async () => {
    const first = (await ask({ tenant: 'acme' })).modelVersion;
    for (let n = 0; n < 5; n++) assert.equal((await ask({ tenant: 'acme' })).modelVersion, first);
  });

  test('each version has its own request metrics; shadow copies are counted apart and never answer', async () => {
    const before = await scrapeMetrics(server.metricsPort);
    const sent = 12;
    for (let i = 0; i < sent; i++) assert.equal((await ask({}, 'fp32', `primary-${i}`)).modelVersion, 'fp32');
    const compared = (text: string) =>
      ['agree', 'disagree', 'failed', 'skipped'].reduce((sum, outcome) => sum + metricValue(text, 'splitinfer_shadow_answers_total', { model: 'text-intent', version: 'fp32', shadow_version: 'int8-pruned', outcome }), 0);
    const deadline = Date.now() + 10_000;
    let after = await scrapeMetrics(server.metricsPort);
    while (compared(after) - compared(before) < sent && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      after = await scrapeMetrics(server.metricsPort);
    }
    assert.equal(compared(after) - compared(before), sent, 'every primary answer got one shadow copy');
    const agreed = metricValue(after, 'splitinfer_shadow_answers_total', { shadow_version: 'int8-pruned', outcome: 'agree' }) - metricValue(before, 'splitinfer_shadow_answers_total', { shadow_version: 'int8-pruned', outcome: 'agree' });
    // The same message every time, and the int8 model agrees with fp32 on it (models/text-intent/metrics.int8-pruned.json).
    assert.equal(agreed, sent);
    const success = (text: string, version: string) => metricValue(text, 'nv_inference_request_success', { model: 'text-intent', version });
    assert.equal(success(after, 'fp32') - success(before, 'fp32'), sent);
    assert.equal(success(after, 'int8-pruned') - success(before, 'int8-pruned'), 0, 'shadow copies are not requests');
    assert.ok(success(after, 'int8-pruned') > 0, 'the A/B traffic of the earlier cases shows under its own version');
  });
});
