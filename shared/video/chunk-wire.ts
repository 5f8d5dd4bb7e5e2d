/**
 * How a chunk of video frames travels over KServe v2 to the `video-encoder`
 * sequence model, for the cloud (which serves it), the edge (which offloads
 * chunks on its ModelStreamInfer stream) and any generic KServe/Triton client:
 *
 * - input `input`: BYTES [N], 1 ≤ N ≤ 64, each an encoded JPEG/PNG/WebP frame;
 * - input `times_ms` (optional): FP64 [N], the frames' times in the media, in
 *   order; without it frame i sits `frame_interval_ms` (default 250, i.e. 4 fps)
 *   after the one before, the first one interval after the sequence's last frame
 *   (at 0 for a sequence's first chunk or a one-off chunk);
 * - input `frame_weights` (optional): FP64 [N], how many sampled frames each
 *   frame stands for (a filter that dropped near-copies sends their count with
 *   the frame it kept); the chunk's labels and embedding are weighted means;
 * - parameters, as Triton's sequence batcher reads them: `sequence_id` (string or
 *   integer), `sequence_start`, `sequence_end` (bool), besides `tenant` and
 *   `deadline_ms`. Without `sequence_id` the chunk is a one-off: answered, no
 *   state kept;
 * - output `result`: BYTES JSON, the ChunkAnswer, plus `summary` (ClipSummary)
 *   on the chunk that ends a sequence; typed outputs `embedding` FP32 [N, D] and
 *   `probabilities` FP32 [N, 5] when asked for (or when no output is named).
 */
import { InferError } from '../errors.js';
import type { ModelInferRequest, ModelInferResponse } from '../gen/inference/grpc_service_pb.js';
import {
  boolParameter,
  int64Parameter,
  numberParameter,
  ParameterNames,
  stringParameter,
} from '../infer-parameters.js';
import { pipelineResult, readPipelineAnswer, type PipelineRequest } from '../pipeline-wire.js';
import { encodeInferInputs, toV2Datatype } from '../tensor-codec.js';
import { bytesTensor, type Tensor, type TensorMeta } from '../tensor.js';
import type { ChunkAnswer, ClipSummary } from './chunk.js';

export const chunkFramesInput: TensorMeta = { name: 'input', type: 'bytes', shape: [-1] };
export const chunkTimesInput: TensorMeta = { name: 'times_ms', type: 'float64', shape: [-1] };
export const chunkWeightsInput: TensorMeta = { name: 'frame_weights', type: 'float64', shape: [-1] };
/** Frames in one chunk at most: 16 is the edge's chunk; a larger cap leaves room for generic clients without letting one request hold a batch of hundreds. */
export const maxChunkFrames = 64;
export const defaultFrameIntervalMs = 250;

/** Where a chunk sits in its sequence, as Triton's sequence parameters say it. */
export interface SequenceFlags {
  id: string;
  start: boolean;
  end: boolean;
}

export interface ChunkRequestOptions {
  /** The request id, echoed in the answer. */
  id: string;
  /** Sent as the `deadline_ms` parameter. */
  deadlineMs?: number;
  tenant?: string;
  /** Ask for the JSON `result` only, not the typed outputs that repeat it (what the edge needs). */
  resultOnly?: boolean;
  /** Sampled frames each frame stands for (sent as `frame_weights`). */
  weights?: readonly number[];
}

/** A request for one chunk: `seq` undefined sends a one-off chunk. */
export function chunkRequest(
  model: string,
  frames: Uint8Array[],
  timesMs: number[],
  seq: SequenceFlags | undefined,
  options: ChunkRequestOptions,
): PipelineRequest {
  const parameters: PipelineRequest['parameters'] = {};
  if (seq) {
    parameters[ParameterNames.sequenceId] = stringParameter(seq.id);
    parameters[ParameterNames.sequenceStart] = boolParameter(seq.start);
    parameters[ParameterNames.sequenceEnd] = boolParameter(seq.end);
  }
  if (options.deadlineMs) parameters[ParameterNames.deadlineMs] = int64Parameter(options.deadlineMs);
  if (options.tenant) parameters[ParameterNames.tenant] = stringParameter(options.tenant);
  const tensors: Record<string, Tensor> = { [chunkFramesInput.name]: bytesTensor(frames) };
  if (timesMs.length > 0) tensors[chunkTimesInput.name] = { type: 'float64', dims: [timesMs.length], data: Float64Array.from(timesMs) };
  if (options.weights) tensors[chunkWeightsInput.name] = { type: 'float64', dims: [options.weights.length], data: Float64Array.from(options.weights) };
  return {
    modelName: model,
    id: options.id,
    parameters,
    ...encodeInferInputs(tensors),
    ...(options.resultOnly ? { outputs: [{ name: pipelineResult.name }] } : {}),
  };
}

export interface ChunkAnswerReply {
  answer: ChunkAnswer & { summary?: ClipSummary };
  /** Every output returned, `result` included. */
  tensors: Record<string, Tensor>;
  queueUs: number;
  computeUs: number;
}

export function readChunkAnswer(response: ModelInferResponse): ChunkAnswerReply {
  const { result, tensors, queueUs, computeUs } = readPipelineAnswer(response);
  return { answer: result as unknown as ChunkAnswerReply['answer'], tensors, queueUs, computeUs };
}

