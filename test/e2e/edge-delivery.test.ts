/**
 * Every accepted request answered once, across the faults an agent meets:
 * the real agent as a child process (SIGKILL, SIGTERM, started again on the
 * same state folder), mosquitto with persistence (MQTT 5) and the embedded
 * aedes (MQTT 3.1.1), the real cloud tier. Ends with the short fault run of
 * `npm run bench:faults`.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestCloud } from '../helpers/cloud.js';
import { startEdgeChild, type EdgeChild } from '../helpers/edge-child.js';
import { readFixture } from '../helpers/inference.js';
import { AgentRequester, connectClient, MessageCollector, mosquittoMissing, startAedes, startMosquitto, type AgentReply, type TestBroker } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';
import { runFaults } from '../bench/fault-run.js';

const invoice = readFixture('ocr', 'invoice.png');
const speech = readFixture('audio', 'speech-en.wav');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every final answer per correlation token; afterwards, none may come twice. */
function answerCounts(requester: AgentRequester, tokens: string[]): number[] {
  return tokens.map((token) => requester.repliesTo(token).filter((r) => r.final !== false).length);
}

function deliverySuite(label: string, startBroker: (stateDir: string) => Promise<TestBroker>, skip?: string): void {
  describe(label, { skip }, () => {
    let broker: TestBroker;
    let cloud: Awaited<ReturnType<typeof startTestCloud>>;
    let requester: AgentRequester;
    const state = tempStateDir();
    let agent: EdgeChild | undefined;
    let devices = 0;
    let deviceId = '';
    const start = () =>
      startEdgeChild({
        broker,
        deviceId,
        cloud: cloud.address,
        stateDir: state.dir,
        config: { limits: { maxConcurrentRequests: 2 }, delivery: { drainTimeoutMs: 20_000 } },
      });
    const journalBytes = () => statSync(path.join(state.dir, `journal-${deviceId}`), { throwIfNoEntry: false })?.size ?? 0;

    before(async () => {
      broker = await startBroker(state.dir);
      cloud = await startTestCloud();
    });

    after(async () => {
      await agent?.kill('SIGKILL');
      await requester?.close();
      await cloud?.server.drain(5_000);
      await broker?.stop();
      state.remove();
    });

    /** A fresh device (its own journal) and a requester with a persistent session, so answers wait for it too. */
    async function freshDevice(): Promise<void> {
      await agent?.kill('SIGKILL');
      await requester?.close();
      deviceId = `delivery-v${broker.protocolVersion}-${process.pid}-${++devices}`;
      requester = await AgentRequester.connect(broker, deviceId, [], { clientId: `requester-${deviceId}`, clean: false, ...(broker.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}) });
      agent = await start();
    }

    test('SIGKILL with requests journaled, running and waiting at the broker: after the restart each is answered exactly once', async () => {
      await freshDevice();
      const tokens: string[] = [];
      for (let i = 0; i < 6; i++) tokens.push(await requester.send({ id: `kill-${i}`, inputs: i % 2 ? { image: invoice } : { image: invoice, audio: speech }, deadlineMs: 60_000 }));
      while (journalBytes() === 0) await sleep(5);
      await agent!.kill('SIGKILL');
      const answeredBeforeRestart = answerCounts(requester, tokens).filter((n) => n > 0).length;
      agent = await start();
      for (const token of tokens) {
        const { reply } = await requester.answer(token, 60_000);
        assert.equal(reply.errors, undefined, JSON.stringify(reply.errors));
      }
      await sleep(1_500);
      assert.deepEqual(answerCounts(requester, tokens), tokens.map(() => 1), `answered before the kill: ${answeredBeforeRestart} of ${tokens.length}`);
    });

    test('SIGTERM: no new request is acknowledged, running ones finish, offline is published; what came meanwhile is answered after the restart', async () => {
      await freshDevice();
      const watcher = await connectClient(broker);
      try {
        const status = await MessageCollector.subscribe(watcher, `splitinfer/v1/${deviceId}/status`);
        const running = await requester.send({ id: 'term-running', inputs: { image: invoice } });
        while (journalBytes() === 0) await sleep(5);
        const stopping = agent!.kill('SIGTERM');
        const meanwhile: string[] = [];
        for (let i = 0; i < 3; i++) meanwhile.push(await requester.send({ id: `term-meanwhile-${i}`, inputs: { text: 'Where is my order?' } }));
        assert.equal(await stopping, 0, 'a clean exit');
        const { reply } = await requester.answer(running, 1_000);
        assert.equal(reply.errors, undefined, 'the running request finished before the exit');
        const offline = status.messages.some((m) => m.payload.toString() === 'offline');
        assert.ok(offline, 'offline published before the exit');
        agent = await start();
        for (const token of meanwhile) assert.equal((await requester.answer(token, 30_000)).reply.errors, undefined);
        await sleep(1_000);
        assert.deepEqual(answerCounts(requester, [running, ...meanwhile]), [1, 1, 1, 1]);
      } finally {
        await watcher.endAsync(true);
      }
    });

    test('a backlog queued while the agent was down is worked off in order of arrival, none refused', async () => {
      await freshDevice();
      await agent!.kill('SIGKILL');
      const tokens: string[] = [];
      const sent = performance.now();
      // 20 requests/s while the agent is down and while it starts again.
      const restarted = start().then((child) => (agent = child));
      for (let i = 0; i < 60; i++) {
        tokens.push(await requester.send({ id: `backlog-${i}`, inputs: i % 3 === 2 ? { image: invoice } : { text: 'I forgot my password' }, deadlineMs: 60_000 }));
        await sleep(50);
      }
      await restarted;
      const replies: AgentReply[] = [];
      for (const token of tokens) replies.push((await requester.answer(token, 90_000)).reply);
      const workedOffMs = Math.round(performance.now() - sent);
      const refused = replies.filter((r) => r.errors?.request?.code === 'RESOURCE_EXHAUSTED').length;
      console.log(`${label}: ${tokens.length} requests queued while the agent was down or starting; all answered ${workedOffMs} ms after the first was sent, ${refused} refused`);
      assert.equal(refused, 0);
      for (const reply of replies) assert.equal(reply.errors, undefined, JSON.stringify(reply.errors));
      await sleep(1_000);
      assert.deepEqual(answerCounts(requester, tokens), tokens.map(() => 1));
    });
  });
}

deliverySuite('delivery over mosquitto with persistence (MQTT 5)', (stateDir) => startMosquitto(5, { persistenceDir: stateDir }), mosquittoMissing);
deliverySuite('delivery over embedded aedes (MQTT 3.1.1)', () => startAedes());

describe('fault run (the short `npm run bench:faults`)', { skip: mosquittoMissing }, () => {
  test('100 requests through a SIGKILL, a SIGTERM, a broker restart and a cloud kill: none lost, none answered twice', async () => {
    const result = await runFaults({
      requests: 100,
      ratePerS: 10,
      faults: ['agent-sigkill', 'agent-sigterm', 'broker-restart', 'cloud-kill'],
      faultGapMs: 3_000,
      maxConcurrentRequests: 4,
      deadlineMs: 60_000,
      settleMs: 60_000,
    });
    console.log(`fault run: ${JSON.stringify({ ...result, lostIds: undefined, duplicatedIds: undefined })}`);
    assert.deepEqual({ lost: result.lostIds, duplicated: result.duplicatedIds }, { lost: [], duplicated: [] });
    assert.equal(result.answeredOnce, 100);
  });
});
