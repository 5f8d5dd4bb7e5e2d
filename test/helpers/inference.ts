/**
 * What the cloud-tier integration tests share: requests built with the
 * project's codec, gRPC failures as values, health and metrics probes, a
 * collector for stream answers, and inputs (fixtures, a slow OCR page, a
 * silent Silero frame).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import sharp from 'sharp';
import { loadCatalog } from '../../shared/catalog.js';
import { Health, type HealthCheckResponse } from '../../shared/gen/grpc/health/v1/health_pb.js';
import type { ModelInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { clientConstructor, serviceDefinition } from '../../shared/grpc-service.js';
import { numberParameter } from '../../shared/infer-parameters.js';
import { packageRoot } from '../../shared/paths.js';
import { decodeInferOutputs, encodeInferInputs } from '../../shared/tensor-codec.js';
import { bytesTensor, float32, type Tensor } from '../../shared/tensor.js';

/** A request as plain fields, so tests can spread it and add `outputs`, `parameters` or a version. */
export interface InferRequestInit {
  modelName: string;
  modelVersion?: string;
  id: string;
  outputs?: { name: string }[];
  inputs: ReturnType<typeof encodeInferInputs>['inputs'];
  rawInputContents: Uint8Array[];
}

/** A sample input under models/samples/ (shared with `splitinfer demo` and the model toolchain). */
export function readFixture(...parts: string[]): Uint8Array {
  return new Uint8Array(readFileSync(path.join(packageRoot, 'models', 'samples', ...parts)));
}

/** Expected OCR lines of each sample image (models/samples/ocr/expected.json). */
export const expectedOcrLines = JSON.parse(readFileSync(path.join(packageRoot, 'models', 'samples', 'ocr', 'expected.json'), 'utf8')) as Record<
  string,
  { text: string }[]
>;

/** text-intent is being trained elsewhere; its cases run once the catalog lists it. */
export const textIntentInCatalog = loadCatalog().models.some((m) => m.id === 'text-intent');
export const textIntentOptions: { skip?: string } = textIntentInCatalog ? {} : { skip: 'text-intent not in catalog yet' };

/** A pipeline request: one BYTES element named `input` holding media bytes or UTF-8 text. */
export function pipelineRequest(modelName: string, input: Uint8Array | string, id = ''): InferRequestInit {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  return { modelName, id, ...encodeInferInputs({ input: bytesTensor([bytes]) }) };
}

/** A raw-graph request with plain tensors. */
export function graphRequest(modelName: string, tensors: Record<string, Tensor>, id = ''): InferRequestInit {
  return { modelName, id, ...encodeInferInputs(tensors) };
}

/** One 36 ms Silero VAD v5 frame of digital silence (64 context + 512 new samples), zero state, 16 kHz. */
export function silentSileroFrame(): Record<string, Tensor> {
  return {
    input: float32([1, 576], new Float32Array(576)),
    state: float32([2, 1, 128], new Float32Array(256)),
    sr: { type: 'int64', dims: [], data: BigInt64Array.of(16000n) },
  };
}

/** The pipeline's JSON `result` output. */
export function resultOf(response: Pick<ModelInferResponse, 'outputs' | 'rawOutputContents'>): Record<string, unknown> {
  const result = decodeInferOutputs(response).result;
  assert.ok(result, `response has no 'result' output (outputs: ${response.outputs.map((o) => o.name).join(', ')})`);
  return JSON.parse(new TextDecoder().decode((result.data as Uint8Array[])[0])) as Record<string, unknown>;
}

export function utf8Elements(tensor: Tensor | undefined): string[] {
  assert.ok(tensor && tensor.type === 'bytes', 'expected a BYTES tensor');
  return (tensor.data as Uint8Array[]).map((item) => new TextDecoder().decode(item));
}

/** A numeric response parameter (queue_us, compute_us), asserting it travels as int64. */
export function int64ResponseParameter(response: ModelInferResponse, name: string): number {
  assert.equal(response.parameters[name]?.parameterChoice.case, 'int64Param', `response parameter ${name} should be int64_param`);
  return numberParameter(response.parameters, name)!;
}