/** A chunk request as the server reads it: frames, their times when sent, and its place in a sequence. */
export interface ChunkRequest {
  frames: Uint8Array[];
  /** As sent; undefined means spaced by `frameIntervalMs`. */
  timesMs?: number[];
  /** As sent; undefined means 1 each. */
  weights?: number[];
  frameIntervalMs: number;
  /** Undefined for a one-off chunk. */
  sequence?: SequenceFlags;
}

const invalid = (model: string, message: string) => new InferError('INVALID_ARGUMENT', `model ${model}: ${message}`);

/** Reads and checks a chunk request's inputs and sequence parameters; INVALID_ARGUMENT saying what to send instead. */
export function readChunkRequest(model: string, request: Pick<ModelInferRequest, 'parameters'>, inputs: Record<string, Tensor>): ChunkRequest {
  const expected = `'${chunkFramesInput.name}' (BYTES [N], 1 ≤ N ≤ ${maxChunkFrames}, encoded frames) and optionally '${chunkTimesInput.name}' and '${chunkWeightsInput.name}' (FP64 [N])`;
  for (const name of Object.keys(inputs)) {
    if (name !== chunkFramesInput.name && name !== chunkTimesInput.name && name !== chunkWeightsInput.name) throw invalid(model, `unknown input '${name}'; a chunk has inputs ${expected}`);
  }
  const frames = inputs[chunkFramesInput.name];
  if (!frames) throw invalid(model, `missing input '${chunkFramesInput.name}'; a chunk has inputs ${expected}`);
  const n = frames.dims[0] ?? 0;
  if (frames.type !== 'bytes' || frames.dims.length !== 1 || n < 1 || n > maxChunkFrames) {
    throw invalid(
      model,
      `input '${chunkFramesInput.name}' is ${toV2Datatype(frames.type)} ${JSON.stringify(frames.dims)}; a chunk is BYTES [N] with 1 ≤ N ≤ ${maxChunkFrames} encoded frames — split longer runs into several chunks`,
    );
  }
  const timesMs = perFrame(model, inputs, chunkTimesInput, n, 'time', (t, i, all) => Number.isFinite(t) && t >= 0 && (i === 0 || t >= all[i - 1]!), 'frame times must be finite, ≥ 0 and in order');
  const weights = perFrame(model, inputs, chunkWeightsInput, n, 'weight', (w) => Number.isFinite(w) && w > 0, "a frame's weight is the number of sampled frames it stands for, a finite number > 0");
  const frameIntervalMs = numberParameter(request.parameters, ParameterNames.frameIntervalMs) ?? defaultFrameIntervalMs;
  if (!(frameIntervalMs > 0)) throw invalid(model, `parameter '${ParameterNames.frameIntervalMs}' must be a positive number of milliseconds, got ${frameIntervalMs}`);
  return { frames: frames.data as Uint8Array[], timesMs, weights, frameIntervalMs, sequence: readSequenceFlags(model, request.parameters) };
}

/** An optional FP64 [n] input holding one number per frame, each `valid` (else INVALID_ARGUMENT saying `rule`); undefined when not sent. */
function perFrame(
  model: string,
  inputs: Record<string, Tensor>,
  meta: TensorMeta,
  n: number,
  what: string,
  valid: (value: number, index: number, all: readonly number[]) => boolean,
  rule: string,
): number[] | undefined {
  const tensor = inputs[meta.name];
  if (!tensor) return undefined;
  if (tensor.type !== 'float64' || tensor.dims.length !== 1 || tensor.dims[0] !== n) {
    throw invalid(model, `input '${meta.name}' is ${toV2Datatype(tensor.type)} ${JSON.stringify(tensor.dims)}; it must be FP64 [${n}], one ${what} per frame of '${chunkFramesInput.name}'`);
  }
  const values = Array.from(tensor.data as Float64Array);
  const bad = values.findIndex((v, i) => !valid(v, i, values));
  if (bad >= 0) throw invalid(model, `'${meta.name}'[${bad}] = ${values[bad]}: ${rule}`);
  return values;
}

function readSequenceFlags(model: string, parameters: ModelInferRequest['parameters']): SequenceFlags | undefined {
  const flag = (name: string): boolean => {
    const choice = parameters[name]?.parameterChoice;
    if (choice === undefined || choice.case === undefined) return false;
    if (choice.case !== 'boolParam') throw invalid(model, `parameter '${name}' must be a bool, got ${choice.case}`);
    return choice.value;
  };
  const start = flag(ParameterNames.sequenceStart);
  const end = flag(ParameterNames.sequenceEnd);
  const choice = parameters[ParameterNames.sequenceId]?.parameterChoice;
  let id: string | undefined;
  // Triton takes an unsigned integer or a string; 0 and '' mean "no sequence" there too.
  if (choice?.case === 'stringParam') id = choice.value || undefined;
  else if (choice?.case === 'int64Param' || choice?.case === 'uint64Param') id = choice.value === 0n ? undefined : String(choice.value);
  else if (choice?.case !== undefined) throw invalid(model, `parameter '${ParameterNames.sequenceId}' must be a string or an integer, got ${choice.case}`);
  if (id === undefined) {
    if (start || end) throw invalid(model, `'${ParameterNames.sequenceStart}'/'${ParameterNames.sequenceEnd}' need a '${ParameterNames.sequenceId}'; leave all three out for a one-off chunk`);
    return undefined;
  }
  return { id, start, end };
}
