/**
 * What one request may ask of the agent (config `limits`, `replyPrefixes`):
 * each limit refuses with a message that names the limit, and a reply
 * address outside what is allowed is refused before anything is published.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { envelopeOf, requestValidators, toAgentRequest } from '../../edge/ingress/payload.js';
import { replyRoute, type ReplyRules } from '../../edge/ingress/reply-route.js';
import { enforcePixelBudget, splitRequest } from '../../edge/tasks.js';

const limits = loadEdgeConfig().limits;
const validators = requestValidators(limits);
const refusal = (doc: Record<string, unknown>) => {
  try {
    toAgentRequest(doc, 'msgpack', validators);
  } catch (err) {
    return err as Error & { code: string };
  }
  return assert.fail('expected the request to be refused');
};

describe('config limits', () => {
  test('defaults: 64 video frames, deadlines up to 24 h, 256-character ids, 1 KiB reply topics, 100 MP per request, no per-requester limit, no reply prefixes', () => {
    const config = loadEdgeConfig();
    assert.deepEqual(config.limits, {
      maxPayloadBytes: 8 * 1024 * 1024,
      maxConcurrentRequests: 16,
      maxConcurrentPerRequester: 0,
      maxVideoFrames: 64,
      maxDeadlineMs: 86_400_000,
      maxIdLength: 256,
      maxReplyTopicBytes: 1024,
      maxDecodedPixels: 100_000_000,
    });
    assert.deepEqual(config.replyPrefixes, []);
    assert.equal(config.offload.minFaultBudgetMs, 500);
  });

  test('values past what Node and MQTT can honour are refused with their path', () => {
    assert.throws(() => loadEdgeConfig(undefined, { limits: { maxDeadlineMs: 3e9 } }), /limits\/maxDeadlineMs/);
    assert.throws(() => loadEdgeConfig(undefined, { offload: { defaultDeadlineMs: 3e9 } }), /offload\/defaultDeadlineMs/);
    assert.throws(() => loadEdgeConfig(undefined, { limits: { maxConcurrentRequests: 70_000 } }), /limits\/maxConcurrentRequests/);
    assert.throws(() => loadEdgeConfig(undefined, { replyPrefixes: ['replies/#'] }), /replyPrefixes\/0/);
  });
});

describe('request checks', () => {
  const frame = Uint8Array.of(0xff, 0xd8, 0xff);

  test('more video frames than limits.maxVideoFrames are refused before any is looked at', () => {
    const err = refusal({ id: 'v', inputs: { video: Array.from({ length: 65 }, () => frame) } });
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.message, "'inputs.video' has 65 frames, over the limit of 64 (limits.maxVideoFrames) — send fewer frames per request");
    assert.doesNotThrow(() => toAgentRequest({ id: 'v', inputs: { video: Array.from({ length: 64 }, () => frame) } }, 'msgpack', validators));
  });

  test('deadlineMs must lie within [1 ms, limits.maxDeadlineMs]', () => {
    for (const deadlineMs of [0, -1, 0.5]) {
      assert.equal(refusal({ id: 'd', inputs: { text: 'hi' }, deadlineMs }).message, `'deadlineMs' is ${deadlineMs} ms; a deadline must be at least 1 ms — leave deadlineMs out for the agent's default`);
    }
    assert.equal(
      refusal({ id: 'd', inputs: { text: 'hi' }, deadlineMs: 3e9 }).message,
      "'deadlineMs' is 3000000000 ms, over the limit of 86400000 ms (limits.maxDeadlineMs, 24 h at most) — ask for a shorter deadline",
    );
    assert.equal(toAgentRequest({ id: 'd', inputs: { text: 'hi' }, deadlineMs: 86_400_000 }, 'msgpack', validators).request.deadlineMs, 86_400_000);
  });

  test('ids and correlation ids over limits.maxIdLength are refused, and not echoed back', () => {
    const long = 'x'.repeat(257);
    assert.equal(refusal({ id: long, inputs: { text: 'hi' } }).message, "'id' has 257 characters, over the limit of 256 (limits.maxIdLength) — use a shorter one");
    assert.match(refusal({ id: 'c', inputs: { text: 'hi' }, correlationId: long }).message, /^'correlationId' has 257 characters, over the limit of 256/);
    assert.deepEqual(envelopeOf({ id: long, correlationId: long, replyTo: 'r/1' }, 256), { id: undefined, correlationId: undefined, replyTo: 'r/1' });
  });

  test('a request whose images hold more than limits.maxDecodedPixels loses those modalities only; video frames, decoded one at a time, do not count', () => {
    const { tasks } = splitRequest({ id: 'px', inputs: { text: 'hello', image: Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), video: [frame, frame] } }, loadEdgeConfig());
    const sized = tasks.map((task) => ({
      task,
      inputSize:
        task.modality === 'text'
          ? { unit: 'text-bytes' as const, items: [{ amount: 5, bytes: 5 }] }
          : { unit: 'pixels' as const, items: task.items.map(() => ({ amount: 120_000_000, bytes: 4 })) },
    }));
    const { runnable, rejected } = enforcePixelBudget(sized, 100_000_000);
    assert.deepEqual(runnable.map((s) => s.task.modality), ['text', 'video']);
    assert.deepEqual(rejected.map((r) => r.modality), ['image']);
    assert.equal(rejected[0]!.error!.message, "the request's images hold 120.0 MP, over the limit of 100.0 MP per request (limits.maxDecodedPixels) — send smaller images");
    assert.equal(enforcePixelBudget(sized, 120_000_000).rejected.length, 0);
  });

  test('inputs.video is container bytes, a list of JPEG frames, or a device source with seconds; each form is checked as itself', () => {
    const container = Uint8Array.of(0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70);
    assert.deepEqual(toAgentRequest({ id: 'c', inputs: { video: container }, stream: false }, 'msgpack', validators).request, { id: 'c', inputs: { video: container }, stream: false });
    const json = toAgentRequest({ id: 'j', inputs: { video: Buffer.from(container).toString('base64') } }, 'json', requestValidators(limits)).request;
    assert.deepEqual(json.inputs.video, Buffer.from(container));
    const framesJson = toAgentRequest({ id: 'f', inputs: { video: [Buffer.from(frame).toString('base64')] } }, 'json', validators).request;
    assert.deepEqual(framesJson.inputs.video, [Buffer.from(frame)]);
    const source = { source: 'rtsp://camera.local/stream1', seconds: 10 };
    assert.deepEqual(toAgentRequest({ id: 's', inputs: { video: source } }, 'msgpack', validators).request.inputs.video, source);
    assert.equal(refusal({ id: 's', inputs: { video: { source: 'rtsp://camera.local/x' } } }).message, "inputs.video has no 'seconds' — a video source is { source, seconds }");
    assert.equal(refusal({ id: 's', inputs: { video: { source: '/dev/video0', seconds: 0 } } }).message, "'inputs.video.seconds' is 0; it must be more than 0");
    assert.equal(refusal({ id: 's', inputs: { video: { source: '/dev/video0', seconds: 5, fps: 30 } } }).message, "unknown field 'fps' in inputs.video (a video source has source and seconds)");
    assert.match(refusal({ id: 's', inputs: { video: 'not bytes' } }).message, /'inputs\.video' must be msgpack binary/);
    assert.match(refusal({ id: 's', inputs: { text: 'hi' }, stream: 'yes' }).message, /'stream' must be boolean/);
  });
});

describe('reply addresses', () => {
  const rules: ReplyRules = { defaultTopic: 'splitinfer/v1/dev-1/res', requestTopic: 'splitinfer/v1/dev-1/req', prefixes: [], maxTopicBytes: 64 };
  const viaPayload = (replyTo: string, r = rules) => replyRoute({}, { replyTo }, r);
  const viaProperty = (responseTopic: string, r = rules) => replyRoute({ properties: { responseTopic } }, {}, r);

  test('by default any topic of the requester is allowed, and so is this device\'s own res topic', () => {
    for (const route of [viaPayload('clients/app-7/replies'), viaProperty('clients/app-7/replies')]) assert.deepEqual(route, { route: { topic: 'clients/app-7/replies', correlationData: undefined, correlationId: undefined } });
    assert.equal(viaPayload('splitinfer/v1/dev-1/res').refused, undefined);
    assert.equal(replyRoute({}, {}, rules).route.topic, 'splitinfer/v1/dev-1/res');
  });

  test('devices\' topics, $ topics, wildcards and over-long topics are refused, named in the MQTT 5 property or in replyTo alike', () => {
    const cases: [string, RegExp][] = [
      ['splitinfer/v1/dev-2/req', /it is in the splitinfer\/v1\/ tree, where devices take requests and report status/],
      ['splitinfer/v1/dev-2/status', /it is in the splitinfer\/v1\/ tree/],
      ['splitinfer/v1/dev-1/req', /it is the request topic/],
      ['$SYS/broker/clients', /it is a \$ topic, reserved for the broker/],
      ['replies/#', /it contains a wildcard/],
      ['replies/+/x', /it contains a wildcard/],
      ['r/'.repeat(40), /it is 80 bytes, over the limit of 64 \(limits\.maxReplyTopicBytes\)/],
    ];
    for (const [topic, reason] of cases) {
      for (const routed of [viaPayload(topic), viaProperty(topic)]) {
        assert.match(routed.refused ?? '', reason, topic);
        assert.match(routed.refused!, /— reply to a topic of your own outside splitinfer\/v1\/ and \$ topics$/);
      }
    }
  });

  test('with replyPrefixes configured, only topics under them are allowed', () => {
    const strict = { ...rules, prefixes: ['apps/', 'splitinfer/v1/dev-1/replies/'] };
    assert.equal(viaProperty('apps/a/replies', strict).refused, undefined);
    assert.equal(viaPayload('splitinfer/v1/dev-1/replies/7', strict).refused, undefined);
    assert.equal(
      viaPayload('clients/app-7/replies', strict).refused,
      "reply address 'clients/app-7/replies' refused: it is not under a configured reply prefix (replyPrefixes) — reply to a topic of your own under 'apps/', 'splitinfer/v1/dev-1/replies/'",
    );
    assert.match(viaPayload('apps/#', strict).refused ?? '', /wildcard/);
  });
});
