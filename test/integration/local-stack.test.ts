/**
 * The local stack `splitinfer demo` starts, and the tests and benchmarks
 * with it: the embedded broker carries messages, the cloud child answers
 * once it says it is ready and exits when stopped.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCloudChild, startEmbeddedBroker } from '../../edge/local-stack.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { InferenceClient } from '../../shared/inference-client.js';
import { connectClient, MessageCollector } from '../helpers/mqtt.js';

test('the embedded broker delivers a published message to a subscriber', async () => {
  const broker = await startEmbeddedBroker();
  const client = await connectClient(broker);
  try {
    const collector = await MessageCollector.subscribe(client, 'local-stack/test');
    await client.publishAsync('local-stack/test', 'hello', { qos: 1 });
    const message = await collector.waitFor((m) => m.topic === 'local-stack/test', 5_000);
    assert.equal(message.payload.toString(), 'hello');
  } finally {
    await client.endAsync(true);
    await broker.stop();
  }
});

test('the cloud child is ready when it resolves, and gone after stop', { timeout: 120_000 }, async () => {
  const cloud = await startCloudChild({ extraArgs: ['--threads', '1', '--models', 'text-intent'] });
  const client = new InferenceClient(cloud.address);
  try {
    const live = await callUnary(client.grpc, GRPCInferenceService.method.serverLive, {});
    assert.equal(live.live, true);
  } finally {
    client.close();
    await cloud.stop();
  }
  assert.throws(() => process.kill(cloud.pid, 0), /ESRCH/, 'the child process exited');
});

test('a cloud child that cannot start says so, naming where its log is', { timeout: 60_000 }, async () => {
  await assert.rejects(
    startCloudChild({ extraArgs: ['--models', 'no-such-model'], logHint: 'its log is above' }),
    /^Error: the cloud tier exited with code 1 while starting \(its log is above\)$/,
  );
});
