import type { ErrorCode } from '../shared/errors.js';
import type { Modality } from '../shared/handlers/handler.js';

export type { Modality };
export type Site = 'edge' | 'cloud';

/** A request as published on `splitinfer/v1/<deviceId>/req` (msgpack or JSON; binary fields base64 in JSON). */
export interface AgentRequest {
  id: string;
  inputs: {
    text?: string;
    /** WAV bytes or 16 kHz mono PCM16. */
    audio?: Uint8Array;
    /** JPEG/PNG/WebP bytes. */
    image?: Uint8Array;
    /** JPEG frames, handled as a batch of images. */
    video?: Uint8Array[];
  };
  /** Time budget for the whole request, from its arrival at the agent. */
  deadlineMs?: number;
  prefer?: Partial<Record<Modality, Site>>;
}

export interface Placement {
  ran: Site;
  why: string;
  /** The numbers the decision used (estimated ms per option, link state, ...). */
  estimates: Record<string, unknown>;
}

export interface TaskTimings {
  totalMs: number;
  queueMs: number;
  computeMs: number;
  transferMs: number;
}

export interface AgentResponse {
  id: string;
  results: Partial<Record<Modality, unknown>>;
  placement: Partial<Record<Modality, Placement>>;
  timings: Partial<Record<Modality, TaskTimings>>;
  /** One entry per modality that failed; the others still carry their results. Request-level errors use the key `request`. */
  errors?: Partial<Record<Modality | 'request', { code: ErrorCode; message: string }>>;
}
