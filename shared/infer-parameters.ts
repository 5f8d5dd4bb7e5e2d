import { create } from '@bufbuild/protobuf';
import { InferParameterSchema, type InferParameter } from './gen/inference/grpc_service_pb.js';

/**
 * Request/response `parameters` conventions on top of KServe v2 (see the
 * architecture): requests carry tenant and deadline_ms; responses carry the
 * server's queue_us and compute_us so the edge learns the cloud's load from
 * ordinary traffic, and an in-stream failure carries its error_code.
 */
export const ParameterNames = {
  tenant: 'tenant',
  deadlineMs: 'deadline_ms',
  queueUs: 'queue_us',
  computeUs: 'compute_us',
  /** On a failed ModelStreamInfer answer: the gRPC status name of the failure (see pipeline-wire.ts). */
  errorCode: 'error_code',
  /** Triton's sequence parameters (a string or an integer id; booleans), on chunks of a sequence model (video/chunk-wire.ts). */
  sequenceId: 'sequence_id',
  sequenceStart: 'sequence_start',
  sequenceEnd: 'sequence_end',
  /** Spacing of a chunk's frames when it sends no `times_ms`. */
  frameIntervalMs: 'frame_interval_ms',
  /** Request: false skips the response cache (cloud/response-cache.ts). Response: whether the answer came from it. */
  cache: 'cache',
  cacheHit: 'cache_hit',
  /** Response: how many requests shared this one's session run (dynamic batching; 1 = alone, 0 = answered from the cache). */
  batchSize: 'batch_size',
  /**
   * Request: the W3C trace context (shared/trace-context.ts). gRPC metadata
   * names it too, but the edge's requests share one ModelStreamInfer stream,
   * whose metadata is sent once; a parameter travels with each request.
   */
  traceparent: 'traceparent',
  /**
   * Content-addressed offload (cloud/response-cache.ts): an input tensor's
   * parameter holding its content digest (shared/content-digest.ts), sent in
   * place of its contents; a response with `content_needed: true` and no
   * outputs says the cloud holds no answer for it: send the full request.
   */
  contentSha256: 'content_sha256',
  contentNeeded: 'content_needed',
  /** Request: the sticky key of the A/B split between versions (e.g. a device id); without it the tenant is the key (cloud/version-routing.ts). */
  abKey: 'ab_key',
  /** Triton's request parameters: the priority level (1 highest; 0 the default), and how long the request may wait queued, in microseconds. */
  priority: 'priority',
  timeoutUs: 'timeout',
  /** On a failed ModelStreamInfer answer refused for load: when a retry may succeed (unary calls carry it as `retry-after-ms` trailing metadata). */
  retryAfterMs: 'retry_after_ms',
} as const;

export function int64Parameter(value: number): InferParameter {
  return create(InferParameterSchema, { parameterChoice: { case: 'int64Param', value: BigInt(Math.round(value)) } });
}

export function boolParameter(value: boolean): InferParameter {
  return create(InferParameterSchema, { parameterChoice: { case: 'boolParam', value } });
}

export function stringParameter(value: string): InferParameter {
  return create(InferParameterSchema, { parameterChoice: { case: 'stringParam', value } });
}

/** A numeric parameter whichever numeric field the client used, or undefined when absent. */
export function numberParameter(params: Record<string, InferParameter>, name: string): number | undefined {
  const choice = params[name]?.parameterChoice;
  switch (choice?.case) {
    case 'int64Param':
    case 'uint64Param':
      return Number(choice.value);
    case 'doubleParam':
      return choice.value;
    case 'stringParam': {
      const n = Number(choice.value);
      return Number.isFinite(n) ? n : undefined;
    }
    default:
      return undefined;
  }
}

export function stringParameterValue(params: Record<string, InferParameter>, name: string): string | undefined {
  const choice = params[name]?.parameterChoice;
  return choice?.case === 'stringParam' ? choice.value : undefined;
}

/** A boolean parameter (bool, or the strings 'true'/'false'), or undefined when absent or not a boolean. */
export function boolParameterValue(params: Record<string, InferParameter>, name: string): boolean | undefined {
  const choice = params[name]?.parameterChoice;
  if (choice?.case === 'boolParam') return choice.value;
  if (choice?.case === 'stringParam' && (choice.value === 'true' || choice.value === 'false')) return choice.value === 'true';
  return undefined;
}
