import type { OrtSession } from '../ort/session.js';
import type { Tensor, TensorMeta } from '../tensor.js';

export type Modality = 'text' | 'audio' | 'image' | 'video';

/** What a handler gets to work with: the sessions of one model variant and its catalog assets. */
export interface HandlerContext {
  /** The session for a graph of this model, by its catalog graph name (e.g. 'ocr-det'). */
  session(graph: string): OrtSession;
  /** Absolute path of a catalog asset of this model (e.g. the OCR dictionary), sha256-verified. */
  assetPath(name: string): string;
}

export interface HandlerOutput {
  /** The JSON result a user reads (returned as the pipeline's `result` BYTES output). */
  result: Record<string, unknown>;
  /** Typed outputs, named as in `outputs` below. */
  tensors: Record<string, Tensor>;
  /** Sum of session.run times across the chain. */
  computeUs: number;
}

/**
 * Pre/post-processing for one model family, identical on the edge and in the
 * cloud. It takes one input (media bytes or UTF-8 text) and runs the sessions
 * the catalog lists for the model.
 */
export interface ModelHandler {
  /** Handler id referenced by catalog entries. */
  readonly id: string;
  readonly modality: Modality;
  /** Typed outputs of the pipeline besides `result` (KServe metadata). */
  readonly outputs: readonly TensorMeta[];
  run(input: Uint8Array, ctx: HandlerContext): Promise<HandlerOutput>;
  /** A small valid input that exercises the whole chain once at start-up. */
  warmupInput(): Promise<Uint8Array>;
}

const handlers = new Map<string, ModelHandler>();

export function registerHandler(handler: ModelHandler): void {
  if (handlers.has(handler.id)) throw new Error(`model handler '${handler.id}' is registered twice`);
  handlers.set(handler.id, handler);
}

export function getHandler(id: string): ModelHandler {
  const handler = handlers.get(id);
  if (!handler) throw new Error(`no model handler '${id}' (registered: ${[...handlers.keys()].join(', ')})`);
  return handler;
}
