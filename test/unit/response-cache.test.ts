/** The response cache's key and its LRU within a byte budget (cloud/response-cache.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { ModelInferResponseSchema, type ModelInferRequest } from '../../shared/gen/inference/grpc_service_pb.js';
import { int64Parameter, stringParameter } from '../../shared/infer-parameters.js';
import { responseCacheKey, ResponseCache } from '../../cloud/response-cache.js';
import { bytesTensor, float32 } from '../../shared/tensor.js';

const model = { name: 'm', version: 'fp32' };
const plain: Pick<ModelInferRequest, 'outputs' | 'parameters'> = { outputs: [], parameters: {} };
const text = (s: string) => ({ input: bytesTensor([new TextEncoder().encode(s)]) });
const answer = (bytes: number) => create(ModelInferResponseSchema, { modelName: 'm', id: 'req', rawOutputContents: [new Uint8Array(bytes)], parameters: { queue_us: int64Parameter(5) } });

describe('response cache key', () => {
  test('is SHA-256 of everything that decides the answer, and nothing else', () => {
    const key = responseCacheKey(model, text('hello'), plain);
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(responseCacheKey(model, text('hello'), { outputs: [], parameters: { tenant: stringParameter('b'), deadline_ms: int64Parameter(100) } }), key, 'tenant and deadline do not change an answer');
    const traced = { outputs: [], parameters: { traceparent: stringParameter('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01') } };
    assert.equal(responseCacheKey(model, text('hello'), traced), key, "a request's trace context does not change its answer");
    const differs = [
      responseCacheKey(model, text('hellp'), plain),
      responseCacheKey({ name: 'm', version: 'int8' }, text('hello'), plain),
      responseCacheKey({ name: 'n', version: 'fp32' }, text('hello'), plain),
      responseCacheKey(model, { other: text('hello').input }, plain),
      responseCacheKey(model, text('hello'), { outputs: [{ name: 'result' } as ModelInferRequest['outputs'][number]], parameters: {} }),
      responseCacheKey(model, text('hello'), { outputs: [], parameters: { threshold: stringParameter('0.3') } }),
    ];
    assert.equal(new Set([key, ...differs]).size, differs.length + 1, 'input bytes, version, model, input name, requested outputs and other parameters each change the key');
  });

  test('tells shapes and element boundaries apart even when the bytes are the same', () => {
    const data = new Float32Array([1, 2, 3, 4]);
    const shapes = [float32([1, 4], data), float32([2, 2], data), float32([4, 1], data)].map((t) => responseCacheKey(model, { x: t }, plain));
    assert.equal(new Set(shapes).size, 3);
    const split = (items: string[]) => responseCacheKey(model, { input: bytesTensor(items.map((s) => new TextEncoder().encode(s))) }, plain);
    assert.notEqual(split(['ab', 'c']), split(['a', 'bc']));
  });
});

describe('response cache', () => {
  test("answers a stored response with the caller's id and without the stored run's parameters", () => {
    const cache = new ResponseCache(1 << 20);
    cache.store('k', answer(100));
    const hit = cache.lookup('k', 'caller-7')!;
    assert.equal(hit.id, 'caller-7');
    assert.deepEqual(hit.parameters, {});
    assert.equal(hit.rawOutputContents[0]!.length, 100);
    assert.equal(cache.lookup('other', 'x'), undefined);
  });

  test('evicts the least recently used entries to stay within its byte budget, and keeps nothing larger than the budget', () => {
    const cache = new ResponseCache(3_000);
    cache.store('a', answer(700));
    cache.store('b', answer(700));
    cache.store('c', answer(700));
    assert.ok(cache.lookup('a', ''), 'a is used, so b is now the least recent');
    cache.store('d', answer(700));
    assert.equal(cache.size, 3);
    assert.equal(cache.lookup('b', ''), undefined, 'b was evicted');
    assert.ok(cache.lookup('a', '') && cache.lookup('c', '') && cache.lookup('d', ''));
    assert.ok(cache.bytes <= 3_000);
    cache.store('huge', answer(5_000));
    assert.equal(cache.lookup('huge', ''), undefined);
    assert.equal(cache.size, 3, 'an oversized answer evicts nothing');
  });
});
