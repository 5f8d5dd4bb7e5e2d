/**
 * The edge agent's core, without any transport: a request is split into one
 * task per modality (tasks.ts), each run concurrently by the task runner
 * (placement, the local runtime or the cloud, fallback), and the outcomes
 * merge into one response that says where each modality ran and why. MQTT
 * ingress calls `handle`.
 */
import { loadCatalog, type Catalog } from '../shared/catalog.js';
import type { Logger } from '../shared/log.js';
import { parseTraceparent } from '../shared/trace-context.js';
import { passThroughTracer, type RequestTracer } from '../shared/tracing.js';
import type { EdgeConfig } from './config.js';
import { LocalRuntime } from './local-runtime.js';
import type { AvailableMemory } from './local-reference.js';
import { recordResponse, type EdgeMetrics } from './metrics.js';
import type { LinkSnapshot } from './policy/link-estimator.js';
import type { BreakerOptions, CloudHealth } from './offload/circuit-breaker.js';
import { describeCloudLink } from './offload/cloud-link.js';
import { OffloadClient, type OffloadStats } from './offload/offload-client.js';
import { PlacementEstimators } from './policy/estimators.js';
import { measureInputSize } from './policy/input-size.js';
import './policy/strategies.js';
import { createPlacementStrategy, type PlacementStrategy } from './policy/strategy.js';
import type { AgentRequest, AgentResponse, ChunkMessage, Modality } from './request.js';
import { TaskRunner, type ModalityCounts } from './task-runner.js';
import { enforcePixelBudget, mergeOutcomes, splitRequest } from './tasks.js';
import { VideoRunner, type ChunkOutcome, type VideoCounts } from './video/video-runner.js';

export type { ModalityCounts };

export interface EdgeAgentOptions {
  /** A registered placement strategy; default config `policy.strategy`. */
  placementStrategy?: string;
  breaker?: Partial<BreakerOptions>;
  /** The model catalog; default models/catalog.yaml. */
  catalog?: Catalog;
  /** Counts requests, tasks and local runs (edge/metrics.ts); absent: nothing is counted. */
  metrics?: EdgeMetrics;
  /** Spans for requests (shared/tracing.ts); default: the request's trace context passes through. */
  tracer?: RequestTracer;
  /** What loading a reference variant on demand checks the memory with (`localReference`); default: the device's available memory. */
  availableMemory?: AvailableMemory;
}

export interface EdgeAgentStats {
  requests: number;
  /** Tasks by modality and the site they ran on (the last one tried, for failures). */
  tasks: Partial<Record<Modality, ModalityCounts>>;
  cloud: CloudHealth;
  offload: OffloadStats;
  video: VideoCounts;
}

/** Hears each video chunk's answer as soon as it is known, in chunk order, before the request's answer. */
export type ChunkPublisher = (message: ChunkMessage) => void;

const roundMs = (ms: number) => Math.round(ms * 10) / 10;

export class EdgeAgent {
  private requests = 0;
  private closing: Promise<void> | undefined;
  private readonly runner: TaskRunner;
  private readonly video: VideoRunner;

  private constructor(
    private readonly config: EdgeConfig,
    private readonly log: Logger,
    private readonly local: LocalRuntime,
    private readonly offload: OffloadClient,
    private readonly estimators: PlacementEstimators,
    strategy: PlacementStrategy,
    private readonly catalog: Catalog,
    private readonly metrics: EdgeMetrics | undefined,
    private readonly tracer: RequestTracer,
  ) {
    this.runner = new TaskRunner({ log, local, offload, estimators, strategy });
    this.video = new VideoRunner(config.video, this.runner, log);
  }

