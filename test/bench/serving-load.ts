/**
 * Load for `bench:serving`, sent over real gRPC (ModelInfer) from this
 * process to a cloud tier in another: open-loop Poisson arrivals at a fixed
 * rate (requests go out on schedule whether or not earlier ones are done, so
 * a saturated server shows as growing latency, not as a slower client), and
 * a closed loop that keeps N requests in flight (peak throughput).
 */
import type { Client } from '@grpc/grpc-js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { GRPCInferenceService, type ModelInferRequestSchema, type ModelInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { boolParameterValue, numberParameter, ParameterNames } from '../../shared/infer-parameters.js';
import { percentile } from '../../shared/percentile.js';

export type RequestInit = MessageInitShape<typeof ModelInferRequestSchema>;

/** One answered (or failed) request, times on this process's clock. */
export interface Sample {
  sentAtMs: number;
  latencyMs: number;
  failed?: string;
  batchSize?: number;
  cacheHit?: boolean;
  /** The server's own time for the request (queue_us + compute_us). */
  serverUs?: number;
}

export interface LoadSummary {
  offeredPerS?: number;
  requests: number;
  errors: number;
  /** Answered requests per second, first send to last answer. */
  throughputPerS: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanBatchSize: number;
}

/** One request, timed; a failure is a sample too. */
export async function send(client: Client, request: RequestInit): Promise<Sample> {
  const sentAtMs = performance.now();
  try {
    const response: ModelInferResponse = await callUnary(client, GRPCInferenceService.method.modelInfer, request, { deadline: Date.now() + 60_000 });
    const params = response.parameters;
    return {
      sentAtMs,
      latencyMs: performance.now() - sentAtMs,
      batchSize: numberParameter(params, ParameterNames.batchSize),
      cacheHit: boolParameterValue(params, ParameterNames.cacheHit),
      serverUs: (numberParameter(params, ParameterNames.queueUs) ?? 0) + (numberParameter(params, ParameterNames.computeUs) ?? 0),
    };
  } catch (err) {
    return { sentAtMs, latencyMs: performance.now() - sentAtMs, failed: (err as Error).message };
  }
}

/** Poisson arrivals at `ratePerS` for `durationMs`; `next(i)` gives the i-th request. Resolves when every request is answered. */
export async function openLoop(client: Client, ratePerS: number, durationMs: number, random: () => number, next: (i: number) => RequestInit): Promise<Sample[]> {
  const started = performance.now();
  const pending: Promise<Sample>[] = [];
  let dueMs = 0;
  for (let i = 0; ; i++) {
    dueMs += (-Math.log(1 - random()) / ratePerS) * 1000;
    if (dueMs > durationMs) break;
    const waitMs = started + dueMs - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    pending.push(send(client, next(i)));
  }
  return Promise.all(pending);
}

/** `concurrency` requests in flight at all times for `durationMs`. */
export async function closedLoop(client: Client, concurrency: number, durationMs: number, next: (i: number) => RequestInit): Promise<Sample[]> {
  const endAt = performance.now() + durationMs;
  const samples: Sample[] = [];
  let issued = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < endAt) samples.push(await send(client, next(issued++)));
    }),
  );
  return samples;
}

export function summarize(samples: readonly Sample[], offeredPerS?: number): LoadSummary {
  const ok = samples.filter((s) => !s.failed);
  const latencies = ok.map((s) => s.latencyMs);
  const first = Math.min(...samples.map((s) => s.sentAtMs));
  const last = Math.max(...ok.map((s) => s.sentAtMs + s.latencyMs));
  const batches = ok.map((s) => s.batchSize ?? 1).filter((b) => b > 0);
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    ...(offeredPerS === undefined ? {} : { offeredPerS: round(offeredPerS) }),
    requests: samples.length,
    errors: samples.length - ok.length,
    throughputPerS: ok.length > 0 ? round((ok.length / (last - first)) * 1000) : 0,
    p50Ms: latencies.length ? round(percentile(latencies, 0.5)) : NaN,
    p95Ms: latencies.length ? round(percentile(latencies, 0.95)) : NaN,
    p99Ms: latencies.length ? round(percentile(latencies, 0.99)) : NaN,
    meanBatchSize: batches.length ? round(batches.reduce((a, b) => a + b, 0) / batches.length) : 0,
  };
}

/** `concurrency` requests in flight at all times until `done` settles (e.g. while something else runs beside the load). */
export async function closedLoopUntil(client: Client, concurrency: number, done: Promise<unknown>, next: (i: number) => RequestInit): Promise<Sample[]> {
  let finished = false;
  void done.finally(() => (finished = true));
  const samples: Sample[] = [];
  let issued = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!finished) samples.push(await send(client, next(issued++)));
    }),
  );
  return samples;
}
