/**
 * A recurrent model run over many steps (Silero VAD: one run per 32 ms
 * frame, its state carried from each run to the next). Sent to the session's
 * worker as one message, the steps cost one round trip instead of one per
 * step (a round trip is ~0.2 ms, a VAD step ~0.15 ms).
 */
import type { Tensor } from '../tensor.js';

export interface SequencePlan {
  /** Output name → the input it feeds in the next step (e.g. `stateN` → `state`). */
  carry: Record<string, string>;
  /** Outputs to answer for every step. */
  keep: string[];
}

export interface SequenceResult {
  /** The `keep` outputs of each step, in step order. */
  outputs: Record<string, Tensor>[];
  computeUs: number;
}

/** The carried outputs of one step as the next step's inputs. */
export function carriedFeeds(outputs: Record<string, Tensor>, carry: Record<string, string>): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const [output, input] of Object.entries(carry)) {
    const tensor = outputs[output];
    if (!tensor) throw new Error(`a sequence carries output '${output}', which the model does not produce`);
    feeds[input] = tensor;
  }
  return feeds;
}

/** The same sequence, one `run` per step: for wrappers that must see every step's feeds (calibration, recording). */
export async function runSequenceStepwise(
  run: (feeds: Record<string, Tensor>) => Promise<{ outputs: Record<string, Tensor>; computeUs: number }>,
   steps: readonly Record<string, Tensor>[],
  plan: SequencePlan,
): Promise<SequenceResult> {
  const outputs: Record<string, Tensor>[] = [];
  let carried: Record<string, Tensor> = {};
  let computeUs = 0;
  for (const step of steps) {
    const result = await run({ ...step, ...carried });
    computeUs += result.computeUs;
    outputs.push(Object.fromEntries(plan.keep.map((name) => [name, result.outputs[name]!])));
    carried = carriedFeeds(result.outputs, plan.carry);
  }
  return { outputs, computeUs };
}
