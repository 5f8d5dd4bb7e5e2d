/**
 * Whose fault a failed session.run is, as a gRPC code, from onnxruntime's
 * message (it gives nothing else: no status code reaches JavaScript). Only
 * what onnxruntime rejects when checking the feeds against the graph's inputs
 * is the caller's fault; memory running out is RESOURCE_EXHAUSTED (retry
 * later, or send less); anything else went wrong inside the runtime or the
 * model, INTERNAL, so the edge's breaker and the client see the truth.
 */
import type { ErrorCode } from '../errors.js';

/** onnxruntime's checks of the feeds: names, element type, rank, fixed dimensions. */
const badInput = [
  /^Got invalid dimensions for input: /,
  /^Invalid rank for input: /,
  /^Unexpected input data type\./,
  /^input '.*' is missing in 'feeds'\./,
  /^'feeds' must be an object/,
  /\[ONNXRuntimeError\] : 2 : INVALID_ARGUMENT : /,
];

/** Allocation failures of the CPU arena, the C++ runtime and CUDA. */
const outOfMemory = [/Failed to allocate memory/, /bad_alloc/, /out of memory/i, /CUDNN_STATUS_ALLOC_FAILED/, /cudaErrorMemoryAllocation/];

export function runErrorCode(message: string): ErrorCode {
  if (outOfMemory.some((pattern) => pattern.test(message))) return 'RESOURCE_EXHAUSTED';
  if (badInput.some((pattern) => pattern.test(message))) return 'INVALID_ARGUMENT';
  return 'INTERNAL';
}

/** What the caller can do about it, appended to the message. */
export const runErrorAdvice: Partial<Record<ErrorCode, string>> = {
  RESOURCE_EXHAUSTED: 'the runtime ran out of memory for this input: send a smaller one, or retry when fewer requests run',
};
