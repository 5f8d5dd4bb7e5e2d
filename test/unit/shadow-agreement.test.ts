import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { ModelInferResponseSchema } from '../../shared/gen/inference/grpc_service_pb.js';
import { encodeInferOutputs } from '../../shared/tensor-codec.js';
import { float32, utf8Tensor, type Tensor } from '../../shared/tensor.js';
import { sameAnswer } from '../../cloud/shadow.js';

const answer = (tensors: Record<string, Tensor>) => create(ModelInferResponseSchema, encodeInferOutputs(tensors));
const intent = (label: string, probabilities: number[], runnerUp: string) =>
  answer({
    intent: utf8Tensor(label),
    probabilities: float32([1, probabilities.length], Float32Array.from(probabilities)),
    result: utf8Tensor(JSON.stringify({ intent: label, confidence: Math.max(...probabilities), topK: [{ intent: label }, { intent: runnerUp }] })),
  });

test('answers agree on the same top-1 and labels, whatever the scores and the runners-up in the result JSON', () => {
  assert.equal(sameAnswer(intent('refund', [0.9, 0.05, 0.05], 'grades'), intent('refund', [0.6, 0.3, 0.1], 'payment_failed')), true);
});

test('a different label, top-1 element or set of outputs disagrees', () => {
  assert.equal(sameAnswer(intent('refund', [0.9, 0.1, 0], 'grades'), intent('grades', [0.9, 0.1, 0], 'grades')), false);
  assert.equal(sameAnswer(intent('refund', [0.9, 0.1, 0], 'grades'), intent('refund', [0.1, 0.9, 0], 'grades')), false);
  assert.equal(sameAnswer(answer({ a: float32([2], Float32Array.of(1, 0)) }), answer({ b: float32([2], Float32Array.of(1, 0)) })), false);
});

test('a result JSON alone is compared with its numbers dropped', () => {
  const ocr = (text: string, score: number) => answer({ result: utf8Tensor(JSON.stringify({ lines: [{ text, score }] })) });
  assert.equal(sameAnswer(ocr('Invoice 42', 0.98), ocr('Invoice 42', 0.91)), true);
  assert.equal(sameAnswer(ocr('Invoice 42', 0.98), ocr('Invoice 4Z', 0.98)), false);
});
