/**
 * The edge agent over MQTT, end to end: a real broker, the real cloud tier and
 * the real agent behind its MQTT ingress. One suite runs against mosquitto
 * speaking MQTT 5 (Response Topic, Correlation Data, content type) and against
 * the embedded aedes broker speaking MQTT 3.1.1 (replyTo/correlationId in the
 * payload).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import { loadEdgeConfig, type EdgeConfig } from '../../edge/config.js';
import type { MqttIngress } from '../../edge/ingress/mqtt-ingress.js';
import { startEdgeService, type EdgeService } from '../../edge/service.js';
import { createLogger } from '../../shared/log.js';
import { startTestCloud } from '../helpers/cloud.js';
import { expectedOcrLines, readFixture } from '../helpers/inference.js';
import { tempStateDir } from '../helpers/state-dir.js';
import { makeClip } from '../helpers/video-clips.js';
import { AgentRequester, MessageCollector, connectClient, mosquittoMissing, startAedes, startMosquitto, type AgentReply, type TestBroker } from '../helpers/mqtt.js';

const log = createLogger('e2e', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const invoice = readFixture('ocr', 'invoice.png');
const speech = readFixture('audio', 'speech-en.wav');
const invoiceText = expectedOcrLines['invoice.png']!.map((l) => l.text).join(' ');
const ocrText = (result: { lines: { text: string }[] }) => result.lines.map((l) => l.text).join(' ');
const maxPayloadBytes = 1024 * 1024;
const maxConcurrentRequests = 2;

function assertNoErrors(reply: AgentReply): void {
  assert.equal(reply.errors, undefined, `unexpected errors: ${JSON.stringify(reply.errors)}`);
}

function assertRequestError(reply: AgentReply, message: RegExp, code = 'INVALID_ARGUMENT'): void {
  assert.deepEqual(reply.results, {});
  assert.equal(reply.errors?.request?.code, code, JSON.stringify(reply.errors));
  assert.match(reply.errors.request.message, message);
}

function edgeMqttSuite(label: string, protocolVersion: 4 | 5, startBroker: () => Promise<TestBroker>, skip?: string): void {
  describe(label, { skip }, () => {
    let broker: TestBroker;
    let cloud: Awaited<ReturnType<typeof startTestCloud>>;
    let config: EdgeConfig;
    let edge: EdgeService;
    let ingress: MqttIngress;
    let requester: AgentRequester;
    let clip: Uint8Array;
    const state = tempStateDir();

    before(async () => {
      broker = await startBroker();
      cloud = await startTestCloud();
      const deviceId = `e2e-v${broker.protocolVersion}-${process.pid}`;
      config = loadEdgeConfig(undefined, {
        deviceId,
        broker: { url: broker.url, protocolVersion: broker.protocolVersion, keepaliveS: 5 },
        cloud: cloud.address,
        limits: { maxPayloadBytes, maxConcurrentRequests },
        telemetryIntervalS: 0.5,
        video: { chunkFrames: 4 },
        stateDir: state.dir,
      });
      edge = await startEdgeService(config, log);
      ingress = edge.ingress;
      requester = await AgentRequester.connect(broker, deviceId);
      // 3 s at 4 sampled frames/s: 12 frames, 3 chunks of 4.
      clip = new Uint8Array(await readFile(await makeClip({ width: 320, height: 240, fps: 10, seconds: 3, scene: 'fixed-camera', format: 'h264/mp4' })));
    });

    after(async () => {
      await requester?.close();
      await edge?.close();
      await cloud?.server.drain(5_000);
      await broker?.stop();
      state.remove();
    });

    test('status is retained online once the agent serves', async () => {
      const watcher = await connectClient(broker);
      try {
        const status = await MessageCollector.subscribe(watcher, ingress.topics.status);
        const online = await status.waitFor(() => true, 5_000, 'retained status');
        assert.equal(online.payload.toString(), 'online');
        assert.equal(online.packet.retain, true);
      } finally {
        await watcher.endAsync(true);
      }
    });

    test('text is classified on the edge', async () => {
      const { reply } = await requester.ask({ id: 'text-1', inputs: { text: 'I forgot my password for the learning portal' } });
      assertNoErrors(reply);
      assert.equal(reply.id, 'text-1');
      assert.equal(typeof reply.results.text.intent, 'string');
      assert.equal(reply.placement.text?.ran, 'edge');
    });

    test('spoken audio gets speech segments, on the edge by default', async () => {
      const { reply } = await requester.ask({ id: 'audio-1', inputs: { audio: speech } });
      assertNoErrors(reply);
      assert.ok(reply.results.audio.segments.length > 0, JSON.stringify(reply.results.audio));
      assert.equal(reply.placement.audio?.ran, 'edge');
      assert.deepEqual(reply.placement.audio.reasons, ['configured']);
      assert.ok(reply.timings.audio!.totalMs > 0);
    });

    test('an image with printed text is read by OCR in the cloud', async () => {
      const { reply } = await requester.ask({ id: 'image-1', inputs: { image: invoice } });
      assertNoErrors(reply);
      assert.equal(ocrText(reply.results.image), invoiceText);
      assert.equal(reply.placement.image?.ran, 'cloud');
    });

    test('a video is answered progressively: its chunks in order, then the final summary, all with the request\'s correlation', async () => {
      const token = await requester.send({ id: 'video-1', inputs: { video: clip } });
      const { reply } = await requester.answer(token, 60_000);
      assertNoErrors(reply);
      const replies = requester.repliesTo(token);
      assert.deepEqual(
        replies.map((r) => [r.id, r.chunk, r.final]),
        [...[0, 1, 2].map((k) => ['video-1', k, false]), ['video-1', undefined, true]],
        'one message per chunk, in order, before the final one',
      );
      for (const [k, chunk] of replies.slice(0, 3).entries()) assert.deepEqual([chunk.results.video.chunk, chunk.placement.video?.ran], [k, 'cloud']);
      assert.deepEqual([reply.results.video.chunks, reply.results.video.framesDecoded], [3, 12]);
      const quiet = await requester.send({ id: 'video-2', inputs: { video: clip }, stream: false });
      const { reply: only } = await requester.answer(quiet, 60_000);
      assertNoErrors(only);
      assert.deepEqual(requester.repliesTo(quiet).map((r) => r.final), [undefined], 'stream: false: the final answer only');
      assert.ok(ingress.stats().chunksPublished >= 3);
    });

    test('a mixed text + image + audio request answers every modality in one response', async () => {
      const { reply } = await requester.ask({ id: 'mixed-1', inputs: { text: 'Where is my order?', image: invoice, audio: speech }, deadlineMs: 20_000 });
      assert.equal(ocrText(reply.results.image), invoiceText);
      assert.ok(reply.results.audio.segments.length > 0);
      assert.equal(typeof reply.results.text.intent, 'string');
      assertNoErrors(reply);
      assert.deepEqual(Object.keys(reply.placement).sort(), ['audio', 'image', 'text']);
    });

    test('msgpack in, msgpack out; JSON in (base64 media), JSON out', async () => {
      const packed = await requester.ask({ id: 'fmt-msgpack', inputs: { image: invoice } });
      assert.notEqual(packed.message.payload[0], 0x7b, 'a msgpack request is answered in msgpack');
      const json = await requester.ask({ id: 'fmt-json', inputs: { image: invoice } }, { format: 'json' });
      assert.equal(json.message.payload[0], 0x7b, 'a JSON request is answered in JSON');
      if (broker.protocolVersion === 5) {
        assert.equal(packed.message.packet.properties?.contentType, 'application/msgpack');
        assert.equal(json.message.packet.properties?.contentType, 'application/json');
      }
      assert.equal(ocrText(json.reply.results.image), invoiceText);
      assert.equal(json.reply.id, 'fmt-json');
    });

    test('a redelivered QoS 1 request is answered once', async () => {
      const before = ingress.stats().duplicates;
      const request = { id: 'redelivered-1', inputs: { image: invoice } };
      const token = await requester.send(request);
      await requester.send(request, {}, token);
      await requester.collector.waitFor((m) => requester.answersTo(token).includes(m), 20_000, 'the first answer');
      await requester.send(request, {}, token);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assert.equal(requester.answersTo(token).length, 1);
      assert.equal(ingress.stats().duplicates - before, 2);
    });

    test('a repeat of an id while it runs waits for its one run; a repeat after gets the stored answer again', async () => {
      const runs = edge.agent.stats().requests;
      const request = { id: 'repeated-1', inputs: { image: invoice, text: 'Where is my order?' } };
      const first = await requester.send(request);
      const whileRunning = await requester.send(request);
      const [a, b] = await Promise.all([requester.answer(first), requester.answer(whileRunning)]);
      const later = await requester.ask(request);
      assert.equal(edge.agent.stats().requests - runs, 1, 'computed once');
      assertNoErrors(a.reply);
      for (const { reply } of [b, later]) assert.deepEqual({ ...reply, correlationId: undefined }, { ...a.reply, correlationId: undefined });
      assert.ok(ingress.stats().joined >= 1 && ingress.stats().replayed >= 1, JSON.stringify(ingress.stats()));
    });

    test('requests over limits.maxConcurrentRequests wait unacknowledged at the broker and are all answered; one whose deadline passes while it waits is answered so', async () => {
      const tokens: string[] = [];
      for (let i = 0; i < maxConcurrentRequests + 3; i++) tokens.push(await requester.send({ id: `burst-${i}`, inputs: { image: invoice } }));
      const late = await requester.send({ id: 'burst-late', inputs: { image: invoice }, deadlineMs: 1 });
      const replies = await Promise.all(tokens.map(async (token) => (await requester.answer(token)).reply));
      for (const reply of replies) assertNoErrors(reply);
      assert.equal(replies.filter((r) => ocrText(r.results.image) === invoiceText).length, tokens.length);
      const { reply } = await requester.answer(late);
      assertRequestError(reply, /^request burst-late: .*its deadlineMs 1 passed.* — it was not run$/, 'DEADLINE_EXCEEDED');
    });

    describe('bad input gets an INVALID_ARGUMENT response and the agent keeps serving', () => {
      test('malformed msgpack', async () => {
        const { reply } = await requester.askRaw(Uint8Array.of(0x82, 0xa2, 0x69), { format: 'msgpack' });
        assertRequestError(reply, /not valid msgpack/);
      });

      test('malformed JSON is answered in JSON', async () => {
        const { reply, message } = await requester.askRaw(Buffer.from('{"id": "bad-json", "inputs": '), { format: 'json' });
        assertRequestError(reply, /not valid JSON/);
        assert.equal(message.payload[0], 0x7b);
      });

      test('missing id', async () => {
        const { reply } = await requester.ask({ inputs: { text: 'hello' } });
        assertRequestError(reply, /no 'id'/);
        assert.equal(reply.id, undefined);
      });

      test('unknown modality', async () => {
        const { reply } = await requester.ask({ id: 'bad-modality', inputs: { smell: 'roses' } });
        assertRequestError(reply, /unknown modality 'smell'/);
        assert.equal(reply.id, 'bad-modality');
      });

      test('wrong field types', async () => {
        const text = await requester.ask({ id: 'bad-text', inputs: { text: 42 } }, { format: 'json' });
        assertRequestError(text.reply, /'inputs\.text' must be string/);
        const image = await requester.ask({ id: 'bad-image', inputs: { image: 'invoice.png' } });
        assertRequestError(image.reply, /'inputs\.image' must be msgpack binary/);
        const deadline = await requester.ask({ id: 'bad-deadline', inputs: { text: 'hi' }, deadlineMs: 'soon' }, { format: 'json' });
        assertRequestError(deadline.reply, /'deadlineMs' must be number/);
      });

      test('payload over limits.maxPayloadBytes', async () => {
        const { reply } = await requester.askRaw(new Uint8Array(maxPayloadBytes + 1).fill(0x20), { format: 'json' });
        assertRequestError(reply, /over the limit of 1048576 \(limits\.maxPayloadBytes\)/, 'RESOURCE_EXHAUSTED');
      });

      test('bytes that are not an image fail that modality only', async () => {
        const { reply } = await requester.ask({ id: 'not-image', inputs: { image: Buffer.from('<!doctype html><p>404</p>'), audio: speech } });
        assert.equal(reply.errors?.image?.code, 'INVALID_ARGUMENT');
        assert.match(reply.errors.image.message, /not a JPEG\/PNG\/WebP/);
        assert.ok(reply.results.audio.segments.length > 0);
      });

      test('an unsupported MQTT 5 content type', { skip: protocolVersion === 4 && 'MQTT 3.1.1 has no content type' }, async () => {
        const { reply } = await requester.ask({ id: 'bad-type', inputs: { text: 'hi' } }, { contentType: 'text/plain' });
        assertRequestError(reply, /content type 'text\/plain' is not supported/);
      });

      test('deadlineMs outside [1 ms, 24 h] and video over limits.maxVideoFrames are refused naming the limit', async () => {
        const late = await requester.ask({ id: 'far-deadline', inputs: { text: 'hi' }, deadlineMs: 3e9 });
        assertRequestError(late.reply, /'deadlineMs' is 3000000000 ms, over the limit of 86400000 ms \(limits\.maxDeadlineMs/);
        const none = await requester.ask({ id: 'no-deadline', inputs: { text: 'hi' }, deadlineMs: 0 });
        assertRequestError(none.reply, /'deadlineMs' is 0 ms; a deadline must be at least 1 ms/);
        const signatureOnly = Buffer.from([0xff, 0xd8, 0xff]);
        const flood = await requester.ask({ id: 'frame-flood', inputs: { video: Array.from({ length: 10_000 }, () => signatureOnly) } });
        assertRequestError(flood.reply, /'inputs\.video' has 10000 frames, over the limit of 64 \(limits\.maxVideoFrames\)/);
      });

      test('a reply address outside what is allowed gets no publish at all, and is counted', async () => {
        const other = `splitinfer/v1/other-${process.pid}`;
        const watcher = await connectClient(broker);
        try {
          const watched = await MessageCollector.subscribe(watcher, [`${other}/req`, `${other}/status`]);
          const before = ingress.stats().refusedReplies;
          // MQTT 5 forbids wildcards in a Response Topic (the broker would drop the publisher), so only replyTo tries one.
          const refused = [`${other}/req`, `${other}/status`, '$SYS/broker/clients', ...(protocolVersion === 4 ? ['replies/#'] : [])];
          for (const [i, topic] of refused.entries()) {
            const doc = { id: `refused-${i}`, inputs: { text: 'hi' }, ...(protocolVersion === 4 ? { replyTo: topic } : {}) };
            const properties = { responseTopic: topic, contentType: 'application/json' };
            await requester.client.publishAsync(requester.requestTopic, Buffer.from(JSON.stringify(doc)), { qos: 1, ...(protocolVersion === 5 ? { properties } : {}) });
          }
          // Requests are served in order: once this one is answered, the refused ones were handled.
          const { reply } = await requester.ask({ id: 'after-refused', inputs: { text: 'hi' } });
          assertNoErrors(reply);
          assert.equal(ingress.stats().refusedReplies - before, refused.length);
          assert.deepEqual(watched.messages, []);
          assert.deepEqual(requester.collector.matching((m) => m.topic === requester.defaultReplyTopic && /refused-/.test(m.payload.toString())), []);
        } finally {
          await watcher.endAsync(true);
        }
      });

      test('a packet over the Maximum Packet Size the agent announced is never delivered to it', { skip: protocolVersion === 4 && 'MQTT 3.1.1 has no Maximum Packet Size' }, async () => {
        const received = ingress.stats().received;
        await requester.client.publishAsync(requester.requestTopic, Buffer.alloc(maxPayloadBytes + 128 * 1024, 0x20), { qos: 1 });
        const { reply } = await requester.ask({ id: 'after-oversize', inputs: { text: 'hi' } });
        assertNoErrors(reply);
        assert.equal(ingress.stats().received - received, 1, 'the broker dropped the oversize packet');
      });

      test('after all that, a good request is still answered', async () => {
        const { reply } = await requester.ask({ id: 'still-serving', inputs: { audio: speech } });
        assertNoErrors(reply);
        assert.ok(ingress.stats().invalid >= 7);
      });
    });

    test('telemetry reports CPU load, memory, temperature and request counts', async () => {
      const watcher = await connectClient(broker);
      try {
        const telemetry = await MessageCollector.subscribe(watcher, ingress.topics.telemetry);
        const sample = JSON.parse((await telemetry.waitFor(() => true, 5_000, 'telemetry')).payload.toString()) as Record<string, any>;
        assert.equal(sample.deviceId, config.deviceId);
        assert.equal(typeof sample.cpuLoadPercent, 'number');
        assert.ok(sample.memory.totalBytes > 0 && sample.memory.availableBytes > 0);
        assert.ok(sample.temperatureC === null || typeof sample.temperatureC === 'number');
        assert.ok(sample.requests.agent.requests > 0, JSON.stringify(sample.requests));
        assert.ok(sample.requests.ingress.received > 0);
      } finally {
        await watcher.endAsync(true);
      }
    });

    test('with the cloud tier stopped, text and audio are still answered and the image is answered locally or reported', async () => {
      await cloud.server.drain(5_000);
      const { reply } = await requester.ask({ id: 'cloud-gone', inputs: { text: 'Where is my order?', audio: speech, image: invoice }, deadlineMs: 8_000 }, { timeoutMs: 15_000 });
      assert.ok(reply.results.audio.segments.length > 0);
      assert.equal(reply.placement.audio?.ran, 'edge');
      assert.equal(typeof reply.results.text.intent, 'string');
      assert.equal(reply.placement.text?.ran, 'edge');
      if (reply.results.image) {
        assert.equal(reply.placement.image?.ran, 'edge');
        assert.equal(ocrText(reply.results.image), invoiceText);
      } else {
        assert.match(reply.errors?.image?.code ?? '', /UNAVAILABLE|DEADLINE_EXCEEDED/);
      }
    });

    test('killing the agent connection publishes the offline last will; back online, it answers what was published meanwhile', async () => {
      const watcher = await connectClient(broker);
      try {
        const status = await MessageCollector.subscribe(watcher, ingress.topics.status);
        await status.waitFor((m) => m.payload.toString() === 'online', 5_000, 'online');
        ingress.client.stream.destroy();
        const offline = await status.waitFor((m) => m.payload.toString() === 'offline', 10_000, 'offline last will');
        const whileAway = requester.ask({ id: 'while-away', inputs: { audio: speech } });
        await status.waitFor((m) => m.payload.toString() === 'online' && status.messages.indexOf(m) > status.messages.indexOf(offline), 10_000, 'online again');
        assertNoErrors((await whileAway).reply);
      } finally {
        await watcher.endAsync(true);
      }
    });

    test('a clean shutdown leaves status retained offline', async () => {
      await edge.close();
      const watcher = await connectClient(broker);
      try {
        const status = await MessageCollector.subscribe(watcher, ingress.topics.status);
        const retained = await status.waitFor(() => true, 5_000, 'retained status');
        assert.equal(retained.payload.toString(), 'offline');
        assert.equal(retained.packet.retain, true);
      } finally {
        await watcher.endAsync(true);
      }
    });
  });
}

edgeMqttSuite('edge agent over mosquitto (MQTT 5)', 5, () => startMosquitto(5), mosquittoMissing);
edgeMqttSuite('edge agent over embedded aedes (MQTT 3.1.1)', 4, startAedes);
