/**
 * A rewritten model must still load in the runtime the project ships
 * (onnxruntime-node, CPU): loading resolves every operator, type and shape
 * the session can check without data, and a run on `feeds` (when there are
 * sample inputs) the rest, so a rewrite that broke the graph is refused
 * before its file is written.
 */
import ort from 'onnxruntime-node';
import { ModelToolError } from './onnx-model.js';

/** Opens `bytes` in onnxruntime-node with full graph optimisation, as the runtime pool does, runs `feeds` once if given, and closes it again. */
export async function assertLoadsInOnnxRuntime(bytes: Uint8Array, change: string, hint: string, feeds?: Record<string, ort.Tensor>): Promise<void> {
  await runInOnnxRuntime(bytes, change, hint, feeds);
}

/** As assertLoadsInOnnxRuntime, returning what the run gave (nothing without feeds). */
export async function runInOnnxRuntime(
  bytes: Uint8Array,
  change: string,
  hint: string,
  feeds?: Record<string, ort.Tensor>,
): Promise<ort.InferenceSession.OnnxValueMapType | undefined> {
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: 1, logSeverityLevel: 3 });
    return feeds ? await session.run(feeds) : undefined;
  } catch (err) {
    const failed = session ? 'does not run' : 'does not load';
    throw new ModelToolError(`the ${change} model ${failed} in onnxruntime-node (${(err as Error).message.split('\n')[0]}) — nothing was written; ${hint}`);
  } finally {
    await session?.release();
  }
}
