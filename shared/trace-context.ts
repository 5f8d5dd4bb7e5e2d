/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): one request is
 * one trace from the MQTT client through the edge to the cloud, named by a
 * `traceparent` that both tiers write in their log lines for it. A missing
 * or invalid header starts a new trace (§4.3: a receiver that cannot parse
 * it must not propagate it).
 */
import { randomBytes } from 'node:crypto';

export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero: the caller's span (the parent of ours). */
  spanId: string;
  /** Bit 0: the caller sampled this trace. */
  flags: number;
}

/** The header name: an MQTT 5 user property, a gRPC metadata key and a KServe request parameter alike. */
export const traceparentName = 'traceparent';

// §3.2: version 00 is exactly four fields; a later version may append more after a dash, which a reader ignores.
const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The context a header names, or undefined when it is absent or invalid. */
export function parseTraceparent(header: unknown): TraceContext | undefined {
  if (typeof header !== 'string' || header.length > 512) return undefined;
  const match = traceparentPattern.exec(header.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

export function formatTraceparent({ traceId, spanId, flags }: TraceContext): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** A new trace, marked sampled: its id is recorded (in the logs, and in exported spans when tracing is on). */
export function newTraceContext(): TraceContext {
  return { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), flags: 1 };
}

/** The header's context, or a new trace when it names none. */
export function traceContextOf(header: unknown): TraceContext {
  return parseTraceparent(header) ?? newTraceContext();
}
