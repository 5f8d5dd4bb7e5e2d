/**
 * How a splitinfer pipeline travels over KServe v2, in one place for the
 * cloud (which serves it), the edge (which offloads to it) and the client
 * this package ships: one BYTES input `input` holding media bytes or UTF-8
 * text, the JSON answer in the BYTES output `result`, and, on
 * ModelStreamInfer, a failed request answered in-stream with its id.
 *
 * Triton's stream extension reports a failure only as free text in
 * `error_message`. The status code travels as the response parameter
 * `error_code` (a gRPC status name), which any KServe/Triton client passes
 * through untouched; the message also starts with `"<CODE>: "` for readers of
 * the text alone. A failure from a server that sends neither is UNKNOWN, so
 * it is never mistaken for a sign that the cloud is down.
 */
import { createHash } from 'node:crypto';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { InferError, toInferError, type ErrorCode } from './errors.js';
import {
  ModelInferRequest_InferInputTensorSchema,
  ModelInferResponseSchema,
  ModelStreamInferResponseSchema,
  type ModelInferRequest,
  type ModelInferRequestSchema,
  type ModelInferResponse,
  type ModelStreamInferResponse,
} from './gen/inference/grpc_service_pb.js';
import { boolParameterValue, int64Parameter, numberParameter, ParameterNames, stringParameter, stringParameterValue } from './infer-parameters.js';
import { decodeInferOutputs, encodeInferInputs } from './tensor-codec.js';
import { bytesTensor, type Tensor, type TensorMeta } from './tensor.js';

/** The single input a pipeline model takes: media bytes or UTF-8 text, one element. */
export const pipelineInput: TensorMeta = { name: 'input', type: 'bytes', shape: [1] };
/** The JSON result every pipeline returns besides its typed outputs. */
export const pipelineResult: TensorMeta = { name: 'result', type: 'bytes', shape: [1] };

export interface PipelineRequestOptions {
  id: string;
  /** Sent as the `deadline_ms` parameter. */
  deadlineMs?: number;
  tenant?: string;
  /** Ask for the JSON `result` only, not the typed outputs that repeat it (what the edge needs). */
  resultOnly?: boolean;
}

export type PipelineRequest = MessageInitShape<typeof ModelInferRequestSchema>;

export function pipelineRequest(model: string, input: Uint8Array, options: PipelineRequestOptions): PipelineRequest {
  const parameters: PipelineRequest['parameters'] = {};
  if (options.deadlineMs) parameters[ParameterNames.deadlineMs] = int64Parameter(options.deadlineMs);
  if (options.tenant) parameters[ParameterNames.tenant] = stringParameter(options.tenant);
  return {
    modelName: model,
    id: options.id,
    parameters,
    ...encodeInferInputs({ [pipelineInput.name]: bytesTensor([input]) }),
    ...(options.resultOnly ? { outputs: [{ name: pipelineResult.name }] } : {}),
  };
}

/**
 * The content-addressed form of a request with raw contents: each input
 * names the SHA-256 of its raw contents (`content_sha256`, the digest the
 * cloud's cache key uses; shared/content-digest.ts) and no contents travel.
 * The cloud answers from its cache, or with `content_needed` (see below).
 * `digests`: already computed (contentSha256 of each input), in input order.
 */
export function digestOnlyRequest(request: PipelineRequest, digests?: readonly string[]): PipelineRequest {
  const raws = request.rawInputContents ?? [];
  return {
    ...request,
    inputs: (request.inputs ?? []).map((input, i) =>
      create(ModelInferRequest_InferInputTensorSchema, {
        ...input,
        parameters: { ...input.parameters, [ParameterNames.contentSha256]: stringParameter(digests?.[i] ?? createHash('sha256').update(raws[i]!).digest('hex')) },
      }),
    ),
    rawInputContents: [],
  };
}

/** Whether the cloud answered a content-addressed request with "no answer held for it: send the contents". */
export function contentNeeded(response: ModelInferResponse): boolean {
  return boolParameterValue(response.parameters, ParameterNames.contentNeeded) === true;
}

export interface PipelineAnswer {
  id: string;
  /** The pipeline's JSON `result` output, parsed. */
  result: Record<string, unknown>;
  /** Every output returned, `result` included. */
  tensors: Record<string, Tensor>;
  /** The server's own queue and compute time, from response parameters (0 when it does not say). */
  queueUs: number;
  computeUs: number;
}

/** Reads a pipeline's answer; INTERNAL when it has no `result` (the model is not a splitinfer pipeline). */
export function readPipelineAnswer(response: ModelInferResponse): PipelineAnswer {
  const tensors = decodeInferOutputs(response);
  const resultBytes = tensors[pipelineResult.name]?.data as Uint8Array[] | undefined;
  if (!resultBytes?.[0]) {
    throw new InferError('INTERNAL', `the answer to ${response.id || 'a request'} from ${response.modelName} has no '${pipelineResult.name}' output — is it a splitinfer pipeline?`);
  }
  return {
    id: response.id,
    result: JSON.parse(new TextDecoder().decode(resultBytes[0])) as Record<string, unknown>,
    tensors,
    queueUs: numberParameter(response.parameters, ParameterNames.queueUs) ?? 0,
    computeUs: numberParameter(response.parameters, ParameterNames.computeUs) ?? 0,
  };
}

const errorCodes: ReadonlySet<string> = new Set<ErrorCode>([
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'FAILED_PRECONDITION',
  'INTERNAL',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'UNKNOWN',
]);

/** The in-stream answer to a failed request: its id, the code as a parameter, the message prefixed with the code. */
export function streamFailure(request: Pick<ModelInferRequest, 'modelName' | 'modelVersion' | 'id'>, err: unknown): ModelStreamInferResponse {
  const e = toInferError(err);
  return create(ModelStreamInferResponseSchema, {
    errorMessage: `${e.code}: ${e.message}`,
    inferResponse: create(ModelInferResponseSchema, {
      modelName: request.modelName,
      modelVersion: request.modelVersion,
      id: request.id,
      parameters: {
        [ParameterNames.errorCode]: stringParameter(e.code),
        ...(e.retryAfterMs === undefined ? {} : { [ParameterNames.retryAfterMs]: int64Parameter(e.retryAfterMs) }),
      },
    }),
  });
}

/** An in-stream failure as an InferError: the `error_code` parameter, else a `"<CODE>: "` prefix, else UNKNOWN with the text as sent. */
export function readStreamFailure(message: ModelStreamInferResponse): InferError {
  const parameters = message.inferResponse?.parameters ?? {};
  const declared = stringParameterValue(parameters, ParameterNames.errorCode);
  const prefix = /^([A-Z_]+): ([\s\S]*)$/.exec(message.errorMessage);
  const prefixed = prefix && errorCodes.has(prefix[1]!) ? (prefix[1] as ErrorCode) : undefined;
  const code = declared && errorCodes.has(declared) ? (declared as ErrorCode) : (prefixed ?? 'UNKNOWN');
  const text = prefixed === code ? prefix![2]! : message.errorMessage;
  return new InferError(code, `cloud: ${text}`);
}
