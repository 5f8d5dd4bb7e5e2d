/**
 * The edge's link to the cloud tier: one long-lived ModelStreamInfer stream
 * (Triton's bidi extension to KServe v2) that multiplexes every offloaded task
 * by request id, answers arriving in completion order. A broken stream fails
 * its pending tasks with UNAVAILABLE (so the caller can fall back) and is
 * reopened with backoff; a circuit breaker stops offloading after repeated
 * failures and probes the server before trusting it again.
 */
import * as grpc from '@grpc/grpc-js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import sharp from 'sharp';
import { InferError, type ErrorCode } from '../shared/errors.js';
import {
  GRPCInferenceService,
  type ModelInferRequestSchema,
  type ModelInferResponse,
  type ModelStreamInferResponse,
} from '../shared/gen/inference/grpc_service_pb.js';
import { callUnary, clientConstructor, openBidiStream } from '../shared/grpc-service.js';
import { maxImagePixels } from '../shared/handlers/image-decode.js';
import { int64Parameter, numberParameter, ParameterNames } from '../shared/infer-parameters.js';
import type { Logger } from '../shared/log.js';
import { decodeInferOutputs, encodeInferInputs } from '../shared/tensor-codec.js';
import { bytesTensor } from '../shared/tensor.js';
import type { EdgeConfig } from './config.js';
import type { CloudHealth } from './policy/strategy.js';

/** How an image is shrunk before it crosses the link. */
export interface ImageShaping {
  maxSide: number;
  jpegQuality: number;
}

export interface OffloadCall {
  /** Names the task; a sequence number is appended so stream ids stay unique even when request ids repeat. */
  taskId: string;
  /** How long the cloud may take: sent as `deadline_ms`, and enforced here with DEADLINE_EXCEEDED. */
  budgetMs: number;
  /** The input is an encoded image, shrunk before it crosses the link. */
  image: boolean;
  /** The placement policy's choice; default: config offload.imageMaxSide / offload.jpegQuality. */
  shaping?: ImageShaping;
}

/** What shrinking an image did, for the estimators. */
export interface ShrinkOutcome extends ImageShaping {
  /** Pixels of the JPEG written (0 when the input did not decode). */
  outputPixels: number;
  jpegBytes: number;
  /** The JPEG was not smaller, so the original was sent. */
  keptOriginal: boolean;
}

export interface OffloadAnswer {
  result: Record<string, unknown>;
  totalMs: number;
  /** The server's own queue and compute time (response parameters). */
  queueMs: number;
  computeMs: number;
  /** Everything else: shrinking, the link both ways, (de)serialization. */
  transferMs: number;
  /** Shrinking the image, before anything was sent. */
  prepareMs: number;
  /** From sending to the answer, less the server's queue and compute: what the link estimator learns from. */
  linkMs: number;
  sentBytes: number;
  shrink?: ShrinkOutcome;
}

export interface OffloadStats {
  streamsOpened: number;
  tasks: number;
  /** Most tasks in flight on the stream at once. */
  peakPending: number;
  bytesBeforeShrink: number;
  bytesSent: number;
}

export interface BreakerOptions {
  /** Consecutive failures that open the circuit; an unreachable server opens it at once. */
  failureThreshold: number;
  /** First wait before a probe; doubles while probes fail, up to maxCoolDownMs (also how long such a probe may take). */
  coolDownMs: number;
  maxCoolDownMs: number;
  /** The probe at start, and the link estimator's RTT probes. */
  probeTimeoutMs: number;
}

export const defaultBreakerOptions: BreakerOptions = { failureThreshold: 3, coolDownMs: 1_000, maxCoolDownMs: 10_000, probeTimeoutMs: 2_000 };

const RECONNECT_INITIAL_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/** Failures that say the cloud is unhealthy; NOT_FOUND or INVALID_ARGUMENT are the request's fault. */
const cloudFaults: ReadonlySet<ErrorCode> = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'INTERNAL']);
const errorCodes: ReadonlySet<string> = new Set<ErrorCode>([...cloudFaults, 'INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION']);

type StreamRequest = MessageInitShape<typeof ModelInferRequestSchema>;

interface Pending {
  resolve(response: ModelInferResponse): void;
  reject(err: InferError): void;
}

interface OpenStream {
  call: grpc.ClientDuplexStream<StreamRequest, ModelStreamInferResponse>;
  pending: Map<string, Pending>;
}

