/**
 * Errors a caller can act on. Codes are gRPC status names (the KServe v2 gRPC
 * protocol maps failures onto them), so the cloud tier turns an InferError
 * straight into a status and the edge reports the same code over MQTT.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'FAILED_PRECONDITION'
  | 'INTERNAL'
  /** The caller went away (a cancelled gRPC call or stream): its work is not done. */
  | 'CANCELLED'
  /** No or unknown credentials (an API key or a client certificate the cloud tier maps to a tenant). */
  | 'UNAUTHENTICATED'
  /** Known credentials, but the tenant may not use this model. */
  | 'PERMISSION_DENIED'
  /** A failure the other side reported without a code (e.g. free text from a foreign KServe/Triton server). */
  | 'UNKNOWN';

export class InferError extends Error {
  readonly code: ErrorCode;
  /** For RESOURCE_EXHAUSTED: when a retry may succeed; the cloud tier sends it as `retry-after-ms` trailing metadata. */
  readonly retryAfterMs?: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.name = 'InferError';
    this.code = code;
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

export function invalidArgument(message: string): InferError {
  return new InferError('INVALID_ARGUMENT', message);
}

/** Any thrown value as an InferError; unknown failures become INTERNAL. */
export function toInferError(err: unknown): InferError {
  if (err instanceof InferError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InferError('INTERNAL', message, { cause: err });
}

/** The first bytes of an input in hex (`3c 68 74 6d`), so a message shows what was sent instead of what was expected. */
export function hexPrefix(bytes: Uint8Array, count = 4): string {
  return Array.from(bytes.subarray(0, count), (b) => b.toString(16).padStart(2, '0')).join(' ');
}
