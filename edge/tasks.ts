/**
 * A request becomes one task per modality it carries; each task runs where
 * placement puts it, and the outcomes merge back into one response in which
 * a failed modality never hides the others.
 */
import { findModel, loadCatalog, type Catalog } from '../shared/catalog.js';
import { InferError, toInferError } from '../shared/errors.js';
import { getHandler, type ModelHandler } from '../shared/handlers/handler.js';
import '../shared/handlers/index.js';
import type { EdgeConfig, TaskSettings } from './config.js';
import type { InputSize } from './policy/input-size.js';
import type { VideoFrame } from '../shared/video/chunk.js';
import type { SequenceFlags } from '../shared/video/chunk-wire.js';
import type { AgentRequest, AgentResponse, Modality, Placement, Quality, Site, TaskTimings, VideoInputValue } from './request.js';

export const modalities: readonly Modality[] = ['text', 'audio', 'image', 'video'];

export interface Task {
  /** `<request id>/<modality>`: names the task in logs and in offload request ids. */
  id: string;
  requestId: string;
  modality: Modality;
  /** Where its settings are under config `modalities` (`image`, `image.encode`); keys what the policy remembers per task. */
  settingsPath: string;
  /** Model, local variant and placement, resolved from config once, when the request is split. */
  settings: TaskSettings;
  /** Catalog model id (settings.model). */
  model: string;
  /** The request's quality floor (else the settings' minAgreement) and the local variant's agreement with the reference, from the catalog. */
  quality: { floor: Quality; localAgreement?: number };
  /** The model's handler, from its catalog entry: it checked and measures the items, and judges the result. */
  handler: ModelHandler;
  /** One item for text, audio and image; none for a video, whose chunks carry decoded frames. */
  items: Uint8Array[];
  /** A video task's input, which edge/video/ decodes into chunks. */
  video?: VideoInputValue;
  /** One chunk of a video: a task of its own, placed on its own. */
  chunk?: ChunkWork;
  payloadBytes: number;
  prefer?: Site;
  /** The request's whole budget, and the performance.now() time it runs out. */
  deadlineMs: number;
  deadlineAt: number;
  /** The request's trace context (the agent's span), sent on with every offload. */
  traceparent?: string;
}

/** One chunk of a video, as the sites need it. */
export interface ChunkWork {
  /** Index in the video, from 0. */
  index: number;
  frames: VideoFrame[];
  /** How many sampled frames each frame stands for: itself and the ones the filter dropped after it. */
  weights: number[];
  /** Resolves once the chunk before has gone to the cloud or will not go there: chunks reach the cloud's sequence in order. */
  turn(): Promise<void>;
  /** The video's sequence on the cloud, as the chunk is sent (after `turn`): `start` unless the chunk before went there too. */
  sequence(): SequenceFlags;
  /** The edge runs this chunk (placed there, or after the cloud failed): later chunks need not wait for it to reach the cloud. */
  runsOnEdge(): void;
  /** The last frame embedding of the chunk before, once it has settled, when the edge encoded it: the shot boundary at this chunk's first frame. */
  previousOnEdge(): Promise<EdgeEmbedding | undefined>;
  /** Set when the edge encoded this chunk. */
  lastOnEdge?: EdgeEmbedding;
  /** Encoded bytes sent to the cloud for it. */
  sentBytes: number;
  /** The shaping its frames were sent with (`640px q85`), when they were. */
  shaping?: string;
}

export interface EdgeEmbedding {
  graph: string;
  embedding: Float32Array;
}

/** How one task ended; a task rejected by input checks has no placement or timings. */
export interface TaskOutcome {
  modality: Modality;
  placement?: Placement;
  timings?: TaskTimings;
  result?: unknown;
  error?: InferError;
  /** The task runner's own milliseconds (placement decision, recording what was measured), not the site's work: measured for bench:video. */
  runnerMs?: number;
}

export interface SplitRequest {
  tasks: Task[];
  /** Modalities whose input failed the cheap checks (INVALID_ARGUMENT) or whose model the catalog lacks (NOT_FOUND). */
  rejected: TaskOutcome[];
  /** Set when the request as a whole cannot run (nothing to do). */
  requestError?: InferError;
}

/**
 * The task items of one modality's input, each checked by the model's handler
 * (INVALID_ARGUMENT when a cheap check already shows it is unusable). Video is
 * the one modality-level rule: a list of frames, each an input of the frame model.
 */
function taskItems(modality: Modality, value: unknown, handler: ModelHandler): Uint8Array[] {
  if (modality !== 'video') return [handler.checkInput(value, `${modality} input`)];
  if (!handler.sequence) throw new InferError('FAILED_PRECONDITION', `config modalities.video.model names ${handler.id}, which is not a video model — use video-encoder`);
  return [];
}

/** The variant the cloud serves by default: the reference that `quality` and catalog agreements are measured against. */
export const referenceVariant = 'fp32';