/** Re-encodes an image as JPEG within maxSide, keeping the original when that is not smaller (or not decodable: the cloud then says why). */
export async function shrinkImage(input: Uint8Array, shaping: ImageShaping): Promise<{ payload: Uint8Array; shrink: ShrinkOutcome }> {
  try {
    // autoOrient first: the JPEG is written without the EXIF orientation the original relied on.
    const { data, info } = await sharp(input, { limitInputPixels: maxImagePixels })
      .autoOrient()
      .resize({ width: shaping.maxSide, height: shaping.maxSide, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: shaping.jpegQuality })
      .toBuffer({ resolveWithObject: true });
    const keptOriginal = data.length >= input.length;
    return {
      payload: keptOriginal ? input : new Uint8Array(data.buffer, data.byteOffset, data.length),
      shrink: { ...shaping, outputPixels: info.width * info.height, jpegBytes: data.length, keptOriginal },
    };
  } catch {
    return { payload: input, shrink: { ...shaping, outputPixels: 0, jpegBytes: 0, keptOriginal: true } };
  }
}

/** An in-stream failure, `"<CODE>: message"`, as an InferError with that code. */
function streamError(errorMessage: string): InferError {
  const match = /^([A-Z_]+): ([\s\S]*)$/.exec(errorMessage);
  if (match && errorCodes.has(match[1]!)) return new InferError(match[1] as ErrorCode, `cloud: ${match[2]}`);
  return new InferError('INTERNAL', `cloud: ${errorMessage}`);
}

export class OffloadClient {
  private readonly client: grpc.Client;
  private stream: OpenStream | undefined;
  private sequence = 0;
  private reconnectDelayMs = RECONNECT_INITIAL_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private coolDownMs: number;
  private closed = false;
  private readonly circuit: CloudHealth = { state: 'closed', consecutiveFailures: 0 };
  private readonly counters: OffloadStats = { streamsOpened: 0, tasks: 0, peakPending: 0, bytesBeforeShrink: 0, bytesSent: 0 };

  private constructor(
    private readonly config: EdgeConfig,
    private readonly log: Logger,
    private readonly breaker: BreakerOptions,
  ) {
    this.coolDownMs = breaker.coolDownMs;
    const Client = clientConstructor(GRPCInferenceService);
    this.client = new Client(config.cloud, grpc.credentials.createInsecure(), {
      // The stream lives for hours over flaky links: pings find a dead peer long before TCP would.
      'grpc.keepalive_time_ms': config.offload.keepaliveMs,
      'grpc.keepalive_timeout_ms': config.offload.keepaliveMs,
      'grpc.keepalive_permit_without_calls': 1,
      // `dns:///name:port` resolves every replica of a headless Service; round_robin spreads streams over them.
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      'grpc.initial_reconnect_backoff_ms': RECONNECT_INITIAL_MS * 2,
      'grpc.max_reconnect_backoff_ms': RECONNECT_MAX_MS,
    });
  }

  /** Checks the cloud once (an unreachable cloud opens the circuit instead of failing start-up) and opens the stream. */
  static async connect(config: EdgeConfig, log: Logger, breaker: Partial<BreakerOptions> = {}): Promise<OffloadClient> {
    const client = new OffloadClient(config, log, { ...defaultBreakerOptions, ...breaker });
    await client.probe();
    return client;
  }

  health(): CloudHealth {
    return { ...this.circuit };
  }

  stats(): OffloadStats {
    return { ...this.counters };
  }

