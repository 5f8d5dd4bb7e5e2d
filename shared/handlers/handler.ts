import type { OrtSession } from '../ort/session.js';
import { Registry } from '../registry.js';
import type { Tensor, TensorMeta } from '../tensor.js';

export type Modality = 'text' | 'audio' | 'image' | 'video';

/** What a handler gets to work with: the sessions of one model variant and its catalog assets. */
export interface HandlerContext {
  /** The catalog graph names of this variant, in catalog order (a family whose variants are different networks has one each). */
  readonly graphs: readonly string[];
  /** The session for a graph of this model, by its catalog graph name (e.g. 'ocr-det'). */
  session(graph: string): OrtSession;
  /** Absolute path of a catalog asset of this model (e.g. the OCR dictionary), sha256-verified. */
  assetPath(name: string): string;
}

export interface HandlerOutput<Result extends object = object> {
  /** The JSON result a user reads (returned as the pipeline's `result` BYTES output). */
  result: Result;
  /** Typed outputs, named as in `outputs` below. */
  tensors: Record<string, Tensor>;
  /** Sum of session.run times across the chain. */
  computeUs: number;
}

/** One chunk of a sequence as a sequence model takes it: encoded items (e.g. video frames) and their times. */
export interface SequenceChunk {
  items: Uint8Array[];
  timesMs: number[];
  /** Index of the chunk in its sequence, from 0. */
  index: number;
  /** What the previous chunk of the sequence left for this one (`last` of its output); undefined for the first. */
  previous?: Float32Array;
  /** How many sampled frames each item stands for; 1 each when not sent. */
  weights?: number[];
}

/**
 * What a model that answers a sequence chunk by chunk adds to a handler
 * (video-encoder): the cloud keeps per-sequence state (cloud/sequences.ts)
 * and feeds each chunk the state the previous one left, so no earlier item
 * is encoded twice. `run` still answers one item as a one-item chunk.
 */
export interface SequenceCapability<Result extends object = object> {
  /** The KServe inputs of a chunk request (ModelMetadata). */
  readonly inputs: readonly TensorMeta[];
  runChunk(chunk: SequenceChunk, ctx: HandlerContext): Promise<HandlerOutput<Result> & { last: Float32Array }>;
  /** A fresh pool of a sequence's chunk results, bounded; its summary answers the sequence's last chunk. */
  summarizer(): { add(result: Result): void; summary(): object; heldBytes(): number };
}

/** The unit a model's cost follows, in which the edge's estimators learn its service time. */
export type SizeUnit = 'pixels' | 'audio-seconds' | 'text-bytes';
export type SizeScaling = 'linear' | 'flat';

export interface ItemSize {
  /** In the handler's unit; NaN when the header could not be read (the model will say why). */
  amount: number;
  bytes: number;
  /** Images only, as stored (EXIF rotation does not change the pixel count or the long side). */
  width?: number;
  height?: number;
}

export interface InputSize {
  unit: SizeUnit;
  items: ItemSize[];
}

/**
 * Everything splitinfer knows about one model family, identical on the edge
 * and in the cloud: the cheap input check and the size measure the edge needs
 * before placing a task, the pre/post-processing around the sessions the
 * catalog lists for the model, and how far its result can be trusted. Adding
 * a family is a catalog entry and one file that registers its handler.
 */
export interface ModelHandler<Result extends object = object> {
  /** Handler id referenced by catalog entries. */
  readonly id: string;
  readonly modality: Modality;
  /** Typed outputs of the pipeline besides `result` (KServe metadata). */
  readonly outputs: readonly TensorMeta[];
  /**
   * The request's value for this model (a string or bytes, as decoded from
   * MQTT) as the bytes `run` takes, or INVALID_ARGUMENT naming `label` (e.g.
   * 'image input', 'video frame 2') when a check cheaper than decoding already
   * shows it cannot work. `run` still checks everything else.
   */
  checkInput(value: unknown, label: string): Uint8Array;
  readonly sizeUnit: SizeUnit;
  /**
   * How run time grows past the largest input size measured: `linear` (the
   * default; OCR detects at the image's own resolution, then pays per line)
   * or `flat` (the encoders resize every image to one side first, so past
   * decoding a bigger input costs what the largest measured one did).
   */
  readonly sizeScaling?: SizeScaling;
  /** How big one input is in `sizeUnit`, from headers only: measuring must cost far less than the inference it helps place. */
  measureInput(input: Uint8Array): ItemSize | Promise<ItemSize>;
  /** How far the result can be trusted, in [0, 1]; undefined when the model has no such measure. */
  confidence(result: Result): number | undefined;
  run(input: Uint8Array, ctx: HandlerContext): Promise<HandlerOutput<Result>>;
  /** A small valid input that exercises the whole chain once at start-up. */
  warmupInput(): Promise<Uint8Array>;
  /** Present on models that answer sequences chunk by chunk. */
  readonly sequence?: SequenceCapability<Result>;
}

const handlers = new Registry<ModelHandler>({ kind: 'model handler', hint: "the catalog's handler must name one registered in shared/handlers/" });

export function registerHandler<Result extends object>(handler: ModelHandler<Result>): void {
  handlers.register(handler.id, handler);
}

export function getHandler(id: string): ModelHandler {
  return handlers.get(id);
}
