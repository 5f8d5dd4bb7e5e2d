/**
 * The pipeline wire convention shared by the cloud, the edge and the client:
 * request shape, result reading, and how an in-stream failure carries its
 * status code (a parameter a KServe/Triton client passes through, the
 * message prefix as a fallback, UNKNOWN for a foreign server's free text).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { InferError } from '../../shared/errors.js';
import { ModelInferResponseSchema, ModelStreamInferResponseSchema } from '../../shared/gen/inference/grpc_service_pb.js';
import { numberParameter, ParameterNames, stringParameterValue } from '../../shared/infer-parameters.js';
import { pipelineRequest, readPipelineAnswer, readStreamFailure, streamFailure } from '../../shared/pipeline-wire.js';
import { encodeInferOutputs } from '../../shared/tensor-codec.js';
import { bytesTensor, utf8Tensor } from '../../shared/tensor.js';

const request = { modelName: 'image-ocr', modelVersion: '1', id: 'r1#4' };

describe('pipeline wire convention', () => {
  test('a request carries one BYTES input, the deadline and tenant as parameters, and asks for result only when told', () => {
    const full = pipelineRequest('text-intent', new TextEncoder().encode('hi'), { id: 'a', deadlineMs: 250, tenant: 'acme' });
    assert.deepEqual(full.inputs?.map((i) => [i.name, i.datatype, i.shape]), [['input', 'BYTES', [1n]]]);
    assert.equal(numberParameter(create(ModelInferResponseSchema, { parameters: full.parameters }).parameters, ParameterNames.deadlineMs), 250);
    assert.equal(full.outputs, undefined, 'every output by default');
    const lean = pipelineRequest('text-intent', new Uint8Array([1]), { id: 'b', resultOnly: true });
    assert.deepEqual(lean.outputs?.map((o) => o.name), ['result']);
    assert.deepEqual(Object.keys(lean.parameters ?? {}), []);
  });

  test("an answer's JSON result is parsed; an answer without one is INTERNAL naming the model", () => {
    const response = create(ModelInferResponseSchema, { modelName: 'text-intent', id: 'x', ...encodeInferOutputs({ result: utf8Tensor(JSON.stringify({ intent: 'refund' })) }) });
    assert.deepEqual(readPipelineAnswer(response).result, { intent: 'refund' });
    const foreign = create(ModelInferResponseSchema, { modelName: 'resnet', id: 'y', ...encodeInferOutputs({ logits: bytesTensor([new Uint8Array(4)]) }) });
    assert.throws(() => readPipelineAnswer(foreign), (err: InferError) => err.code === 'INTERNAL' && /from resnet has no 'result' output — is it a splitinfer pipeline\?/.test(err.message));
  });

  test('an in-stream failure carries its code as a parameter and as the message prefix, and reads back as the same error', () => {
    const message = streamFailure(request, new InferError('RESOURCE_EXHAUSTED', 'queue for image-ocr is full (64 waiting)'));
    assert.equal(message.errorMessage, 'RESOURCE_EXHAUSTED: queue for image-ocr is full (64 waiting)');
    assert.equal(message.inferResponse?.id, 'r1#4');
    assert.equal(stringParameterValue(message.inferResponse!.parameters, ParameterNames.errorCode), 'RESOURCE_EXHAUSTED');
    const read = readStreamFailure(message);
    assert.deepEqual([read.code, read.message], ['RESOURCE_EXHAUSTED', 'cloud: queue for image-ocr is full (64 waiting)']);
  });

  test('an in-stream refusal for load carries its retry hint as retry_after_ms; other failures carry none', () => {
    const refused = streamFailure(request, new InferError('RESOURCE_EXHAUSTED', 'tenant acme is over its request rate', { retryAfterMs: 120 }));
    assert.equal(numberParameter(refused.inferResponse!.parameters, ParameterNames.retryAfterMs), 120);
    assert.equal(streamFailure(request, new InferError('NOT_FOUND', 'no model x')).inferResponse!.parameters[ParameterNames.retryAfterMs], undefined);
  });

  test('the parameter wins over the text; a known prefix alone still gives the code; free text from a foreign server is UNKNOWN', () => {
    const withParameter = streamFailure(request, new InferError('NOT_FOUND', 'no model x'));
    withParameter.errorMessage = 'something else entirely';
    assert.equal(readStreamFailure(withParameter).code, 'NOT_FOUND');
    const prefixOnly = create(ModelStreamInferResponseSchema, { errorMessage: 'UNAVAILABLE: draining', inferResponse: { id: 'p' } });
    assert.deepEqual([readStreamFailure(prefixOnly).code, readStreamFailure(prefixOnly).message], ['UNAVAILABLE', 'cloud: draining']);
    const triton = create(ModelStreamInferResponseSchema, { errorMessage: "[request id: 7] unexpected shape for input 'input', model expects [-1,3]", inferResponse: { id: '7' } });
    const read = readStreamFailure(triton);
    assert.equal(read.code, 'UNKNOWN');
    assert.equal(read.message, "cloud: [request id: 7] unexpected shape for input 'input', model expects [-1,3]");
    const oddPrefix = create(ModelStreamInferResponseSchema, { errorMessage: 'WARNING: odd', inferResponse: { id: 'o' } });
    assert.equal(readStreamFailure(oddPrefix).code, 'UNKNOWN');
  });
});
