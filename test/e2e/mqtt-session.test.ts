/**
 * The agent's MQTT session against real mosquitto: another client with the
 * agent's client id does not make it fight for the session several times a
 * second (it logs the takeover and backs off), and an answer that was in
 * flight when the agent died is sent again with its packet id, so the
 * requester gets it once (README "Delivery").
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { UniqueMessageIdProvider, type MqttClient } from 'mqtt';
import { loadEdgeConfig } from '../../edge/config.js';
import { ingressClientId, MqttIngress, type RequestHandler } from '../../edge/ingress/mqtt-ingress.js';
import { OutgoingStore } from '../../edge/ingress/outgoing-store.js';
import { createLogger } from '../../shared/log.js';
import { AgentRequester, connectClient, mosquittoMissing, startMosquitto } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';

const emptyAnswers: RequestHandler = { handle: async (request) => ({ id: request.id, results: {}, placement: {}, timings: {} }) };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(50);
  }
}

describe('agent MQTT session on mosquitto', { skip: mosquittoMissing }, () => {
  for (const protocolVersion of [5, 4] as const) {
    test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a second client with the agent's client id makes the agent log the takeover and back off, not fight`, async () => {
      const broker = await startMosquitto(protocolVersion);
      const state = tempStateDir();
      const lines: { level: number; msg: string; reconnectInMs?: number; takenOver?: boolean }[] = [];
      const log = createLogger('session-test', 'debug', { write: (line: string) => void lines.push(JSON.parse(line)) });
      const deviceId = `takeover-${protocolVersion}-${process.pid}`;
      const config = loadEdgeConfig(undefined, { deviceId, broker: { url: broker.url, protocolVersion }, stateDir: state.dir });
      const ingress = await MqttIngress.start(config, emptyAnswers, log);
      let intruder: MqttClient | undefined;
      let requester: AgentRequester | undefined;
      try {
        let agentConnects = 0;
        ingress.client.on('connect', () => agentConnects++);
        // A second agent configured with the same device id, more aggressive: back 100 ms after every time it is thrown out.
        // (Its session outlives it, as the agent's does; mosquitto 2.0 drops the subscriptions of a session whose last holder said expiry 0.)
        intruder = await connectClient(broker, { clientId: ingressClientId(deviceId), clean: false, reconnectPeriod: 100, properties: { sessionExpiryInterval: 86_400 } });
        const windowMs = 8_000;
        await sleep(windowMs);
        // A fixed 1 s reconnect gave 8 connects here; doubling waits from 1–2 s give at most 3.
        assert.ok(agentConnects <= 4, `the agent connected ${agentConnects} times in ${windowMs} ms of takeovers: it fights instead of backing off`);
        assert.ok(agentConnects >= 1, 'the agent tried to get its session back');
        const backoffs = lines.filter((l) => l.reconnectInMs !== undefined).map((l) => l.reconnectInMs!);
        assert.ok(backoffs.length >= 2, `the agent logged ${backoffs.length} backoffs`);
        assert.ok(backoffs.at(-1)! > backoffs[0]!, `the waits grow: ${backoffs.join(', ')} ms`);
        // mosquitto 2.0 closes the socket of a taken-over session without DISCONNECT 0x8E even over MQTT 5, so the agent sees a connection cut short.
        const warned = lines.filter((l) => l.level === 40 && l.msg.includes(`client id ${ingressClientId(deviceId)}`));
        assert.ok(warned.length >= 1, 'the takeover is logged at warn level, naming the client id');
        await intruder.endAsync(true);
        intruder = undefined;
        // Once the intruder is gone, the agent gets its session back and answers again.
        requester = await AgentRequester.connect(broker, deviceId);
        const { reply } = await requester.ask({ id: 'after-takeover', inputs: { text: 'hello' } }, { timeoutMs: 70_000 });
        assert.equal(reply.id, 'after-takeover');
      } finally {
        await intruder?.endAsync(true);
        await requester?.close();
        await ingress.close();
        await broker.stop();
        state.remove();
      }
    });
  }

  test('an answer in flight when the agent died is sent again with its packet id and reaches the requester once (QoS 2)', async () => {
    const broker = await startMosquitto(5);
    const state = tempStateDir();
    const clientId = `crash-${process.pid}`;
    const session = { clientId, clean: false, properties: { sessionExpiryInterval: 300 }, reconnectPeriod: 0 };
    const open: MqttClient[] = [];
    try {
      const requester = await connectClient(broker, { clientId: `requester-${process.pid}` });
      open.push(requester);
      let copies = 0;
      requester.on('message', () => copies++);
      await requester.subscribeAsync('replies/crash', { qos: 2 });

      // The process that dies: its socket is gone right after the PUBLISH was written, before any PUBREC was read.
      const dying = await connectClient(broker, { ...session, outgoingStore: await OutgoingStore.open(state.dir, 'crash'), messageIdProvider: new UniqueMessageIdProvider() });
      dying.publishAsync('replies/crash', 'the answer', { qos: 2, cbStorePut: () => process.nextTick(() => (dying.stream as net.Socket).destroy()) }).catch(() => undefined);
      await until('the connection is gone', () => !dying.connected, 5_000);
      await sleep(300);
      const beforeRestart = copies;
      await dying.endAsync(true);

      const store = await OutgoingStore.open(state.dir, 'crash');
      assert.equal(store.size, 1, 'the PUBLISH is still in the outgoing store after the crash');
      const restarted = await connectClient(broker, { ...session, outgoingStore: store, messageIdProvider: new UniqueMessageIdProvider() });
      open.push(restarted);
      await until('the resent answer is completed (PUBCOMP)', () => store.size === 0, 5_000);
      await sleep(500);
      assert.equal(copies, 1, `the requester got ${copies} copies (${beforeRestart} before the restart)`);

      // What the in-memory store did: the same answer under a new packet id is a new message.
      await restarted.publishAsync('replies/crash', 'the answer', { qos: 2 });
      await until('the second publish arrives', () => copies === 2, 5_000);
    } finally {
      for (const client of open) await client.endAsync(true);
      await broker.stop();
      state.remove();
    }
  });

});