/** The gRPC failure of a call that must fail. */
export async function grpcFailure(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof Error && typeof (err as grpc.ServiceError).code === 'number', `expected a gRPC status error, got ${String(err)}`);
    return err as grpc.ServiceError;
  }
  assert.fail('expected the call to fail, but it succeeded');
}

/** Asserts a failure's status code (by name, for readable diffs) and that its message names the problem. */
export function assertStatus(err: grpc.ServiceError, code: grpc.status, message: RegExp): void {
  assert.equal(grpc.status[err.code], grpc.status[code], `status of: ${err.details}`);
  assert.match(err.details, message);
}

/** A deadline for calls that must not hang: a hang fails the test as DEADLINE_EXCEEDED instead of stalling the suite. */
export function deadlineIn(ms: number): { deadline: Date } {
  return { deadline: new Date(Date.now() + ms) };
}

export function healthClient(address: string): grpc.Client {
  const Client = clientConstructor(Health);
  return new Client(address, grpc.credentials.createInsecure());
}

/** grpc.health.v1 Watch (server streaming; shared/grpc-service has no helper for that kind). */
export function watchHealth(client: grpc.Client, service: string): grpc.ClientReadableStream<HealthCheckResponse> {
  const { path: methodPath, requestSerialize, responseDeserialize } = serviceDefinition(Health)['Watch']!;
  return client.makeServerStreamRequest(methodPath, requestSerialize, responseDeserialize, { service }, new grpc.Metadata(), {});
}

/**
 * Collects what a stream delivers, so a test can wait for the n-th message
 * and for the end, with a timeout instead of a hang.
 */
export class StreamCollector<T> {
  readonly messages: T[] = [];
  /** How many messages had arrived when the server ended the stream; undefined while it is open. */
  endedAfter: number | undefined;
  readonly status: Promise<grpc.StatusObject>;
  /** Resolves with the message count when the server ends the stream ('end' may follow 'status'). */
  readonly ended: Promise<number>;
  private error: Error | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(stream: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>) {
    stream.on('data', (message: T) => {
      this.messages.push(message);
      this.wake();
    });
    this.ended = new Promise((resolve) =>
      stream.on('end', () => {
        this.endedAfter = this.messages.length;
        resolve(this.endedAfter);
        this.wake();
      }),
    );
    this.status = new Promise((resolve) => stream.on('status', resolve));
    stream.on('error', (err) => {
      this.error = err;
      this.wake();
    });
  }

  private wake(): void {
    for (const waiter of this.waiters) waiter();
  }

  /** Resolves once `count` messages have arrived; rejects after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 20_000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      if (this.error) throw new Error(`stream failed after ${this.messages.length} of ${count} messages: ${this.error.message}`);
      if (this.endedAfter !== undefined) throw new Error(`stream ended after ${this.messages.length} of ${count} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`stream delivered ${this.messages.length} of ${count} messages in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const waiter = () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        };
        const timer = setTimeout(waiter, left);
        this.waiters.add(waiter);
      });
    }
    return this.messages.slice(0, count);
  }
}

/**
 * A ~960×960 PNG of 20 text lines (the invoice fixture tiled 2×10) that takes
 * image-ocr about a second on one CPU thread: the slow request of the tests.
 * Built from a committed fixture, so no fonts are needed.
 */
export async function slowOcrPage(): Promise<Uint8Array> {
  const tile = Buffer.from(readFixture('ocr', 'invoice.png'));
  const composites = Array.from({ length: 20 }, (_, i) => ({ input: tile, left: (i % 2) * 480, top: Math.floor(i / 2) * 96 }));
  const png = await sharp({ create: { width: 960, height: 960, channels: 3, background: '#ffffff' } }).composite(composites).png().toBuffer();
  return new Uint8Array(png);
}

export async function scrapeMetrics(metricsPort: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** Sum of the samples of `name` whose labels include all of `labels` (0 when no series matches yet). */
export function metricValue(exposition: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const series = new Map([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => series.get(k) === v)) sum += Number(match[3]);
  }
  return sum;
}
