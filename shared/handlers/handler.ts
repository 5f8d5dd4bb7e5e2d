import type { OrtSession } from '../ort/session.js';
import { Registry } from '../registry.js';
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

const handlers = new Registry<ModelHandler>({ kind: 'model handler', hint: "the catalog's handler must name one registered in shared/handlers/" });

export function registerHandler(handler: ModelHandler): void {
  handlers.register(handler.id, handler);
}

export function getHandler(id: string): ModelHandler {
  return handlers.get(id);
}
