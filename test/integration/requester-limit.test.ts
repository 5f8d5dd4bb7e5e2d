/**
 * limits.maxConcurrentPerRequester: one requester (a reply topic) cannot
 * fill every run slot of the agent. Over the limit a request is answered
 * RESOURCE_EXHAUSTED naming the limit (not held: holding it would hold the
 * other requesters behind it), another requester's request still runs, and
 * the refused id sent again once there is room runs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { loadEdgeConfig } from '../../edge/config.js';
import { MqttIngress, type RequestHandler } from '../../edge/ingress/mqtt-ingress.js';
import { createLogger } from '../../shared/log.js';
import { AgentRequester, connectClient, decodeResponse, startAedes, type AgentReply, type TestBroker } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';

const log = createLogger('test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');

describe('concurrent work per requester', () => {
  const deviceId = `per-requester-${process.pid}`;
  const state = tempStateDir();
  const gates = new Map<string, () => void>();
  /** Holds each request until the test opens its gate. */
  const gated: RequestHandler = {
    handle: (request) => new Promise((resolve) => gates.set(request.id, () => resolve({ id: request.id, results: {}, placement: {}, timings: {} }))),
  };
  let broker: TestBroker;
  let ingress: MqttIngress;
  let greedy: AgentRequester;
  let other: MqttClient;
  const otherReplies: AgentReply[] = [];

  before(async () => {
    broker = await startAedes();
    const config = loadEdgeConfig(undefined, {
      deviceId,
      broker: { url: broker.url, protocolVersion: broker.protocolVersion },
      stateDir: state.dir,
      limits: { maxConcurrentRequests: 4, maxConcurrentPerRequester: 2 },
    });
    ingress = await MqttIngress.start(config, gated, log);
    greedy = await AgentRequester.connect(broker, deviceId);
    other = await connectClient(broker);
    other.on('message', (topic, payload, packet) => otherReplies.push(decodeResponse({ topic, payload, packet })));
    await other.subscribeAsync('other/replies', { qos: 1 });
  });

  after(async () => {
    for (const open of gates.values()) open();
    await greedy?.close();
    await other?.endAsync(true);
    await ingress?.close(1_000);
    await broker?.stop();
    state.remove();
  });

  const until = async (what: string, condition: () => boolean) => {
    const end = performance.now() + 10_000;
    while (!condition()) {
      if (performance.now() > end) throw new Error(`timed out waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  test('a third request of one requester is refused naming the limit; another requester still runs; the refused id runs once there is room', async () => {
    const first = await greedy.send({ id: 'g-1', inputs: { text: 'a' } });
    const second = await greedy.send({ id: 'g-2', inputs: { text: 'b' } });
    await until('both run', () => gates.has('g-1') && gates.has('g-2'));
    const { reply: refused } = await greedy.ask({ id: 'g-3', inputs: { text: 'c' } });
    assert.equal(refused.errors?.request?.code, 'RESOURCE_EXHAUSTED');
    assert.match(refused.errors!.request!.message, /already has 2 requests waiting or running in the agent, the limit \(limits\.maxConcurrentPerRequester\)/);
    assert.equal(gates.has('g-3'), false, 'the refused request did not run');

    await other.publishAsync(`splitinfer/v1/${deviceId}/req`, JSON.stringify({ id: 'o-1', inputs: { text: 'd' }, replyTo: 'other/replies', correlationId: 'o-1' }), { qos: 1 });
    await until('the other requester runs', () => gates.has('o-1'));
    gates.get('o-1')!();
    await until('the other requester is answered', () => otherReplies.length === 1);
    assert.equal(otherReplies[0]!.id, 'o-1');
    assert.equal(otherReplies[0]!.errors, undefined);

    gates.get('g-1')!();
    assert.equal((await greedy.answer(first)).reply.id, 'g-1');
    const again = greedy.ask({ id: 'g-3', inputs: { text: 'c' } });
    await until('the refused id runs when sent again', () => gates.has('g-3'));
    gates.get('g-3')!();
    gates.get('g-2')!();
    assert.equal((await again).reply.errors, undefined);
    assert.equal((await greedy.answer(second)).reply.id, 'g-2');
    assert.equal(ingress.stats().overRequesterLimit, 1);
  });
});