/** The settings of the task the request asks of a modality: its default task, or the image `encode` task. */
function taskSettings(request: AgentRequest, modality: Modality, config: EdgeConfig): { settingsPath: string; settings: TaskSettings } {
  const modalityConfig = config.modalities[modality];
  if (modality !== 'image' || request.task?.image !== 'encode') return { settingsPath: modality, settings: modalityConfig };
  if (!modalityConfig.encode) throw new InferError('FAILED_PRECONDITION', 'this agent has no image encode task configured (config modalities.image.encode)');
  return { settingsPath: 'image.encode', settings: modalityConfig.encode };
}

/**
 * Splits a request into tasks; `now` is the request's arrival (performance.now()),
 * where its deadline starts. A modality whose configured model is not in the
 * catalog is refused with NOT_FOUND: without its handler the edge can neither
 * check nor place it.
 */
export function splitRequest(request: AgentRequest, config: EdgeConfig, now = performance.now(), catalog: Catalog = loadCatalog()): SplitRequest {
  const deadlineMs = request.deadlineMs ?? config.offload.defaultDeadlineMs;
  const tasks: Task[] = [];
  const rejected: TaskOutcome[] = [];
  for (const modality of modalities) {
    const value = request.inputs[modality];
    if (value === undefined) continue;
    try {
      const { settingsPath, settings } = taskSettings(request, modality, config);
      const model = settings.model;
      const catalogModel = findModel(catalog, model);
      const handler = getHandler(catalogModel.handler);
      const items = taskItems(modality, value, handler);
      const localAgreement = settings.localVariant === referenceVariant ? 1 : catalogModel.variants[settings.localVariant]?.agreementWithReference;
      tasks.push({
        id: `${request.id}/${modality}`,
        requestId: request.id,
        modality,
        settingsPath,
        settings,
        model,
        quality: { floor: request.quality?.[modality] ?? settings.minAgreement, localAgreement },
        handler,
        items,
        ...(modality === 'video' ? { video: value as VideoInputValue } : {}),
        payloadBytes: items.reduce((n, item) => n + item.length, 0),
        prefer: request.prefer?.[modality],
        deadlineMs,
        deadlineAt: now + deadlineMs,
        traceparent: request.traceparent,
      });
    } catch (err) {
      rejected.push({ modality, error: toInferError(err) });
    }
  }
  const requestError =
    tasks.length === 0 && rejected.length === 0
      ? new InferError('INVALID_ARGUMENT', `request ${request.id} has no inputs — set at least one of inputs.${modalities.join(', inputs.')}`)
      : undefined;
  return { tasks, rejected, requestError };
}

/**
 * Refuses the image tasks of a request whose images hold more than
 * `maxDecodedPixels` (limits.maxDecodedPixels), read from their headers:
 * decoding them would take that many pixels × 3 bytes of memory at once. The
 * other modalities still run. Video frames are not counted: they are decoded
 * one at a time, scaled to video.decodeMaxSide.
 */
export function enforcePixelBudget(sized: readonly { task: Task; inputSize?: InputSize }[], maxDecodedPixels: number): { runnable: typeof sized; rejected: TaskOutcome[] } {
  const withPixels = sized.filter((s) => s.inputSize?.unit === 'pixels' && s.inputSize.items.length > 0);
  // An unreadable header measures NaN: the model refuses that image with the reason.
  const pixels = withPixels.reduce((sum, s) => sum + s.inputSize!.items.reduce((n, item) => n + (Number.isFinite(item.amount) ? item.amount : 0), 0), 0);
  if (pixels <= maxDecodedPixels) return { runnable: sized, rejected: [] };
  const mp = (n: number) => `${(n / 1e6).toFixed(1)} MP`;
  const error = new InferError(
    'INVALID_ARGUMENT',
    `the request's images hold ${mp(pixels)}, over the limit of ${mp(maxDecodedPixels)} per request (limits.maxDecodedPixels) — send smaller images`,
  );
  return { runnable: sized.filter((s) => !withPixels.includes(s)), rejected: withPixels.map((s) => ({ modality: s.task.modality, error })) };
}

/** A task's result from its items' results: every task answers with one (a video chunk's answer is one too). */
export function taskResult(_task: Task, itemResults: Record<string, unknown>[]): unknown {
  return itemResults[0];
}

export function mergeOutcomes(requestId: string, outcomes: readonly TaskOutcome[], requestError?: InferError): AgentResponse {
  const response: AgentResponse = { id: requestId, results: {}, placement: {}, timings: {} };
  const errors: NonNullable<AgentResponse['errors']> = {};
  if (requestError) errors.request = { code: requestError.code, message: requestError.message };
  for (const outcome of outcomes) {
    if (outcome.placement) response.placement[outcome.modality] = outcome.placement;
    if (outcome.timings) response.timings[outcome.modality] = outcome.timings;
    if (outcome.error) errors[outcome.modality] = { code: outcome.error.code, message: outcome.error.message };
    else response.results[outcome.modality] = outcome.result;
  }
  if (Object.keys(errors).length > 0) response.errors = errors;
  return response;
}