  /** Opens and warms the local models and connects to the cloud; an unreachable cloud is not an error (its circuit starts open). */
  static async start(config: EdgeConfig, log: Logger, options: EdgeAgentOptions = {}): Promise<EdgeAgent> {
    // First: an unknown strategy fails before anything is opened.
    const strategy = createPlacementStrategy(options.placementStrategy ?? config.policy.strategy, config);
    const catalog = options.catalog ?? loadCatalog();
    const runSeconds = options.metrics?.localRunSeconds;
    const local = await LocalRuntime.open(config, log, catalog, {
      observeRun: runSeconds && ((model, variant, ms) => runSeconds.observe({ model, variant }, ms / 1000)),
      availableMemory: options.availableMemory,
    });
    let offload: OffloadClient;
    try {
      offload = await OffloadClient.connect(config, log, options.breaker);
    } catch (err) {
      await local.close();
      throw err;
    }
    const estimators = await PlacementEstimators.start(
      config,
      catalog,
      {
        probeRoundTripMs: (timeoutMs) => offload.measureRoundTripMs(timeoutMs),
        localItemsAhead: (task, variant) => local.itemsAhead(task, variant),
        warmups: local.warmupRuns(),
        cloudReachable: offload.health().state === 'closed',
      },
      log,
    );
    offload.watchForStalls(estimators.link);
    local.onReferenceLoaded((warmup) => void estimators.recordWarmup(warmup).catch((err: unknown) => log.warn({ model: warmup.model, variant: warmup.variant, err: String(err) }, 'warm-up run not recorded')));
    const agent = new EdgeAgent(config, log, local, offload, estimators, strategy, catalog, options.metrics, options.tracer ?? passThroughTracer);
    const { transport, exposed } = describeCloudLink(config.cloud);
    log[exposed ? 'warn' : 'info'](
      { cloud: config.cloud.address, cloudTransport: transport, circuit: offload.health().state, strategy: strategy.name, local: local.variants() },
      `edge agent ready; cloud tier over ${transport}`,
    );
    return agent;
  }

  /**
   * Answers a request; never throws: failures are reported per modality (or
   * as `errors.request`). With `publishChunk`, a video is answered
   * progressively (unless the request says `stream: false`): each chunk as
   * it is known, then the answer, marked `final`.
   */
  async handle(request: AgentRequest, publishChunk?: ChunkPublisher): Promise<AgentResponse> {
    const arrived = performance.now();
    this.requests++;
    const span = this.tracer.start('edge request', parseTraceparent(request.traceparent), { 'splitinfer.request_id': request.id, 'splitinfer.device_id': this.config.deviceId });
    const { tasks, rejected, requestError } = splitRequest({ ...request, traceparent: span.traceparent }, this.config, arrived, this.catalog);
    // Measured once, from headers, for the pixel budget and for placement; a failure here is the runner's to report.
    const sized = await Promise.all(tasks.map(async (task) => ({ task, inputSize: await measureInputSize(task.handler, task.items).catch(() => undefined) })));
    const { runnable, rejected: overBudget } = enforcePixelBudget(sized, this.config.limits.maxDecodedPixels);
    const progressive = publishChunk && request.stream !== false ? publishChunk : undefined;
    const outcomes = await Promise.all(
      runnable.map(({ task, inputSize }) =>
        task.modality === 'video' ? this.video.run(task, progressive && ((chunk) => progressive(chunkMessage(request.id, chunk)))) : this.runner.run(task, inputSize),
      ),
    );
    const response = mergeOutcomes(request.id, [...rejected, ...overBudget, ...outcomes], requestError);
    if (progressive && request.inputs.video !== undefined) response.final = true;
    const totalMs = performance.now() - arrived;
    const ran = Object.fromEntries(Object.entries(response.placement).map(([m, p]) => [m, p.ran]));
    const errors = response.errors && Object.fromEntries(Object.entries(response.errors).map(([m, e]) => [m, e.code]));
    this.log.info({ id: request.id, traceparent: span.traceparent, totalMs: roundMs(totalMs), ran, errors }, 'request');
    if (this.metrics) recordResponse(this.metrics, response, totalMs);
    span.end({ 'splitinfer.ran': JSON.stringify(ran) }, errors && `failed: ${JSON.stringify(errors)}`);
    return response;
  }

  /** The link estimator's view of the cloud link now (the metrics' RTT and uplink gauges). */
  linkSnapshot(): LinkSnapshot {
    return this.estimators.link.snapshot();
  }

  stats(): EdgeAgentStats {
    return {
      requests: this.requests,
      tasks: structuredClone(this.runner.counts),
      cloud: this.offload.health(),
      offload: this.offload.stats(),
      video: { ...this.video.counts },
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.estimators.close();
      this.offload.close();
      await this.local.close();
    })();
    return this.closing;
  }
}

function chunkMessage(id: string, chunk: ChunkOutcome): ChunkMessage {
  return {
    id,
    chunk: chunk.chunk,
    final: false,
    latencyMs: chunk.latencyMs,
    results: chunk.result ? { video: chunk.result } : {},
    placement: chunk.placement ? { video: chunk.placement } : {},
    timings: chunk.timings ? { video: chunk.timings } : {},
    ...(chunk.error ? { errors: { video: { code: chunk.error.code, message: chunk.error.message } } } : {}),
  };
}
