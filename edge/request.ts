import type { ErrorCode } from '../shared/errors.js';
import type { Modality } from '../shared/handlers/handler.js';
import type { ReasonCode } from './policy/reasons.js';
import type { Site } from './site.js';

export type { Modality, Site };

/** What a request asks of an image: `read` its text (OCR, the default) or `encode` it (an embedding and content labels). */
export type ImageTask = 'read' | 'encode';

/**
 * The answer a task needs, against the reference model (the cloud's fp32
 * variant): `best` only the reference itself; `fast` the light local variant
 * too; a number (0–1) the least top-1 agreement with the reference that the
 * local variant must have measured (catalog `agreementWithReference`).
 */
export type Quality = 'best' | 'fast' | number;

export type VideoInputValue = Uint8Array | Uint8Array[] | { source: string; seconds: number };

/** A request as published on `splitinfer/v1/<deviceId>/req` (msgpack or JSON; binary fields base64 in JSON). */
export interface AgentRequest {
  id: string;
  inputs: {
    text?: string;
    /** WAV bytes or 16 kHz mono PCM16. */
    audio?: Uint8Array;
    /** JPEG/PNG/WebP bytes. */
    image?: Uint8Array;
    /**
     * Container bytes (MP4, MKV, WebM, AVI, …), a list of JPEG frames, or a
     * source on the device (`rtsp://…`, `file:///…`, `/dev/videoN`; config
     * video.sources lists those allowed) and how many seconds of it to read.
     */
    video?: VideoInputValue;
  };
  /** Video: publish one message per chunk as soon as it is answered, then the final one (default); false: the final one only. */
  stream?: boolean;
  /** Time budget for the whole request, from its arrival at the agent. */
  deadlineMs?: number;
  prefer?: Partial<Record<Modality, Site>>;
  /** Per modality, the task to run when it has more than one; OCR (`read`) when unset. */
  task?: { image?: ImageTask };
  /** Per modality, the quality floor; config `modalities.<m>.minAgreement` when unset. */
  quality?: Partial<Record<Modality, Quality>>;
  /** W3C trace context, set by the ingress (never from the payload): edge/ingress/request-trace.ts. */
  traceparent?: string;
}

/** Where a task ran and why: built once, when the task is done, and never changed after. */
export interface Placement {
  /** Where placement put the task. */
  readonly decided: Site;
  /** Where the answer came from; null when the task never ran anywhere (the cloud was down and there is no local variant). */
  readonly ran: Site | null;
  /**
   * The catalog variant of the task's model that answered: the cloud's
   * reference (`fp32`), or the edge's (its light local variant, or the
   * reference it holds, reason `edge-reference`); null when none did.
   */
  readonly variant: string | null;
  /** Why, as codes (policy/reasons.ts), in the order they applied. */
  readonly reasons: readonly ReasonCode[];
  /** The reasons as a sentence. */
  readonly why: string;
  /** The numbers the decision used (estimated ms per option, link state, the cloud's budget, ...). */
  readonly estimates: Readonly<Record<string, unknown>>;
  /** Placed in the cloud, which failed with this; the edge's local variant answered instead. */
  readonly fallback?: { code: ErrorCode; message: string };
  /** The strategy found the edge's answer unsure and asked the cloud too (the `confidence` strategy). */
  readonly escalation?: { outcome: 'cloud-answered' | 'cloud-failed' | 'no-time'; error?: { code: string; message: string } };
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
  /** Set on the answer of a request whose video was answered progressively: the last message for this id. */
  final?: true;
}

/** One chunk of a video, published as soon as it is answered (before the request's final answer). */
export interface ChunkMessage {
  id: string;
  chunk: number;
  final: false;
  /** From the chunk's last frame decoded to this message. */
  latencyMs?: number;
  results: { video?: unknown };
  /** Where the chunk ran and why (none for a chunk skipped before placement). */
  placement: { video?: Placement };
  timings: { video?: TaskTimings };
  errors?: { video: { code: ErrorCode; message: string } };
}