  /** Runs one pipeline input in the cloud; rejects with UNAVAILABLE at once while the circuit is not closed. */
  async infer(model: string, input: Uint8Array, call: OffloadCall): Promise<OffloadAnswer> {
    if (this.circuit.state !== 'closed') {
      throw new InferError('UNAVAILABLE', `the cloud tier at ${this.config.cloud} is unavailable (circuit ${this.circuit.state}: ${this.circuit.lastError ?? 'probing'})`);
    }
    const started = performance.now();
    const shaping = call.shaping ?? { maxSide: this.config.offload.imageMaxSide, jpegQuality: this.config.offload.jpegQuality };
    const { payload, shrink } = call.image ? await shrinkImage(input, shaping) : { payload: input, shrink: undefined };
    const sentAt = performance.now();
    this.counters.tasks++;
    this.counters.bytesBeforeShrink += input.length;
    this.counters.bytesSent += payload.length;
    const budgetMs = Math.round(call.budgetMs - (sentAt - started));
    if (budgetMs <= 0) throw new InferError('DEADLINE_EXCEEDED', `${call.taskId}: no time left to offload after preparing the input`);
    const response = await this.send(model, `${call.taskId}#${++this.sequence}`, payload, budgetMs);
    const answeredAt = performance.now();
    const totalMs = answeredAt - started;
    const resultBytes = decodeInferOutputs(response).result?.data as Uint8Array[] | undefined;
    if (!resultBytes?.[0]) throw new InferError('INTERNAL', `cloud answer for ${call.taskId} has no 'result' output — is ${model} a splitinfer pipeline?`);
    const queueMs = (numberParameter(response.parameters, ParameterNames.queueUs) ?? 0) / 1000;
    const computeMs = (numberParameter(response.parameters, ParameterNames.computeUs) ?? 0) / 1000;
    return {
      result: JSON.parse(new TextDecoder().decode(resultBytes[0])) as Record<string, unknown>,
      totalMs,
      queueMs,
      computeMs,
      transferMs: Math.max(0, totalMs - queueMs - computeMs),
      prepareMs: sentAt - started,
      linkMs: Math.max(0, answeredAt - sentAt - queueMs - computeMs),
      sentBytes: payload.length,
      shrink,
    };
  }

  /**
   * One ServerLive round trip, timed: the link estimator's probe when no
   * small request refreshed the RTT for a while. Only while the circuit is
   * closed; the breaker's own probe deals with an unreachable cloud.
   */
  async measureRoundTripMs(timeoutMs = this.breaker.probeTimeoutMs): Promise<number> {
    if (this.circuit.state !== 'closed') throw new InferError('UNAVAILABLE', `the cloud tier at ${this.config.cloud} is unavailable (circuit ${this.circuit.state})`);
    const started = performance.now();
    await callUnary(this.client, GRPCInferenceService.method.serverLive, {}, { deadline: Date.now() + timeoutMs });
    return performance.now() - started;
  }

  /**
   * The placement estimators found the link stalled (a probe that should
   * have come back did not): opens the circuit, so new tasks stay on the
   * edge until a probe gets through, and fails the tasks in flight with
   * UNAVAILABLE now, so those with a local variant are retried on the edge
   * while their deadline still allows it. The stream is dropped with them; a
   * new one opens when the circuit closes.
   */
  reportStall(reason: string): void {
    if (this.closed || this.circuit.state !== 'closed') return;
    this.circuit.consecutiveFailures++;
    this.openCircuit(reason);
    const stream = this.stream;
    if (!stream) return;
    this.stream = undefined;
    const failure = new InferError('UNAVAILABLE', `the link to the cloud tier at ${this.config.cloud} stalled (${reason})`);
    for (const pending of stream.pending.values()) pending.reject(failure);
    stream.pending.clear();
    stream.call.cancel();
  }

