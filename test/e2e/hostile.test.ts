/**
 * The hostile corpus (test/fixtures/hostile/) against a real agent behind
 * real mosquitto (MQTT 5) and a real cloud tier, while a well-behaved client
 * keeps asking: every hostile request is answered with a clear error (or, for
 * a reply address that is not allowed, nothing is published), nothing
 * crashes, and the other client is answered throughout. Memory and the other
 * client's latency are reported, not asserted (timing belongs in benchmarks:
 * `npm run bench:hostile` compares it with a quiet run).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { loadEdgeConfig } from '../../edge/config.js';
import { startEdgeService, type EdgeService } from '../../edge/service.js';
import { createLogger } from '../../shared/log.js';
import { percentile } from '../../shared/percentile.js';
import { hostileMqttPayloads, type HostileMqttPayload } from '../fixtures/hostile/corpus.js';
import { startTestCloud } from '../helpers/cloud.js';
import { tempStateDir } from '../helpers/state-dir.js';
import { connectClient, decodeResponse, mosquittoMissing, startMosquitto, type AgentReply, type TestBroker } from '../helpers/mqtt.js';

const log = createLogger('hostile', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const deviceId = `hostile-${process.pid}`;

describe('hostile inputs over MQTT', { skip: mosquittoMissing }, () => {
  let broker: TestBroker;
  let cloud: Awaited<ReturnType<typeof startTestCloud>>;
  let edge: EdgeService;
  let client: MqttClient;
  const state = tempStateDir();
  const replies = new Map<string, AgentReply[]>();
  const stray: string[] = [];
  let sequence = 0;

  /** Publishes a payload with a fresh correlation token (what `answer` waits on) and returns the token. */
  async function send(payload: Buffer, responseTopic = `hostile/replies/${++sequence}`): Promise<string> {
    const token = `t-${++sequence}`;
    replies.set(token, []);
    await client.publishAsync(`splitinfer/v1/${deviceId}/req`, payload, { qos: 1, properties: { responseTopic, correlationData: Buffer.from(token) } });
    return token;
  }
  async function answer(token: string, timeoutMs = 120_000): Promise<AgentReply> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const got = replies.get(token)!;
      if (got.length > 0) return got[0]!;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no answer to ${token} within ${timeoutMs} ms`);
  }

  before(async () => {
    broker = await startMosquitto(5);
    cloud = await startTestCloud({ models: ['image-ocr', 'audio-vad', 'text-intent'] });
    edge = await startEdgeService(loadEdgeConfig(undefined, { deviceId, broker: { url: broker.url, protocolVersion: 5 }, cloud: cloud.address, stateDir: state.dir }), log);
    client = await connectClient(broker);
    // Everything this client may receive, including where a hostile reply address points: a publish there is a finding.
    await client.subscribeAsync(['hostile/replies/#', `splitinfer/v1/${deviceId}-other/req`], { qos: 1 });
    client.on('message', (topic, payload, packet) => {
      const token = packet.properties?.correlationData?.toString();
      if (token && replies.has(token) && topic.startsWith('hostile/replies/')) replies.get(token)!.push(decodeResponse({ topic, payload, packet }));
      else stray.push(topic);
    });
  });

  after(async () => {
    await client?.endAsync(true);
    await edge?.close();
    await cloud?.server.drain(5_000);
    await broker?.stop();
    state.remove();
  });

  test('every hostile request gets its clear error or nothing, and a well-behaved client is answered throughout', { timeout: 600_000 }, async (t) => {
    const corpus: HostileMqttPayload[] = await hostileMqttPayloads(deviceId);
    let peakRss = process.memoryUsage().rss;
    const startRss = peakRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const bystander: number[] = [];
    let stop = false;
    const steady = (async () => {
      while (!stop) {
        const started = performance.now();
        const reply = await answer(await send(Buffer.from(JSON.stringify({ id: `calm-${sequence}`, inputs: { text: 'Where is my order?' } }))));
        assert.equal(reply.errors, undefined, `the well-behaved client got ${JSON.stringify(reply.errors)}`);
        bystander.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      for (const entry of corpus) {
        const refusedBefore = edge.ingress.stats().refusedReplies;
        const tokens = await Promise.all(Array.from({ length: entry.copies ?? 1 }, () => send(entry.payload, entry.responseTopic)));
        if (entry.expect === 'none') {
          await new Promise((resolve) => setTimeout(resolve, 500));
          assert.deepEqual(replies.get(tokens[0]!), [], `${entry.name}: nothing may be published`);
          assert.equal(edge.ingress.stats().refusedReplies, refusedBefore + 1, `${entry.name}: counted as refused`);
          continue;
        }
        for (const token of tokens) {
          const reply: AgentReply = await answer(token);
          if (entry.expect === 'answered') {
            t.diagnostic(`${entry.name}: ${reply.errors ? `${Object.entries(reply.errors).map(([k, e]) => `${k} ${e.code}: ${e.message.slice(0, 100)}`).join('; ')}` : 'answered with a result'}`);
            continue;
          }
          const { where, code, message }: { where: string; code: string; message: RegExp } = entry.expect;
          const error: { code: string; message: string } | undefined = reply.errors?.[where];
          assert.equal(error?.code, code, `${entry.name}: ${JSON.stringify(reply.errors)}`);
          assert.match(error!.message, message, entry.name);
        }
      }
    } finally {
      stop = true;
      await steady;
      clearInterval(sampler);
    }
    assert.deepEqual(stray, [], 'nothing was published where a hostile request pointed');
    assert.ok(bystander.length > 0);
    t.diagnostic(`RSS (agent, cloud and broker client in one process): ${(startRss / 2 ** 20).toFixed(0)} MB before, peak ${(peakRss / 2 ** 20).toFixed(0)} MB`);
    t.diagnostic(`the well-behaved client: ${bystander.length} requests answered, p50 ${percentile(bystander, 0.5)?.toFixed(1)} ms, p95 ${percentile(bystander, 0.95)?.toFixed(1)} ms`);
  });
});
