import { create } from '@bufbuild/protobuf';
import {
  ModelInferResponseSchema,
  type ModelInferRequest,
  type ModelInferResponse,
} from '../shared/gen/inference/grpc_service_pb.js';
import { InferError } from '../shared/errors.js';
import { boolParameter, boolParameterValue, int64Parameter, numberParameter, ParameterNames, stringParameterValue } from '../shared/infer-parameters.js';
import { recordBatches } from '../shared/ort/batching-session.js';
import { pipelineInput, pipelineResult } from '../shared/pipeline-wire.js';
import { decodeInferInputs, encodeInferOutputs, toV2Datatype } from '../shared/tensor-codec.js';
import { elementCount, utf8Tensor, type Tensor, type TensorMeta } from '../shared/tensor.js';
import type { SequenceCapability } from '../shared/handlers/handler.js';
import type { QueueTicket, RunDeadline, TimedRun } from '../shared/run-queue.js';
import { readChunkRequest } from '../shared/video/chunk-wire.js';
import type { ModelRepository, ServedModel } from './repository.js';
import { contentAddressedInputs, inputDigests, responseCacheKey, type ResponseCache } from './response-cache.js';
import type { SequenceStore } from './sequences.js';

export interface InferOutcome {
  response: ModelInferResponse;
  served: ServedModel;
  queueUs: number;
  computeUs: number;
  /** Requests that shared this one's session run (1: alone; 0: answered from the cache). */
  batchSize: number;
  /** Set when the response cache was consulted: whether it answered, and the cache's own time (lookup, and insert on a miss). */
  cache?: { hit: boolean; us: number };
  /** Set for a content-addressed request (input digests only): whether the cache held its answer; if not, the response says `content_needed`. */
  contentFound?: boolean;
}

/**
 * Runs one KServe v2 request against the repository, or answers it from
 * `cache` when one is given and the request allows it; a content-addressed
 * request (input digests only, response-cache.ts) is answered from the cache
 * or with `content_needed`. `ticket` places it in its model's waiting line
 * by tenant and priority (cloud/tenants.ts); once `signal` aborts (the caller
 * went away), a run still waiting for its model leaves the queue without
 * running. Throws InferError on anything a
 * caller must fix.
 */
export async function infer(
  repository: ModelRepository,
  sequences: SequenceStore,
  request: ModelInferRequest,
  cache?: ResponseCache,
  ticket?: QueueTicket,
  signal?: AbortSignal,
): Promise<InferOutcome> {
  // The version is held until the answer is out, so a reload closes the one it replaced only after this request.
  const abKey = stringParameterValue(request.parameters, ParameterNames.abKey) ?? stringParameterValue(request.parameters, ParameterNames.tenant);
  const lease = repository.route(request.modelName, request.modelVersion, abKey);
  try {
    return await inferOn(lease.served, sequences, request, cache, ticket, signal);
  } finally {
    lease.release();
  }
}

async function inferOn(served: ServedModel, sequences: SequenceStore, request: ModelInferRequest, cache: ResponseCache | undefined, ticket: QueueTicket | undefined, signal: AbortSignal | undefined): Promise<InferOutcome> {
  const started = performance.now();
  const digestsOnly = contentAddressedInputs(request);
  const inputs = digestsOnly ? {} : decodeInferInputs(request);
  const sequenceModel = served.kind === 'pipeline' && served.loaded.handler.sequence !== undefined;
  const cacheKey =
    cache && !sequenceModel && boolParameterValue(request.parameters, ParameterNames.cache) !== false
      ? responseCacheKey({ name: served.name, version: `${served.version}@${served.revision}` }, digestsOnly ?? inputDigests(inputs), request)
      : undefined;
  if (cache && cacheKey) {
    const response = await cache.lookup(cacheKey, request.id);
    if (response) {
      const us = Math.round((performance.now() - started) * 1000);
      response.parameters = {
        [ParameterNames.queueUs]: int64Parameter(0),
        [ParameterNames.computeUs]: int64Parameter(us),
        [ParameterNames.batchSize]: int64Parameter(0),
        [ParameterNames.cacheHit]: boolParameter(true),
      };
      return { response, served, queueUs: 0, computeUs: us, batchSize: 0, cache: { hit: true, us }, ...(digestsOnly ? { contentFound: true } : {}) };
    }
  }
  if (digestsOnly) {
    // Not a miss of the cache's (the full request that follows is): nothing ran, and the edge now sends the contents.
    const us = Math.round((performance.now() - started) * 1000);
    const response = create(ModelInferResponseSchema, {
      modelName: served.name,
      modelVersion: served.version,
      id: request.id,
      parameters: { [ParameterNames.queueUs]: int64Parameter(0), [ParameterNames.computeUs]: int64Parameter(us), [ParameterNames.contentNeeded]: boolParameter(true) },
    });
    return { response, served, queueUs: 0, computeUs: us, batchSize: 0, contentFound: false };
  }
  const lookupUs = (performance.now() - started) * 1000;
  const deadline = requestDeadline(request);
  const sequence = served.kind === 'pipeline' ? served.loaded.handler.sequence : undefined;
  // Time in a batcher's queue (waiting for company or the worker) is queue time, not compute.
  const { value: timed, batch } = await recordBatches(() =>
    served.kind === 'graph'
      ? served.queue.run(async () => (await served.session.run(checkGraphInputs(served.name, served.session.inputs, inputs))).outputs, deadline, undefined, ticket, signal)
      : sequence
        ? inferChunk(served, sequence, sequences, request, inputs, deadline, ticket, signal)
        : served.queue.run(
            async () => {
              const out = await served.loaded.run(pipelineInputBytes(served.name, inputs));
              return { ...out.tensors, [pipelineResult.name]: utf8Tensor(JSON.stringify(out.result)) };
            },
            deadline,
            undefined,
            ticket,
            signal,
          ),
  );
  const queueUs = Math.round((timed.queueMs + batch.waitMs) * 1000);
  const computeUs = Math.max(0, Math.round((timed.computeMs - batch.waitMs) * 1000));
  const outputs = selectOutputs(served.name, timed.value, request.outputs.map((o) => o.name));
  const response = create(ModelInferResponseSchema, {
    modelName: served.name,
    modelVersion: served.version,
    id: request.id,
    parameters: {
      [ParameterNames.queueUs]: int64Parameter(queueUs),
      [ParameterNames.computeUs]: int64Parameter(computeUs),
      [ParameterNames.batchSize]: int64Parameter(batch.batchSize),
      ...(cacheKey ? { [ParameterNames.cacheHit]: boolParameter(false) } : {}),
    },
    ...encodeInferOutputs(outputs),
  });
  if (!cache || !cacheKey) return { response, served, queueUs, computeUs, batchSize: batch.batchSize };
  const insertStarted = performance.now();
  cache.store(cacheKey, response);
  return { response, served, queueUs, computeUs, batchSize: batch.batchSize, cache: { hit: false, us: Math.round(lookupUs + (performance.now() - insertStarted) * 1000) } };
}

