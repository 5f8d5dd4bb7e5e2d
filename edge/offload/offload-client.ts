/**
 * The edge's link to the cloud tier, put together: images are shaped
 * (image-shaping.ts), every item rides the one multiplexed stream
 * (stream-client.ts), the circuit breaker (circuit-breaker.ts) owns cloud
 * health from what the stream hears, and the stall probe (stall-probe.ts)
 * trips it when the link goes silent. A task offloaded while the circuit is
 * not closed fails at once with UNAVAILABLE, without leaving the device.
 */
import { InferError, toInferError, type ErrorCode } from '../../shared/errors.js';
import { GRPCInferenceService, type ModelInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { ParameterNames, stringParameter } from '../../shared/infer-parameters.js';
import type { Logger } from '../../shared/log.js';
import { contentSha256 } from '../../shared/content-digest.js';
import { contentNeeded, digestOnlyRequest, pipelineRequest, readPipelineAnswer, type PipelineRequest } from '../../shared/pipeline-wire.js';
import { bytesTensor } from '../../shared/tensor.js';
import { chunkRequest, readChunkAnswer } from '../../shared/video/chunk-wire.js';
import type { ChunkWork } from '../tasks.js';
import type { EdgeConfig } from '../config.js';
import { ContentAddressing, type LinkCosts } from './content-address.js';
import { CircuitBreaker, defaultBreakerOptions, type BreakerOptions, type CloudHealth } from './circuit-breaker.js';
import { defaultShaping, shapeFrames, shapeImage, type ShapedImage, type ShapingOption } from './image-shaping.js';
import { StallProbe, type LinkSignals } from './stall-probe.js';
import { StreamClient } from './stream-client.js';

export interface OffloadCall {
  /** Names the task; a sequence number is appended so stream ids stay unique even when request ids repeat. */
  taskId: string;
  /** How long the cloud may take: sent as `deadline_ms`, and enforced here with DEADLINE_EXCEEDED. */
  budgetMs: number;
  /** The input is an encoded image, shaped before it crosses the link. */
  image: boolean;
  /** The placement policy's choice; default: config offload.imageMaxSide / offload.jpegQuality. */
  shaping?: ShapingOption;
  /** W3C trace context, sent as the request parameter `traceparent`. */
  traceparent?: string;
}

export interface OffloadAnswer {
  result: Record<string, unknown>;
  totalMs: number;
  /** The server's own queue and compute time (response parameters). */
  queueMs: number;
  computeMs: number;
  /** Everything else: shaping, the link both ways, (de)serialization. */
  transferMs: number;
  /** Shaping the image, before anything was sent. */
  prepareMs: number;
  /** From sending to the answer, less the server's queue and compute: what the link estimator learns from. */
  linkMs: number;
  sentBytes: number;
  /** Inputs the request carried: a video chunk's frames, else 1. */
  items: number;
  /** How the image was shaped (a chunk's: its average frame). */
  shaped?: ShapedImage;
}

export interface OffloadStats {
  streamsOpened: number;
  tasks: number;
  /** Most items in flight on the stream at once. */
  peakPending: number;
  /** Inputs' bytes as the request carried them; a video chunk's frames have no encoded original, so they count as sent. */
  bytesBeforeShrink: number;
  bytesSent: number;
  /** Content-addressed offload: inputs asked for by digest first, and those the cloud answered without the upload. */
  askedByDigest: number;
  foundByDigest: number;
}

/** About what a digest-only request weighs on the wire (names, a 64-digit digest, parameters). */
const DIGEST_REQUEST_BYTES = 200;

/**
 * Failures that say the cloud is unhealthy; NOT_FOUND, INVALID_ARGUMENT or a
 * foreign server's UNKNOWN are the request's. RESOURCE_EXHAUSTED is not one
 * either: a busy cloud answered, and refusing work is how it protects itself
 * (the task runs on the edge instead). DEADLINE_EXCEEDED counts only for a
 * budget the cloud should have met (`faultBudgetFloorMs`).
 */
const cloudFaults: ReadonlySet<ErrorCode> = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL']);

export class OffloadClient {
  private readonly stream: StreamClient;
  private readonly breaker: CircuitBreaker;
  private stallProbe: StallProbe | undefined;
  private link: (LinkSignals & LinkCosts) | undefined;
  private readonly content: ContentAddressing;
  private readonly defaultShaping: ShapingOption;
  private sequence = 0;
  private readonly counters = { tasks: 0, bytesBeforeShrink: 0, bytesSent: 0 };

  private constructor(
    private readonly config: EdgeConfig,
    log: Logger,
    private readonly options: BreakerOptions,
  ) {
    this.defaultShaping = defaultShaping(config.offload);
    this.content = new ContentAddressing(config.offload.contentAddressing, log);
    this.stream = new StreamClient(
      config.cloud,
      {
        // The stream lives for hours over flaky links: pings find a dead peer long before TCP would.
        'grpc.keepalive_time_ms': config.offload.keepaliveMs,
        'grpc.keepalive_timeout_ms': config.offload.keepaliveMs,
        'grpc.keepalive_permit_without_calls': 1,
        // `dns:///name:port` resolves every replica of a headless Service; round_robin spreads streams over them.
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 5_000,
      },
      log,
      {
        answered: (failure, budgetMs) => this.recordOutcome(failure?.code, failure?.message ?? '', budgetMs),
        timedOut: (reason, budgetMs) => this.recordOutcome('DEADLINE_EXCEEDED', reason, budgetMs),
        broken: (detail, unreachable) => this.breaker.recordFailure(unreachable ? `unreachable (${detail})` : `stream broke (${detail})`, unreachable),
        wanted: () => this.breaker.closed,
      },
    );
    this.breaker = new CircuitBreaker(options, config.cloud.address, log, {
      probe: async (timeoutMs, fresh) => {
        if (!(await this.stream.ready(timeoutMs, fresh))) throw new Error('ServerReady answered ready=false (the server is draining)');
      },
      closed: () => this.stream.ensureOpen(),
    });
  }

  /** Checks the cloud once (an unreachable cloud opens the circuit instead of failing start-up) and opens the stream. */
  static async connect(config: EdgeConfig, log: Logger, breaker: Partial<BreakerOptions> = {}): Promise<OffloadClient> {
    const client = new OffloadClient(config, log, { ...defaultBreakerOptions, ...breaker });
    await client.breaker.start();
    return client;
  }

  /**
   * Starts the stall probe, which reads the link's RTT and uplink wait from
   * `link` and tells it each probe's round trip; content-addressed offload
   * reads its upload estimate.
   */
  watchForStalls(link: LinkSignals & LinkCosts): void {
    this.link = link;
    this.stallProbe ??= new StallProbe(this.stream, link, {
      stallSilenceMs: this.config.policy.stallSilenceMs,
      stallProbeSlackMs: this.config.policy.stallProbeSlackMs,
      roundTripMs: (timeoutMs) => this.measureRoundTripMs(timeoutMs),
      // The items in flight fail now, so those with a local variant are retried on the edge while their deadline allows.
      stalled: (reason) => {
        if (this.breaker.trip(reason)) this.stream.failAll(new InferError('UNAVAILABLE', `the link to the cloud tier at ${this.config.cloud.address} stalled (${reason})`));
      },
      active: () => this.breaker.closed,
    });
    this.stallProbe.start();
  }

  health(): CloudHealth {
    return this.breaker.health();
  }

  stats(): OffloadStats {
    const { streamsOpened, peakPending } = this.stream;
    return { ...this.counters, streamsOpened, peakPending, askedByDigest: this.content.asked, foundByDigest: this.content.found };
  }

  /** Runs one pipeline input in the cloud; rejects with UNAVAILABLE at once while the circuit is not closed. */
  async infer(model: string, input: Uint8Array, call: OffloadCall): Promise<OffloadAnswer> {
    this.ensureCloudAvailable();
    const started = performance.now();
    const { payload, shaped } = call.image ? await shapeImage(input, call.shaping ?? this.defaultShaping) : { payload: input, shaped: undefined };
    this.counters.tasks++;
    this.counters.bytesBeforeShrink += input.length;
    // Asked by digest first when that bet pays (content-address.ts); answered from the cloud's cache, nothing is uploaded.
    const digest = contentSha256(bytesTensor([payload]));
    let cacheConsulted = false;
    const ask = (byDigest: boolean) =>
      this.send(call, started, { bytes: byDigest ? DIGEST_REQUEST_BYTES : payload.length, items: 1, shaped }, (id, deadlineMs) => {
        const request = pipelineRequest(model, payload, { id, deadlineMs, resultOnly: true });
        return {
          request: byDigest ? digestOnlyRequest(request, [digest]) : request,
          read: (response) => {
            if (byDigest && contentNeeded(response)) return undefined;
            cacheConsulted = response.parameters[ParameterNames.cacheHit] !== undefined;
            return readPipelineAnswer(response);
          },
        };
      });
    if (this.content.shouldAsk(model, digest, payload.length, this.link)) {
      const answer = await ask(true).catch((err: unknown) => {
        const e = toInferError(err);
        // A server without the extension finds no contents to decode: INVALID_ARGUMENT, or UNKNOWN from one that sends no status code in-stream.
        if (e.code !== 'INVALID_ARGUMENT' && e.code !== 'UNKNOWN') throw err;
        this.content.refused(this.config.cloud.address, e.message);
        return undefined;
      });
      this.content.answeredByDigest(digest, answer !== undefined);
      if (answer) return answer;
    }
    const answer = await ask(false);
    this.content.answeredInFull(model, digest, cacheConsulted);
    return answer!;
  }

  /**
   * Runs a video chunk in the cloud as one request: its frames as JPEGs
   * (shaped), their times, and the video's sequence parameters. The answer's
   * chunk index is the edge's: the cloud counts from its sequence's start,
   * which restarts whenever chunks ran on the edge in between.
   */
  async inferChunk(model: string, chunk: ChunkWork, call: OffloadCall): Promise<OffloadAnswer> {
    this.ensureCloudAvailable();
    const started = performance.now();
    const { payloads, shaped } = await shapeFrames(chunk.frames, call.shaping ?? this.defaultShaping);
    chunk.shaping = shaped.option.name;
    await chunk.turn();
    const bytes = payloads.reduce((sum, p) => sum + p.length, 0);
    this.counters.tasks++;
    this.counters.bytesBeforeShrink += bytes;
    chunk.sentBytes += bytes;
    const answer = await this.send(call, started, { bytes, items: payloads.length, shaped }, (id, deadlineMs) => {
      const request = chunkRequest(model, payloads, chunk.frames.map((f) => f.timeMs), chunk.sequence(), { id, deadlineMs, resultOnly: true, weights: chunk.weights });
      return {
        request,
        read: (response) => {
          const { answer, queueUs, computeUs } = readChunkAnswer(response);
          return { result: { ...answer, chunk: chunk.index }, queueUs, computeUs };
        },
      };
    });
    return answer!;
  }

  /** Sends a prepared request on the stream within what is left of the budget, and times the answer; undefined when `read` finds none in the response. */
  private async send(
    call: OffloadCall,
    started: number,
    payload: { bytes: number; items: number; shaped?: ShapedImage },
    build: (id: string, deadlineMs: number) => { request: PipelineRequest; read: (response: ModelInferResponse) => { result: Record<string, unknown>; queueUs: number; computeUs: number } | undefined },
  ): Promise<OffloadAnswer | undefined> {
    const sentAt = performance.now();
    this.counters.bytesSent += payload.bytes;
    const budgetMs = Math.round(call.budgetMs - (sentAt - started));
    if (budgetMs <= 0) throw new InferError('DEADLINE_EXCEEDED', `${call.taskId}: no time left to offload after preparing the input`);
    const id = `${call.taskId}#${++this.sequence}`;
    const { request, read } = build(id, budgetMs);
    if (call.traceparent) request.parameters = { ...request.parameters, [ParameterNames.traceparent]: stringParameter(call.traceparent) };
    const response = await this.stream.send({ ...request, id }, budgetMs);
    const answeredAt = performance.now();
    const answer = read(response);
    if (!answer) return undefined;
    const queueMs = answer.queueUs / 1000;
    const computeMs = answer.computeUs / 1000;
    const totalMs = answeredAt - started;
    return {
      result: answer.result,
      totalMs,
      queueMs,
      computeMs,
      transferMs: Math.max(0, totalMs - queueMs - computeMs),
      prepareMs: sentAt - started,
      linkMs: Math.max(0, answeredAt - sentAt - queueMs - computeMs),
      sentBytes: payload.bytes,
      items: payload.items,
      shaped: payload.shaped,
    };
  }

  /**
   * One ServerLive round trip, timed: the link estimator's probe when no
   * small request refreshed the RTT for a while, and the stall probe. Only
   * while the circuit is closed; the breaker's own probe deals with an
   * unreachable cloud.
   */
  async measureRoundTripMs(timeoutMs = this.options.probeTimeoutMs): Promise<number> {
    this.ensureCloudAvailable();
    const started = performance.now();
    await this.stream.unary((channel) => callUnary(channel, GRPCInferenceService.method.serverLive, {}, { deadline: Date.now() + timeoutMs }));
    return performance.now() - started;
  }

  /** Fails items still in flight with UNAVAILABLE, ends the stream and closes the channel. */
  close(): void {
    this.stallProbe?.stop();
    this.breaker.stop();
    this.stream.close();
  }

  /**
   * What one answered (or timed-out) item tells the breaker: success, a cloud
   * fault, or nothing. A timeout counts only for a budget the cloud should
   * have met (`faultBudgetFloorMs`).
   */
  private recordOutcome(code: ErrorCode | undefined, message: string, budgetMs: number): void {
    if (code === undefined || !cloudFaults.has(code)) this.breaker.recordSuccess();
    else if (code !== 'DEADLINE_EXCEEDED' || budgetMs >= this.faultBudgetFloorMs()) this.breaker.recordFailure(message);
  }

  /**
   * The shortest budget whose timeout says the cloud is unhealthy: at least
   * `offload.minFaultBudgetMs`, and two high round trips. A task's own short
   * deadline running out says nothing about the cloud (nor that it is healthy),
   * so it is neither a failure nor a success for the breaker: three requests
   * with 50 ms deadlines must not stop offloading for everyone.
   */
  private faultBudgetFloorMs(): number {
    return Math.max(this.config.offload.minFaultBudgetMs, 2 * (this.link?.rttEstimate()?.high ?? 0));
  }

  /** UNAVAILABLE while the circuit is not closed: nothing is sent then. */
  ensureCloudAvailable(): void {
    const { state, lastError } = this.breaker.health();
    if (state !== 'closed') throw new InferError('UNAVAILABLE', `the cloud tier at ${this.config.cloud.address} is unavailable (circuit ${state}: ${lastError ?? 'probing'})`);
  }
}
