import { create } from '@bufbuild/protobuf';
import {
  ModelInferResponseSchema,
  type ModelInferRequest,
  type ModelInferResponse,
} from '../shared/gen/inference/grpc_service_pb.js';
import { InferError } from '../shared/errors.js';
import { int64Parameter, numberParameter, ParameterNames } from '../shared/infer-parameters.js';
import { pipelineInput, pipelineResult } from '../shared/pipeline-wire.js';
import { decodeInferInputs, encodeInferOutputs, toV2Datatype } from '../shared/tensor-codec.js';
import { elementCount, utf8Tensor, type Tensor, type TensorMeta } from '../shared/tensor.js';
import type { ModelRepository, ServedModel } from './repository.js';

export interface InferOutcome {
  response: ModelInferResponse;
  served: ServedModel;
  queueUs: number;
  computeUs: number;
}

/** Runs one KServe v2 request against the repository; throws InferError on anything a caller must fix. */
export async function infer(repository: ModelRepository, request: ModelInferRequest): Promise<InferOutcome> {
  const served = repository.resolve(request.modelName, request.modelVersion);
  const inputs = decodeInferInputs(request);
  const deadlineMs = numberParameter(request.parameters, ParameterNames.deadlineMs);
  const deadline = deadlineMs === undefined ? undefined : { at: performance.now() + deadlineMs, what: `the request's deadline_ms ${deadlineMs}` };
  const timed =
    served.kind === 'pipeline'
      ? await served.queue.run(async () => {
          const out = await served.loaded.run(pipelineInputBytes(served.name, inputs));
          return { ...out.tensors, [pipelineResult.name]: utf8Tensor(JSON.stringify(out.result)) };
        }, deadline)
      : await served.queue.run(async () => (await served.session.run(checkGraphInputs(served.name, served.session.inputs, inputs))).outputs, deadline);
  const queueUs = Math.round(timed.queueMs * 1000);
  const computeUs = Math.round(timed.computeMs * 1000);
  const outputs = selectOutputs(served.name, timed.value, request.outputs.map((o) => o.name));
  const response = create(ModelInferResponseSchema, {
    modelName: served.name,
    modelVersion: served.version,
    id: request.id,
    parameters: { [ParameterNames.queueUs]: int64Parameter(queueUs), [ParameterNames.computeUs]: int64Parameter(computeUs) },
    ...encodeInferOutputs(outputs),
  });
  return { response, served, queueUs, computeUs };
}

function pipelineInputBytes(model: string, inputs: Record<string, Tensor>): Uint8Array {
  const entries = Object.entries(inputs);
  const [name, tensor] = entries[0] ?? [];
  if (entries.length !== 1 || !tensor) {
    throw new InferError('INVALID_ARGUMENT', `model ${model}: expected exactly one input '${pipelineInput.name}' (BYTES, shape [1]), got ${entries.length} inputs`);
  }
  if (name !== pipelineInput.name) {
    throw new InferError('INVALID_ARGUMENT', `model ${model}: unknown input '${name}'; a pipeline takes one input '${pipelineInput.name}' (BYTES, shape [1])`);
  }
  if (tensor.type !== 'bytes' || elementCount(tensor.dims) !== 1) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `model ${model}: input '${name}' must be BYTES with shape [1] holding the media bytes or UTF-8 text, got ${toV2Datatype(tensor.type)} ${JSON.stringify(tensor.dims)}; send one item per request (ModelStreamInfer multiplexes many)`,
    );
  }
  return (tensor.data as Uint8Array[])[0]!;
}

function checkGraphInputs(model: string, expected: readonly TensorMeta[], inputs: Record<string, Tensor>): Record<string, Tensor> {
  const describe = (m: TensorMeta) => `${m.name} ${toV2Datatype(m.type)} ${JSON.stringify(m.shape)}`;
  for (const name of Object.keys(inputs)) {
    if (!expected.some((m) => m.name === name)) {
      throw new InferError('INVALID_ARGUMENT', `model ${model}: unknown input '${name}'; expected inputs: ${expected.map(describe).join(', ')}`);
    }
  }
  for (const meta of expected) {
    const tensor = inputs[meta.name];
    if (!tensor) throw new InferError('INVALID_ARGUMENT', `model ${model}: missing input '${meta.name}' (${describe(meta)})`);
    const shapeFits = tensor.dims.length === meta.shape.length && meta.shape.every((d, i) => d === -1 || d === tensor.dims[i]);
    if (tensor.type !== meta.type || !shapeFits) {
      throw new InferError(
        'INVALID_ARGUMENT',
        `model ${model}: input '${meta.name}' is ${toV2Datatype(tensor.type)} ${JSON.stringify(tensor.dims)}, expected ${toV2Datatype(meta.type)} ${JSON.stringify(meta.shape)} (-1 = any size); see ModelMetadata`,
      );
    }
  }
  return inputs;
}

function selectOutputs(model: string, outputs: Record<string, Tensor>, requested: string[]): Record<string, Tensor> {
  if (requested.length === 0) return outputs;
  const selected: Record<string, Tensor> = {};
  for (const name of requested) {
    const tensor = outputs[name];
    if (!tensor) throw new InferError('INVALID_ARGUMENT', `model ${model}: no output '${name}'; outputs are: ${Object.keys(outputs).join(', ')}`);
    selected[name] = tensor;
  }
  return selected;
}
