/**
 * One task, from placement to outcome: the constraint step and the strategy
 * place it (policy/constraints.ts), it runs on the local runtime or in the
 * cloud, a cloud failure the local variant can make up for is retried on the
 * edge while the deadline allows, and a strategy may review an edge answer
 * (policy/strategy.ts `review`). A task whose quality floor rules the light
 * local variant out may run the model's reference variant on the edge where
 * the device holds it (`edgeVariants`). What each site measured goes to the
 * estimators, then to the strategy; the placement record is built once, at
 * the end (policy/placement-record.ts).
 */
import { InferError, toInferError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { LocalRuntime } from './local-runtime.js';
import type { OffloadClient } from './offload/offload-client.js';
import { decidePlacement, qualityShortfall, type PlacementDecision } from './policy/constraints.js';
import type { PlacementEstimators } from './policy/estimators.js';
import { measureInputSize, type InputSize } from './policy/input-size.js';
import type { PlacementOutcome } from './policy/outcome.js';
import { placementRecord, type RunFacts } from './policy/placement-record.js';
import { reason } from './policy/reasons.js';
import type { PlacementContext, PlacementStrategy } from './policy/strategy.js';
import type { CloudHealth } from './offload/circuit-breaker.js';
import type { Modality, Site, TaskTimings } from './request.js';
import type { Task, TaskOutcome } from './tasks.js';
import { within } from '../shared/within.js';

export interface ModalityCounts {
  /** Tasks answered (or last tried) on each site. */
  edge: number;
  cloud: number;
  failed: number;
  /** Tasks placed in the cloud that ran on the edge after the cloud failed. */
  fallbacks: number;
}

export interface TaskRunnerParts {
  log: Logger;
  local: LocalRuntime;
  offload: OffloadClient;
  strategy: PlacementStrategy;
  estimators: PlacementEstimators;
}

/** What either site reports for a task; totals are measured around it. */
interface SiteAnswer {
  result: Record<string, unknown>;
  queueMs: number;
  computeMs: number;
  transferMs: number;
}

/** What the sites measured while running one task, for the estimators. */
type Measurements = Pick<PlacementOutcome, 'localItemComputeMs' | 'cloudAnswer' | 'cloudTimeoutMs' | 'uplinkWaitMs'>;

/** One task on its way: the decision it follows, what happened and what was measured so far. */
interface RunningTask {
  task: Task;
  decision: PlacementDecision;
  /** The local variant that may answer (for a fallback): none when the task's quality floor rules it out. */
  localVariant: string | undefined;
  inputSize: InputSize;
  facts: RunFacts;
  measured: Measurements;
}

/** What the task runner tells placement about the edge's variants for a task (policy/strategy.ts has the fields). */
type EdgeVariants = Pick<PlacementContext, 'localVariant' | 'edgeReference' | 'referenceUnavailable'>;

/** Cloud failures that the local variant can make up for (a busy cloud included); others (bad input, unknown model) would fail locally too. */
const fallbackCodes = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED']);

const roundMs = (ms: number) => Math.round(ms * 10) / 10;

export class TaskRunner {
  readonly counts: Partial<Record<Modality, ModalityCounts>> = {};

  constructor(private readonly parts: TaskRunnerParts) {}

  /** Runs one task; `measured` is its input size when the caller already read it. */
  async run(task: Task, measured?: InputSize): Promise<TaskOutcome> {
    const { log, offload, strategy, estimators } = this.parts;
    const started = performance.now();
    let variants: EdgeVariants;
    let decision: PlacementDecision;
    let inputSize: InputSize;
    try {
      inputSize = measured ?? (await measureInputSize(task.handler, task.items));
      const cloud = offload.health();
      variants = await this.edgeVariants(task, cloud);
      decision = decidePlacement(strategy, task, { cloud, ...variants, estimators, inputSize });
    } catch (err) {
      const message = `placement strategy '${strategy.name}' failed for ${task.id}: ${toInferError(err).message}`;
      log.error({ task: task.id, err: message }, 'placement failed');
      return { modality: task.modality, error: new InferError('INTERNAL', message, { cause: err }) };
    }
    log.debug({ task: task.id, site: decision.site, reasons: decision.reasons.map((r) => r.code), payloadBytes: task.payloadBytes }, 'placement');
    let runnerMs = performance.now() - started;
    const localVariant = variants.localVariant;
    const allowedVariant = qualityShortfall(task, localVariant) ? undefined : localVariant;
    const running: RunningTask = { task, decision, localVariant: allowedVariant, inputSize, facts: { ran: null }, measured: {} };
    let answer: SiteAnswer | undefined;
    let error: InferError | undefined;
    try {
      answer = await this.withinDeadline(running, this.execute(running));
    } catch (err) {
      error = this.explain(task, toInferError(err), variants);
    }
    const ranUntil = performance.now();
    const timings: TaskTimings = {
      totalMs: roundMs(performance.now() - started),
      queueMs: roundMs(answer?.queueMs ?? 0),
      computeMs: roundMs(answer?.computeMs ?? 0),
      transferMs: roundMs(answer?.transferMs ?? 0),
    };
    // Built now: work that lost the deadline race cannot change what is reported.
    const placement = placementRecord(decision, running.facts);
    this.count(task.modality, placement.ran, error !== undefined, placement.fallback !== undefined);
    const outcome: PlacementOutcome = { site: placement.ran ?? decision.site, timings, failed: error !== undefined, inputSize, ...running.measured };
    estimators.record(task, outcome, localVariant);
    strategy.observe?.(task, outcome);
    if (decision.expectedHighMs !== undefined) log.debug({ task: task.id, expectedHighMs: decision.expectedHighMs, totalMs: timings.totalMs }, 'placement estimate');
    runnerMs += performance.now() - ranUntil;
    return answer
      ? { modality: task.modality, placement, timings, result: answer.result, runnerMs }
      : { modality: task.modality, placement, timings, error, runnerMs };
  }

  /**
   * The variant the edge may run for this task: its light local one, or,
   * when the quality floor rules that out, the model's reference variant if
   * the device holds it (`localReference`). A reference not loaded yet is
   * loaded on this first need: awaited while the cloud is down (the edge is
   * then the only place to run it; at most until the task's deadline), in
   * the background while the cloud answers (this task goes there; later
   * ones may stay on the edge).
   */
  private async edgeVariants(task: Task, cloud: CloudHealth): Promise<EdgeVariants> {
    const light = this.parts.local.variantFor(task);
    const reference = this.parts.local.reference(task);
    if (!reference || !light || !qualityShortfall(task, light)) return { localVariant: light };
    let held = reference.held();
    if (!held && cloud.state === 'closed') void reference.load();
    else if (!held) held = await within(reference.load(), task.deadlineAt - performance.now());
    if (held) return { localVariant: reference.variant, edgeReference: { lightVariant: light } };
    const why = reference.unavailable() ?? 'it could not be loaded';
    return { localVariant: light, referenceUnavailable: reason.referenceUnavailable(task.settingsPath, reference.variant, why) };
  }

  /** Runs where placed; a cloud failure the local variant can make up for is retried on the edge. */
  private async execute(running: RunningTask): Promise<SiteAnswer> {
    const { task, decision, localVariant, facts } = running;
    if (decision.site === 'edge') {
      const edgeAnswer = await this.runLocally(running);
      return decision.constrained ? edgeAnswer : this.review(running, edgeAnswer);
    }
    const leftMs = task.deadlineAt - performance.now();
    // Keep time for a local retry: the expected local time, at most half of what is left, and never
    // so much that the cloud loses the time the decision expects it to need.
    const localExpectedMs = localVariant ? (this.parts.estimators.edge(task, running.inputSize, localVariant)?.expectedMs ?? 0) : 0;
    const localReserveMs = Math.max(0, Math.min(localExpectedMs, leftMs / 2, leftMs - (decision.expectedHighMs ?? 0)));
    facts.budget = { cloudBudgetMs: Math.round(leftMs - localReserveMs), localReserveMs: Math.round(localReserveMs) };
    try {
      return await this.runInCloud(running, leftMs - localReserveMs, decision);
    } catch (err) {
      const e = toInferError(err);
      if (!localVariant || !fallbackCodes.has(e.code) || performance.now() >= task.deadlineAt) throw e;
      facts.fallback = { code: e.code, message: e.message, localVariant };
      return this.runLocally(running);
    }
  }

  private async runLocally(running: RunningTask): Promise<SiteAnswer> {
    running.facts.ran = 'edge';
    const { task } = running;
    const answer = task.chunk ? await this.parts.local.runChunk(task, task.chunk) : await this.parts.local.run(task, running.decision.edgeVariant);
    running.measured.localItemComputeMs = answer.itemComputeMs;
    return { ...answer, transferMs: 0 };
  }

  /** The strategy may ask the cloud about the edge's answer; if the cloud answers, its answer replaces the edge's. */
  private async review(running: RunningTask, edgeAnswer: SiteAnswer): Promise<SiteAnswer> {
    const { strategy } = this.parts;
    if (!strategy.review) return edgeAnswer;
    let cloudAnswer: SiteAnswer | undefined;
    const askCloud = async (budgetMs: number) => {
      cloudAnswer = await this.runInCloud(running, budgetMs, {});
      return { result: cloudAnswer.result };
    };
    const review = await strategy.review(running.task, { result: edgeAnswer.result }, askCloud);
    if (!review) return edgeAnswer;
    running.facts.review = review;
    if (review.outcome !== 'cloud-answered' || !cloudAnswer) {
      running.facts.ran = 'edge';
      return edgeAnswer;
    }
    return {
      result: cloudAnswer.result,
      queueMs: edgeAnswer.queueMs + cloudAnswer.queueMs,
      computeMs: edgeAnswer.computeMs + cloudAnswer.computeMs,
      transferMs: cloudAnswer.transferMs,
    };
  }

  /** The task's one input (or a video chunk) on the shared stream. Fails at once, without leaving the device, while the cloud is down. */
  private async runInCloud(running: RunningTask, budgetMs: number, plan: Pick<PlacementDecision, 'shaping' | 'expectedHighMs'>): Promise<SiteAnswer> {
    const { task, measured } = running;
    const { offload, estimators } = this.parts;
    offload.ensureCloudAvailable();
    running.facts.ran = 'cloud';
    const started = performance.now();
    const inFlight = estimators.cloudTaskStarted(task, running.inputSize, plan.shaping, plan.expectedHighMs);
    measured.uplinkWaitMs = inFlight.uplinkWaitMs;
    const call = { taskId: task.id, budgetMs, image: task.modality === 'image', shaping: inFlight.shaping, traceparent: task.traceparent };
    try {
      const answer = task.chunk ? await offload.inferChunk(task.model, task.chunk, call) : await offload.infer(task.model, task.items[0]!, call);
      measured.cloudAnswer = answer;
      return { result: answer.result, queueMs: answer.queueMs, computeMs: answer.computeMs, transferMs: answer.transferMs };
    } catch (err) {
      if (toInferError(err).code === 'DEADLINE_EXCEEDED') measured.cloudTimeoutMs = performance.now() - started;
      throw err;
    } finally {
      inFlight.settled();
    }
  }

  /** The answer, or DEADLINE_EXCEEDED once the request's budget is spent, whatever the site is still doing. */
  private async withinDeadline(running: RunningTask, work: Promise<SiteAnswer>): Promise<SiteAnswer> {
    const { task, facts } = running;
    const answer = await within(work, task.deadlineAt - performance.now());
    if (answer) return answer;
    const site = facts.ran ?? running.decision.site;
    throw new InferError('DEADLINE_EXCEEDED', `${task.modality}: no answer ${site === 'edge' ? 'on the edge' : 'from the cloud'} within the request's ${task.deadlineMs} ms deadline`);
  }

  /** Adds what the user can do when the cloud is gone and there is nothing local to fall back to (or nothing the quality floor allows). */
  private explain(task: Task, err: InferError, { localVariant, referenceUnavailable }: EdgeVariants): InferError {
    if (err.code !== 'UNAVAILABLE') return err;
    const shortfall = qualityShortfall(task, localVariant);
    if (shortfall) {
      const reference = referenceUnavailable ? `; ${referenceUnavailable.text}` : '';
      return new InferError('UNAVAILABLE', `${task.settingsPath}: ${err.message} — ${shortfall.text}${reference}; ask for a lower quality to let the edge answer`, { cause: err });
    }
    if (localVariant) return err;
    return new InferError(
      'UNAVAILABLE',
      `${task.modality}: ${err.message} — ${task.modality} has no local variant to fall back to (set modalities.${task.modality}.localVariant to run it on this device)`,
      { cause: err },
    );
  }

  private count(modality: Modality, ran: Site | null, failed: boolean, fellBack: boolean): void {
    const counts = (this.counts[modality] ??= { edge: 0, cloud: 0, failed: 0, fallbacks: 0 });
    if (ran) counts[ran]++;
    if (failed) counts.failed++;
    if (fellBack) counts.fallbacks++;
  }
}
