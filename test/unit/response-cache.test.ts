/** The response cache's key and its LRU within a byte budget (cloud/response-cache.ts). */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { ModelInferResponseSchema, type ModelInferRequest } from '../../shared/gen/inference/grpc_service_pb.js';
import { int64Parameter, stringParameter } from '../../shared/infer-parameters.js';
import { contentAddressedInputs, inputDigests, responseCacheKey, ResponseCache, type SharedResponseStore } from '../../cloud/response-cache.js';
import { contentSha256 } from '../../shared/content-digest.js';
import { encodeInferInputs } from '../../shared/tensor-codec.js';
import type { Tensor } from '../../shared/tensor.js';
import { bytesTensor, float32 } from '../../shared/tensor.js';

const model = { name: 'm', version: 'fp32' };
const plain: Pick<ModelInferRequest, 'outputs' | 'parameters'> = { outputs: [], parameters: {} };
const text = (s: string) => ({ input: bytesTensor([new TextEncoder().encode(s)]) });
const key = (m: typeof model, inputs: Record<string, Tensor>, request = plain) => responseCacheKey(m, inputDigests(inputs), request);
const answer = (bytes: number) => create(ModelInferResponseSchema, { modelName: 'm', id: 'req', rawOutputContents: [new Uint8Array(bytes)], parameters: { queue_us: int64Parameter(5) } });

describe('response cache key', () => {
  test('is SHA-256 of everything that decides the answer, and nothing else', () => {
    const hello = key(model, text('hello'), plain);
    assert.match(hello, /^[0-9a-f]{64}$/);
    assert.equal(key(model, text('hello'), { outputs: [], parameters: { tenant: stringParameter('b'), deadline_ms: int64Parameter(100) } }), hello, 'tenant and deadline do not change an answer');
    const traced = { outputs: [], parameters: { traceparent: stringParameter('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01') } };
    assert.equal(key(model, text('hello'), traced), hello, "a request's trace context does not change its answer");
    const keyed = { outputs: [], parameters: { ab_key: stringParameter('device-7') } };
    assert.equal(key(model, text('hello'), keyed), hello, 'the A/B key picks a version, which the key holds already');
    const differs = [
      key(model, text('hellp'), plain),
      key({ name: 'm', version: 'int8' }, text('hello'), plain),
      key({ name: 'n', version: 'fp32' }, text('hello'), plain),
      key(model, { other: text('hello').input }, plain),
      key(model, text('hello'), { outputs: [{ name: 'result' } as ModelInferRequest['outputs'][number]], parameters: {} }),
      key(model, text('hello'), { outputs: [], parameters: { threshold: stringParameter('0.3') } }),
    ];
    assert.equal(new Set([hello, ...differs]).size, differs.length + 1, 'input bytes, version, model, input name, requested outputs and other parameters each change the key');
  });

  test('tells shapes and element boundaries apart even when the bytes are the same', () => {
    const data = new Float32Array([1, 2, 3, 4]);
    const shapes = [float32([1, 4], data), float32([2, 2], data), float32([4, 1], data)].map((t) => key(model, { x: t }, plain));
    assert.equal(new Set(shapes).size, 3);
    const split = (items: string[]) => key(model, { input: bytesTensor(items.map((s) => new TextEncoder().encode(s))) }, plain);
    assert.notEqual(split(['ab', 'c']), split(['a', 'bc']));
  });

  test("takes inputs by the SHA-256 of their raw contents, so a request naming only the digests finds the same entry", () => {
    const input = text('a large photo');
    const { inputs, rawInputContents } = encodeInferInputs(input);
    assert.equal(contentSha256(input.input), createHash('sha256').update(rawInputContents[0]!).digest('hex'), 'the digest is of raw_input_contents');
    inputs[0]!.parameters = { content_sha256: stringParameter(contentSha256(input.input)) };
    const digests = contentAddressedInputs({ inputs, rawInputContents: [] })!;
    assert.equal(responseCacheKey(model, digests, plain), key(model, input));
    assert.equal(contentAddressedInputs({ inputs: encodeInferInputs(input).inputs, rawInputContents }), undefined, 'an ordinary request');
  });

  test('refuses a content-addressed request that also sends contents or names a malformed digest', () => {
    const { inputs, rawInputContents } = encodeInferInputs(text('x'));
    inputs[0]!.parameters = { content_sha256: stringParameter('a'.repeat(64)) };
    assert.throws(() => contentAddressedInputs({ inputs, rawInputContents }), /sends no contents.*raw_input_contents/);
    inputs[0]!.parameters = { content_sha256: stringParameter('not-hex') };
    assert.throws(() => contentAddressedInputs({ inputs, rawInputContents: [] }), (err: Error & { code?: string }) => err.code === 'INVALID_ARGUMENT' && /input 'input' does not/.test(err.message));
  });
});

describe('response cache', () => {
  test("answers a stored response with the caller's id and without the stored run's parameters", async () => {
    const cache = new ResponseCache(1 << 20);
    cache.store('k', answer(100));
    const hit = (await cache.lookup('k', 'caller-7'))!;
    assert.equal(hit.id, 'caller-7');
    assert.deepEqual(hit.parameters, {});
    assert.equal(hit.rawOutputContents[0]!.length, 100);
    assert.equal(await cache.lookup('other', 'x'), undefined);
  });

  test('evicts the least recently used entries to stay within its byte budget, and keeps nothing larger than the budget', async () => {
    const cache = new ResponseCache(3_000);
    cache.store('a', answer(700));
    cache.store('b', answer(700));
    cache.store('c', answer(700));
    assert.ok(await cache.lookup('a', ''), 'a is used, so b is now the least recent');
    cache.store('d', answer(700));
    assert.equal(cache.size, 3);
    assert.equal(await cache.lookup('b', ''), undefined, 'b was evicted');
    assert.ok((await cache.lookup('a', '')) && (await cache.lookup('c', '')) && (await cache.lookup('d', '')));
    assert.ok(cache.bytes <= 3_000);
    cache.store('huge', answer(5_000));
    assert.equal(await cache.lookup('huge', ''), undefined);
    assert.equal(cache.size, 3, 'an oversized answer evicts nothing');
  });

  test('keeps answers in the shared tier too, and keeps in-process what a miss finds there', async () => {
    const held = new Map<string, Uint8Array>();
    const shared: SharedResponseStore = { get: async (k) => held.get(k), set: (k, bytes) => void held.set(k, bytes), close: async () => {} };
    const first = new ResponseCache(1 << 20, shared);
    first.store('k', answer(100));
    assert.equal(held.get('k')?.length, first.bytes - 'k'.length - 160, 'the same bytes in both tiers');
    const replica = new ResponseCache(1 << 20, shared);
    assert.equal((await replica.lookup('k', 'r'))?.rawOutputContents[0]?.length, 100, 'another replica finds it in the shared tier');
    held.clear();
    assert.ok(await replica.lookup('k', 'r'), 'and then in its own');
    const sharedOnly = new ResponseCache(0, shared);
    sharedOnly.store('s', answer(10));
    assert.equal(sharedOnly.size, 0);
    assert.ok(await sharedOnly.lookup('s', ''));
  });
});
