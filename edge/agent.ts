/**
 * The edge agent's core, without any transport: a request is split into one
 * task per modality, each placed by the placement strategy and run
 * concurrently on the local runtime or in the cloud; a cloud failure falls
 * back to the local variant while the deadline allows; the outcomes merge into
 * one response that says where each modality ran and why. What each site
 * measured goes to the placement estimators, then to the strategy. MQTT
 * ingress calls `handle`.
 */
import { loadCatalog, type Catalog } from '../shared/catalog.js';
import { InferError, toInferError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { EdgeConfig } from './config.js';
import { LocalRuntime } from './local-runtime.js';
import { OffloadClient, type BreakerOptions, type OffloadStats } from './offload-client.js';
import { PlacementEstimators } from './policy/estimators.js';
import { measureInputSize, type InputSize } from './policy/input-size.js';
import type { ShapingOption } from './policy/payload-estimator.js';
import './policy/strategies.js';
import {
  createPlacementStrategy,
  type CloudHealth,
  type PlacementDecision,
  type PlacementOutcome,
  type PlacementStrategy,
} from './policy/strategy.js';
import type { AgentRequest, AgentResponse, Modality, Placement, Site, TaskTimings } from './request.js';
import { mergeOutcomes, splitRequest, taskResult, type Task, type TaskOutcome } from './tasks.js';

export interface EdgeAgentOptions {
  /** A registered placement strategy; default config `policy.strategy`. */
  placementStrategy?: string;
  breaker?: Partial<BreakerOptions>;
  /** The model catalog; default models/catalog.yaml. */
  catalog?: Catalog;
}

export interface ModalityCounts {
  edge: number;
  cloud: number;
  failed: number;
  /** Tasks placed in the cloud that ran on the edge after the cloud failed. */
  fallbacks: number;
}

export interface EdgeAgentStats {
  requests: number;
  /** Tasks by modality and the site they ran on (the last one tried, for failures). */
  tasks: Partial<Record<Modality, ModalityCounts>>;
  cloud: CloudHealth;
  offload: OffloadStats;
}

/** What either site reports for a task; totals are measured around it. */
interface SiteAnswer {
  itemResults: Record<string, unknown>[];
  queueMs: number;
  computeMs: number;
  transferMs: number;
}

/** What the sites measured while running one task, for the estimators. */
type Measurements = Pick<PlacementOutcome, 'localItemComputeMs' | 'cloudItems' | 'cloudTimeoutMs' | 'uplinkWaitMs'>;

/** One task on its way: the decision it follows and what it measured so far. */
interface RunningTask {
  task: Task;
  placement: Placement;
  decision: PlacementDecision;
  localVariant: string | undefined;
  inputSize: InputSize;
  measured: Measurements;
}

/** Cloud failures that the local variant can make up for; others (bad input, unknown model) would fail locally too. */
const fallbackCodes = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED']);

const roundMs = (ms: number) => Math.round(ms * 10) / 10;

export class EdgeAgent {
  private requests = 0;
  private readonly counts: Partial<Record<Modality, ModalityCounts>> = {};
  private closing: Promise<void> | undefined;
  private readonly stallTimer: NodeJS.Timeout;

  private constructor(
    private readonly config: EdgeConfig,
    private readonly log: Logger,
    private readonly local: LocalRuntime,
    private readonly offload: OffloadClient,
    private readonly strategy: PlacementStrategy,
    private readonly estimators: PlacementEstimators,
    private readonly catalog: Catalog,
  ) {
    // A tenth of the stall threshold: a stalled link is noticed within ~10% of it.
    this.stallTimer = setInterval(() => void estimators.checkStall(), Math.max(10, config.policy.stallSilenceMs / 10));
    this.stallTimer.unref();
  }

  /** Opens and warms the local models and connects to the cloud; an unreachable cloud is not an error (its circuit starts open). */
  static async start(config: EdgeConfig, log: Logger, options: EdgeAgentOptions = {}): Promise<EdgeAgent> {
    const strategy = createPlacementStrategy(options.placementStrategy ?? config.policy.strategy, config);
    const catalog = options.catalog ?? loadCatalog();
    const local = await LocalRuntime.open(config, log, catalog);
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
        linkStalled: (reason) => offload.reportStall(reason),
        localItemsAhead: (modality) => local.itemsAhead(modality),
        warmups: local.warmupRuns(),
        cloudReachable: offload.health().state === 'closed',
      },
      log,
    );
    const agent = new EdgeAgent(config, log, local, offload, strategy, estimators, catalog);
    log.info({ cloud: config.cloud, circuit: offload.health().state, strategy: strategy.name, local: agent.localVariants() }, 'edge agent ready');
    return agent;
  }

  /** Answers a request; never throws: failures are reported per modality (or as `errors.request`). */
  async handle(request: AgentRequest): Promise<AgentResponse> {
    const arrived = performance.now();
    this.requests++;
    const { tasks, rejected, requestError } = splitRequest(request, this.config, arrived, this.catalog);
    const outcomes = await Promise.all(tasks.map((task) => this.runTask(task)));
    const response = mergeOutcomes(request.id, [...rejected, ...outcomes], requestError);
    this.log.info(
      {
        id: request.id,
        totalMs: roundMs(performance.now() - arrived),
        ran: Object.fromEntries(Object.entries(response.placement).map(([m, p]) => [m, p.ran])),
        errors: response.errors && Object.fromEntries(Object.entries(response.errors).map(([m, e]) => [m, e.code])),
      },
      'request',
    );
    return response;
  }

  stats(): EdgeAgentStats {
    return {
      requests: this.requests,
      tasks: structuredClone(this.counts),
      cloud: this.offload.health(),
      offload: this.offload.stats(),
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.stallTimer);
      this.estimators.close();
      this.offload.close();
      await this.local.close();
    })();
    return this.closing;
  }

  private localVariants(): Partial<Record<Modality, string>> {
    const variants: Partial<Record<Modality, string>> = {};
    for (const modality of Object.keys(this.config.modalities) as Modality[]) {
      const variant = this.local.variantFor(modality);
      if (variant) variants[modality] = variant;
    }
    return variants;
  }

  private async runTask(task: Task): Promise<TaskOutcome> {
    const started = performance.now();
    const localVariant = this.local.variantFor(task.modality);
    let decision: PlacementDecision;
    let inputSize: InputSize;
    try {
      inputSize = await measureInputSize(task.handler, task.items);
      decision = await this.strategy.decide(task, { cloud: this.offload.health(), localVariant, config: this.config, estimators: this.estimators, inputSize });
    } catch (err) {
      const message = `placement strategy '${this.strategy.name}' failed for ${task.id}: ${toInferError(err).message}`;
      this.log.error({ task: task.id, err: message }, 'placement failed');
      return { modality: task.modality, error: new InferError('INTERNAL', message, { cause: err }) };
    }
    const placement: Placement = { ran: decision.site, why: decision.why, estimates: { ...decision.estimates } };
    this.log.debug({ task: task.id, placement, payloadBytes: task.payloadBytes }, 'placement');
    const running: RunningTask = { task, placement, decision, localVariant, inputSize, measured: {} };
    let answer: SiteAnswer | undefined;
    let error: InferError | undefined;
    try {
      answer = await this.withinDeadline(task, placement, this.execute(running));
    } catch (err) {
      error = this.explain(task, toInferError(err), localVariant);
    }
    const timings: TaskTimings = {
      totalMs: roundMs(performance.now() - started),
      queueMs: roundMs(answer?.queueMs ?? 0),
      computeMs: roundMs(answer?.computeMs ?? 0),
      transferMs: roundMs(answer?.transferMs ?? 0),
    };
    this.count(task.modality, placement.ran, error !== undefined);
    const outcome: PlacementOutcome = { site: placement.ran, timings, failed: error !== undefined, inputSize, ...running.measured };
    this.estimators.record(task, outcome, localVariant);
    this.strategy.observe?.(task, outcome);
    if (decision.expectedHighMs !== undefined) this.log.debug({ task: task.id, expectedHighMs: decision.expectedHighMs, totalMs: timings.totalMs }, 'placement estimate');
    // A copy: work that lost the deadline race must not edit a response already sent.
    const reported = { ...placement, estimates: { ...placement.estimates } };
    return answer
      ? { modality: task.modality, placement: reported, timings, result: taskResult(task, answer.itemResults) }
      : { modality: task.modality, placement: reported, timings, error };
  }

  /** Runs where placed; a cloud failure the local variant can make up for is retried on the edge, and `placement` says so. */
  private async execute(running: RunningTask): Promise<SiteAnswer> {
    const { task, placement, decision, localVariant } = running;
    if (placement.ran === 'edge') return this.escalate(running, await this.runLocally(running));
    const leftMs = task.deadlineAt - performance.now();
    // Keep time for a local retry: the expected local time, at most half of what is left, and never
    // so much that the cloud loses the time the decision expects it to need.
    const localExpectedMs = localVariant ? (this.estimators.edge(task, running.inputSize, localVariant)?.expectedMs ?? 0) : 0;
    const localReserveMs = Math.max(0, Math.min(localExpectedMs, leftMs / 2, leftMs - (decision.expectedHighMs ?? 0)));
    Object.assign(placement.estimates, { cloudBudgetMs: Math.round(leftMs - localReserveMs), localReserveMs: Math.round(localReserveMs) });
    try {
      return await this.runInCloud(running, leftMs - localReserveMs, decision.shaping, decision.expectedHighMs);
    } catch (err) {
      const e = toInferError(err);
      if (!localVariant || !fallbackCodes.has(e.code) || performance.now() >= task.deadlineAt) throw e;
      placement.ran = 'edge';
      placement.why += `; the cloud failed (${e.code}: ${e.message}), so it was retried on the edge with the local ${localVariant} variant`;
      this.countFallback(task.modality);
      return this.runLocally(running);
    }
  }

  private async runLocally(running: RunningTask): Promise<SiteAnswer> {
    const answer = await this.local.run(running.task);
    running.measured.localItemComputeMs = answer.itemComputeMs;
    return { ...answer, transferMs: 0 };
  }

  /**
   * Hard-example mining (the `confidence` strategy): when the strategy finds
   * the edge's result doubtful, the cloud runs the task too and its answer
   * replaces the edge's; if the cloud cannot answer in the time left, the
   * edge's answer stands.
   */
  private async escalate(running: RunningTask, edgeAnswer: SiteAnswer): Promise<SiteAnswer> {
    const { task, placement } = running;
    const reason = this.strategy.escalate?.(task, taskResult(task, edgeAnswer.itemResults));
    if (!reason) return edgeAnswer;
    const leftMs = task.deadlineAt - performance.now();
    // A margin so that a late cloud still leaves time to send the edge's answer.
    const budgetMs = leftMs - Math.max(10, leftMs * 0.05);
    placement.estimates.escalation = reason;
    if (budgetMs <= 0) {
      placement.why += `; ${reason}, but no time is left to ask the cloud`;
      return edgeAnswer;
    }
    try {
      const cloudAnswer = await this.runInCloud(running, budgetMs, undefined, undefined);
      placement.ran = 'cloud';
      placement.why += `; ${reason}, so the cloud ran it too and its answer is the one returned`;
      return {
        itemResults: cloudAnswer.itemResults,
        queueMs: edgeAnswer.queueMs + cloudAnswer.queueMs,
        computeMs: edgeAnswer.computeMs + cloudAnswer.computeMs,
        transferMs: cloudAnswer.transferMs,
      };
    } catch (err) {
      const e = toInferError(err);
      placement.why += `; ${reason}, but the cloud failed (${e.code}: ${e.message}), so the edge's answer stands`;
      return edgeAnswer;
    }
  }

  /** Every item on the shared stream at once; a video's timings are sums over its frames. */
  private async runInCloud(running: RunningTask, budgetMs: number, shaping: ShapingOption | undefined, expectedHighMs: number | undefined): Promise<SiteAnswer> {
    const { task, measured } = running;
    const image = task.modality === 'image' || task.modality === 'video';
    const started = performance.now();
    const offload = this.estimators.cloudTaskStarted(task, running.inputSize, shaping, expectedHighMs);
    measured.uplinkWaitMs = offload.uplinkWaitMs;
    const answers = await Promise.all(
      task.items.map((item, i) =>
        this.offload.infer(task.model, item, { taskId: task.items.length > 1 ? `${task.id}/${i}` : task.id, budgetMs, image, shaping }).catch((err: unknown) => {
          const e = toInferError(err);
          throw task.modality === 'video' ? new InferError(e.code, `video frame ${i}: ${e.message}`, { cause: err }) : e;
        }),
      ),
    )
      .catch((err: unknown) => {
        if (toInferError(err).code === 'DEADLINE_EXCEEDED') measured.cloudTimeoutMs = performance.now() - started;
        throw err;
      })
      .finally(offload.settled);
    measured.cloudItems = answers;
    const sum = (pick: (a: (typeof answers)[number]) => number) => answers.reduce((n, a) => n + pick(a), 0);
    return {
      itemResults: answers.map((a) => a.result),
      queueMs: sum((a) => a.queueMs),
      computeMs: sum((a) => a.computeMs),
      transferMs: sum((a) => a.transferMs),
    };
  }

  /** The answer, or DEADLINE_EXCEEDED once the request's budget is spent, whatever the site is still doing. */
  private withinDeadline<T>(task: Task, placement: Placement, work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new InferError('DEADLINE_EXCEEDED', `${task.modality}: no answer ${placement.ran === 'edge' ? 'on the edge' : 'from the cloud'} within the request's ${task.deadlineMs} ms deadline`)),
        Math.max(0, task.deadlineAt - performance.now()),
      );
    });
    return Promise.race([work, expired]).finally(() => clearTimeout(timer));
  }

  /** Adds what the user can do when the cloud is gone and there is nothing local to fall back to. */
  private explain(task: Task, err: InferError, localVariant: string | undefined): InferError {
    if (err.code !== 'UNAVAILABLE' || localVariant) return err;
    return new InferError(
      'UNAVAILABLE',
      `${task.modality}: ${err.message} — ${task.modality} has no local variant to fall back to (set modalities.${task.modality}.localVariant to run it on this device)`,
      { cause: err },
    );
  }

  private countsOf(modality: Modality): ModalityCounts {
    return (this.counts[modality] ??= { edge: 0, cloud: 0, failed: 0, fallbacks: 0 });
  }

  private count(modality: Modality, site: Site, failed: boolean): void {
    const counts = this.countsOf(modality);
    counts[site]++;
    if (failed) counts.failed++;
  }

  private countFallback(modality: Modality): void {
    this.countsOf(modality).fallbacks++;
  }
}
