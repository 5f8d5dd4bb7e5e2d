/**
 * A rewritten model must still load in the runtime the project ships
 * (onnxruntime-node, CPU): loading resolves every operator, type and shape
 * the session can check without data, so a rewrite that broke the graph is
 * refused before its file is written.
 */
import ort from 'onnxruntime-node';
import { ModelToolError } from './onnx-model.js';

/** Opens `bytes` in onnxruntime-node with full graph optimisation, as the runtime pool does, and closes it again. */
export async function assertLoadsInOnnxRuntime(bytes: Uint8Array, change: string, hint: string): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  } catch (err) {
    throw new ModelToolError(`the ${change} model does not load in onnxruntime-node (${(err as Error).message.split('\n')[0]}) — nothing was written; ${hint}`);
  }
  await session.release();
}