/**
 * One chunk of a sequence model (shared/video/chunk-wire.ts): through the
 * sequence store when it names a sequence, so it runs after the chunks before
 * it with the state they left; alone when it does not.
 */
async function inferChunk(
  served: Extract<ServedModel, { kind: 'pipeline' }>,
  capability: SequenceCapability,
  sequences: SequenceStore,
  request: ModelInferRequest,
  inputs: Record<string, Tensor>,
  deadline: RunDeadline | undefined,
  ticket: QueueTicket | undefined,
  signal: AbortSignal | undefined,
): Promise<TimedRun<Record<string, Tensor>>> {
  const chunk = readChunkRequest(served.name, request, inputs);
  const interval = chunk.frameIntervalMs;
  const run = async (index: number, previous?: Float32Array, lastTimeMs?: number) => {
    const first = lastTimeMs === undefined ? 0 : lastTimeMs + interval;
    const timesMs = chunk.timesMs ?? chunk.frames.map((_, i) => first + i * interval);
    const timed = await served.queue.run(() => capability.runChunk({ items: chunk.frames, timesMs, index, previous, weights: chunk.weights }, served.loaded.context), deadline, undefined, ticket, signal);
    return { timed, result: timed.value.result, last: timed.value.last, lastTimeMs: timesMs[timesMs.length - 1]! };
  };
  const answered = (timed: TimedRun<{ result: object; tensors: Record<string, Tensor> }>, summary?: object) => ({
    ...timed,
    value: { ...timed.value.tensors, [pipelineResult.name]: utf8Tensor(JSON.stringify(summary ? { ...timed.value.result, summary } : timed.value.result)) },
  });
  if (!chunk.sequence) return answered((await run(0)).timed);
  const tenant = stringParameterValue(request.parameters, ParameterNames.tenant) ?? '';
  const { outcome, summary } = await sequences.run({ tenant, model: served.name, id: chunk.sequence.id }, chunk.sequence, capability.summarizer, (at) =>
    run(at.index, at.previous, at.lastTimeMs),
  );
  return answered(outcome.timed, summary);
}

/**
 * When a request stops being worth starting: the earlier of our
 * `deadline_ms` and Triton's `timeout` (microseconds), both counted from
 * now; a request still queued then leaves with DEADLINE_EXCEEDED.
 */
export function requestDeadline(request: Pick<ModelInferRequest, 'parameters'>, now = performance.now()): RunDeadline | undefined {
  const deadlineMs = numberParameter(request.parameters, ParameterNames.deadlineMs);
  const timeoutUs = numberParameter(request.parameters, ParameterNames.timeoutUs);
  const sources = [
    ...(deadlineMs === undefined ? [] : [{ at: now + deadlineMs, what: `the request's deadline_ms ${deadlineMs}` }]),
    // Triton reads timeout 0 as none.
    ...(timeoutUs === undefined || timeoutUs <= 0 ? [] : [{ at: now + timeoutUs / 1000, what: `the request's timeout ${timeoutUs} µs` }]),
  ];
  return sources.sort((a, b) => a.at - b.at)[0];
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
