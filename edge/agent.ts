/**
 * The edge agent's core, without any transport: a request is split into one
 * task per modality, each placed by the placement strategy and run
 * concurrently on the local runtime or in the cloud; a cloud failure falls
 * back to the local variant while the deadline allows; the outcomes merge into
 * one response that says where each modality ran and why. MQTT ingress calls
 * `handle`.
 */
import type { Catalog } from '../shared/catalog.js';
import { InferError, toInferError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { EdgeConfig } from './config.js';
import { LocalRuntime } from './local-runtime.js';
import { OffloadClient, type BreakerOptions, type OffloadStats } from './offload-client.js';
import { rulesStrategyName } from './policy/rules.js';
import { createPlacementStrategy, type CloudHealth, type PlacementDecision, type PlacementStrategy } from './policy/strategy.js';
import type { AgentRequest, AgentResponse, Modality, Placement, Site, TaskTimings } from './request.js';
import { mergeOutcomes, splitRequest, taskResult, type Task, type TaskOutcome } from './tasks.js';

export interface EdgeAgentOptions {
  /** A registered placement strategy; default `rules`. */
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

/** Cloud failures that the local variant can make up for; others (bad input, unknown model) would fail locally too. */
const fallbackCodes = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED']);

const roundMs = (ms: number) => Math.round(ms * 10) / 10;

export class EdgeAgent {
  private requests = 0;
  private readonly counts: Partial<Record<Modality, ModalityCounts>> = {};
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly config: EdgeConfig,
    private readonly log: Logger,
    private readonly local: LocalRuntime,
    private readonly offload: OffloadClient,
    private readonly strategy: PlacementStrategy,
  ) {}

  /** Opens and warms the local models and connects to the cloud; an unreachable cloud is not an error (its circuit starts open). */
  static async start(config: EdgeConfig, log: Logger, options: EdgeAgentOptions = {}): Promise<EdgeAgent> {
    const strategy = createPlacementStrategy(options.placementStrategy ?? rulesStrategyName, config);
    const local = await LocalRuntime.open(config, log, options.catalog);
    let offload: OffloadClient;
    try {
      offload = await OffloadClient.connect(config, log, options.breaker);
    } catch (err) {
      await local.close();
      throw err;
    }
    const agent = new EdgeAgent(config, log, local, offload, strategy);
    log.info({ cloud: config.cloud, circuit: offload.health().state, strategy: strategy.name, local: agent.localVariants() }, 'edge agent ready');
    return agent;
  }

  /** Answers a request; never throws: failures are reported per modality (or as `errors.request`). */
  async handle(request: AgentRequest): Promise<AgentResponse> {
    const arrived = performance.now();
    this.requests++;
    const { tasks, rejected, requestError } = splitRequest(request, this.config, arrived);
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
    try {
      decision = await this.strategy.decide(task, { cloud: this.offload.health(), localVariant, config: this.config });
    } catch (err) {
      const message = `placement strategy '${this.strategy.name}' failed for ${task.id}: ${toInferError(err).message}`;
      this.log.error({ task: task.id, err: message }, 'placement failed');
      return { modality: task.modality, error: new InferError('INTERNAL', message, { cause: err }) };
    }
    const placement: Placement = { ran: decision.site, why: decision.why, estimates: { ...decision.estimates } };
    this.log.debug({ task: task.id, placement, payloadBytes: task.payloadBytes }, 'placement');
    let answer: SiteAnswer | undefined;
    let error: InferError | undefined;
    try {
      answer = await this.withinDeadline(task, placement, this.execute(task, placement, localVariant));
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
    this.strategy.observe?.(task, { site: placement.ran, timings, failed: error !== undefined });
    // A copy: work that lost the deadline race must not edit a response already sent.
    const reported = { ...placement, estimates: { ...placement.estimates } };
    return answer
      ? { modality: task.modality, placement: reported, timings, result: taskResult(task, answer.itemResults) }
      : { modality: task.modality, placement: reported, timings, error };
  }

  /** Runs where placed; a cloud failure the local variant can make up for is retried on the edge, and `placement` says so. */
  private async execute(task: Task, placement: Placement, localVariant: string | undefined): Promise<SiteAnswer> {
    if (placement.ran === 'edge') return { ...(await this.local.run(task)), transferMs: 0 };
    const leftMs = task.deadlineAt - performance.now();
    // Keep time for a local retry: the local service time learned so far, at most half of what is left.
    const localReserveMs = localVariant ? Math.min(this.local.expectedMs(task), leftMs / 2) : 0;
    Object.assign(placement.estimates, { cloudBudgetMs: Math.round(leftMs - localReserveMs), localReserveMs: Math.round(localReserveMs) });
    try {
      return await this.runInCloud(task, leftMs - localReserveMs);
    } catch (err) {
      const e = toInferError(err);
      if (!localVariant || !fallbackCodes.has(e.code) || performance.now() >= task.deadlineAt) throw e;
      placement.ran = 'edge';
      placement.why += `; the cloud failed (${e.code}: ${e.message}), so it was retried on the edge with the local ${localVariant} variant`;
      this.countFallback(task.modality);
      return { ...(await this.local.run(task)), transferMs: 0 };
    }
  }

  /** Every item on the shared stream at once; a video's timings are sums over its frames. */
  private async runInCloud(task: Task, budgetMs: number): Promise<SiteAnswer> {
    const image = task.modality === 'image' || task.modality === 'video';
    const answers = await Promise.all(
      task.items.map((item, i) =>
        this.offload.infer(task.model, item, { taskId: task.items.length > 1 ? `${task.id}/${i}` : task.id, budgetMs, image }).catch((err: unknown) => {
          const e = toInferError(err);
          throw task.modality === 'video' ? new InferError(e.code, `video frame ${i}: ${e.message}`, { cause: err }) : e;
        }),
      ),
    );
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