  private send(model: string, id: string, payload: Uint8Array, budgetMs: number): Promise<ModelInferResponse> {
    const stream = this.stream ?? this.openStream();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.pending.delete(id);
        this.recordFailure(`no answer to ${id} within ${budgetMs} ms`);
        reject(new InferError('DEADLINE_EXCEEDED', `the cloud tier did not answer ${id} within ${budgetMs} ms`));
      }, budgetMs);
      stream.pending.set(id, {
        resolve: (response) => {
          clearTimeout(timer);
          resolve(response);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.counters.peakPending = Math.max(this.counters.peakPending, stream.pending.size);
      stream.call.write({
        modelName: model,
        id,
        parameters: { [ParameterNames.deadlineMs]: int64Parameter(budgetMs) },
        ...encodeInferInputs({ input: bytesTensor([payload]) }),
      });
    });
  }

  private openStream(): OpenStream {
    const stream: OpenStream = { call: openBidiStream(this.client, GRPCInferenceService.method.modelStreamInfer), pending: new Map() };
    this.stream = stream;
    this.counters.streamsOpened++;
    stream.call.on('data', (message: ModelStreamInferResponse) => this.onAnswer(stream, message));
    stream.call.on('error', (err: grpc.ServiceError) => this.onBroken(stream, `${grpc.status[err.code]}: ${err.details}`));
    stream.call.on('status', (s: grpc.StatusObject) => this.onBroken(stream, `${grpc.status[s.code]}: ${s.details || 'the server ended the stream'}`));
    this.log.debug({ cloud: this.config.cloud }, 'offload stream opened');
    return stream;
  }

  private onAnswer(stream: OpenStream, message: ModelStreamInferResponse): void {
    const id = message.inferResponse?.id ?? '';
    const pending = stream.pending.get(id);
    if (!pending) {
      this.log.debug({ id }, 'cloud answered a task that already timed out');
      return;
    }
    stream.pending.delete(id);
    this.reconnectDelayMs = RECONNECT_INITIAL_MS;
    if (!message.errorMessage) {
      this.recordSuccess();
      pending.resolve(message.inferResponse!);
      return;
    }
    const err = streamError(message.errorMessage);
    if (cloudFaults.has(err.code)) this.recordFailure(err.message);
    else this.recordSuccess();
    pending.reject(err);
  }

  /** Called for both 'error' and 'status'; only the first call for a stream acts. */
  private onBroken(stream: OpenStream, detail: string): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    const failure = new InferError('UNAVAILABLE', `the stream to the cloud tier at ${this.config.cloud} broke before answering (${detail})`);
    for (const pending of stream.pending.values()) pending.reject(failure);
    stream.pending.clear();
    if (this.closed) return;
    const unreachable = this.client.getChannel().getConnectivityState(false) === grpc.connectivityState.TRANSIENT_FAILURE;
    this.log.warn({ cloud: this.config.cloud, detail, unreachable }, 'offload stream broke');
    this.recordFailure(unreachable ? `unreachable (${detail})` : `stream broke (${detail})`, unreachable);
    this.scheduleReconnect();
  }

  /** Keeps a stream ready while the circuit is closed, backing off while streams keep breaking unanswered. */
  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer || this.circuit.state !== 'closed') return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed && !this.stream && this.circuit.state === 'closed') this.openStream();
    }, this.reconnectDelayMs);
    this.reconnectTimer.unref();
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, RECONNECT_MAX_MS);
  }

  private recordSuccess(): void {
    this.circuit.consecutiveFailures = 0;
  }

  private recordFailure(reason: string, unreachable = false): void {
    this.circuit.consecutiveFailures++;
    this.circuit.lastError = reason;
    if (this.circuit.state === 'closed' && (unreachable || this.circuit.consecutiveFailures >= this.breaker.failureThreshold)) this.openCircuit(reason);
  }

  private openCircuit(reason: string): void {
    this.circuit.state = 'open';
    this.circuit.lastError = reason;
    this.log.warn({ cloud: this.config.cloud, reason, probeInMs: this.coolDownMs }, 'cloud tier circuit open: not offloading until a probe succeeds');
    // A probe may wait as long as the longest pause between probes: a stalled link answers it the moment it moves again.
    this.probeTimer = setTimeout(() => void this.probe(this.breaker.maxCoolDownMs), this.coolDownMs);
    this.probeTimer.unref();
    this.coolDownMs = Math.min(this.coolDownMs * 2, this.breaker.maxCoolDownMs);
  }

  /**
   * Half-open probe. ServerReady rather than ServerLive: a draining replica is
   * live but refuses every request, and the circuit must stay open for it.
   */
  private async probe(timeoutMs = this.breaker.probeTimeoutMs): Promise<void> {
    this.circuit.state = 'half-open';
    try {
      const { ready } = await callUnary(this.client, GRPCInferenceService.method.serverReady, {}, { deadline: Date.now() + timeoutMs });
      if (!ready) throw new Error('ServerReady answered ready=false (the server is draining)');
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      if (!this.closed) this.openCircuit(`unreachable (${detail})`);
      return;
    }
    if (this.closed) return;
    if (this.circuit.lastError) this.log.info({ cloud: this.config.cloud, after: this.circuit.lastError }, 'cloud tier reachable again: circuit closed');
    this.circuit.state = 'closed';
    this.circuit.consecutiveFailures = 0;
    delete this.circuit.lastError;
    this.coolDownMs = this.breaker.coolDownMs;
    this.reconnectDelayMs = RECONNECT_INITIAL_MS;
    if (!this.stream) this.openStream();
  }

  /** Fails tasks still in flight with UNAVAILABLE, ends the stream and closes the channel. */
  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.probeTimer);
    const stream = this.stream;
    if (stream) {
      this.stream = undefined;
      for (const pending of stream.pending.values()) pending.reject(new InferError('UNAVAILABLE', 'the offload client is closing'));
      stream.call.end();
    }
    this.client.close();
  }
}
