/**
 * A request becomes one task per modality it carries; each task runs where
 * placement puts it, and the outcomes merge back into one response in which
 * a failed modality never hides the others.
 */
import { InferError } from '../shared/errors.js';
import { sniffImageFormat } from '../shared/handlers/image-decode.js';
import type { EdgeConfig } from './config.js';
import type { AgentRequest, AgentResponse, Modality, Placement, Site, TaskTimings } from './request.js';

export const modalities: readonly Modality[] = ['text', 'audio', 'image', 'video'];

export interface Task {
  /** `<request id>/<modality>`: names the task in logs and in offload request ids. */
  id: string;
  requestId: string;
  modality: Modality;
  /** Catalog model id from config. */
  model: string;
  /** One item for text, audio and image; one per frame for video (run as a batch of images). */
  items: Uint8Array[];
  payloadBytes: number;
  prefer?: Site;
  /** The request's whole budget, and the performance.now() time it runs out. */
  deadlineMs: number;
  deadlineAt: number;
}

/** How one task ended; a task rejected by input checks has no placement or timings. */
export interface TaskOutcome {
  modality: Modality;
  placement?: Placement;
  timings?: TaskTimings;
  result?: unknown;
  error?: InferError;
}

export interface SplitRequest {
  tasks: Task[];
  /** Modalities whose input failed the cheap checks, as INVALID_ARGUMENT outcomes. */
  rejected: TaskOutcome[];
  /** Set when the request as a whole cannot run (nothing to do). */
  requestError?: InferError;
}

const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;

const hexPrefix = (bytes: Uint8Array) => Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');

function checkImageBytes(label: string, value: unknown): Uint8Array {
  if (!isBytes(value)) throw new InferError('INVALID_ARGUMENT', `${label} must be binary image bytes, got ${typeof value} — in JSON send the file base64-encoded`);
  if (value.length === 0) throw new InferError('INVALID_ARGUMENT', `${label} is empty — send the bytes of a JPEG, PNG or WebP file`);
  if (!sniffImageFormat(value)) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `${label}: ${value.length} bytes starting ${hexPrefix(value)} are not a JPEG/PNG/WebP image — send the file bytes, not a path or another format`,
    );
  }
  return value;
}

/** The task items of one modality's input, or INVALID_ARGUMENT when a cheap check already shows the input is unusable. */
function taskItems(modality: Modality, value: unknown): Uint8Array[] {
  switch (modality) {
    case 'text':
      if (typeof value !== 'string') throw new InferError('INVALID_ARGUMENT', `text input must be a string, got ${typeof value}`);
      if (value.trim() === '') throw new InferError('INVALID_ARGUMENT', 'text input is empty — send the text to classify');
      return [new TextEncoder().encode(value)];
    case 'audio':
      if (!isBytes(value)) throw new InferError('INVALID_ARGUMENT', `audio input must be binary WAV or 16 kHz PCM16 bytes, got ${typeof value} — in JSON send it base64-encoded`);
      if (value.length === 0) throw new InferError('INVALID_ARGUMENT', 'audio input is empty — send WAV file bytes or 16 kHz mono PCM16');
      return [value];
    case 'image':
      return [checkImageBytes('image input', value)];
    case 'video':
      if (!Array.isArray(value) || value.length === 0) {
        throw new InferError('INVALID_ARGUMENT', 'video input must be a non-empty list of JPEG frames');
      }
      return value.map((frame, i) => checkImageBytes(`video frame ${i}`, frame));
  }
}

/** Splits a request into tasks; `now` is the request's arrival (performance.now()), where its deadline starts. */
export function splitRequest(request: AgentRequest, config: EdgeConfig, now = performance.now()): SplitRequest {
  const deadlineMs = request.deadlineMs ?? config.offload.defaultDeadlineMs;
  const tasks: Task[] = [];
  const rejected: TaskOutcome[] = [];
  for (const modality of modalities) {
    const value = request.inputs[modality];
    if (value === undefined) continue;
    try {
      const items = taskItems(modality, value);
      tasks.push({
        id: `${request.id}/${modality}`,
        requestId: request.id,
        modality,
        model: config.modalities[modality].model,
        items,
        payloadBytes: items.reduce((n, item) => n + item.length, 0),
        prefer: request.prefer?.[modality],
        deadlineMs,
        deadlineAt: now + deadlineMs,
      });
    } catch (err) {
      rejected.push({ modality, error: err as InferError });
    }
  }
  const requestError =
    tasks.length === 0 && rejected.length === 0
      ? new InferError('INVALID_ARGUMENT', `request ${request.id} has no inputs — set at least one of inputs.${modalities.join(', inputs.')}`)
      : undefined;
  return { tasks, rejected, requestError };
}

/** A task's result from its items' results: video answers `{ frames: [...] }` in frame order. */
export function taskResult(task: Task, itemResults: Record<string, unknown>[]): unknown {
  return task.modality === 'video' ? { frames: itemResults } : itemResults[0];
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
