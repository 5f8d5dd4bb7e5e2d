/**
 * The exact tensors a handler feeds its sessions for one input: the real
 * inputs to time a graph on, made by the handler's own pre-processing.
 */
import { resolveSource } from '../../shared/catalog.js';
import type { HandlerContext } from '../../shared/handlers/handler.js';
import type { LoadedModel } from '../../shared/loaded-model.js';
import { runSequenceStepwise } from '../../shared/ort/sequence.js';
import type { OrtSession } from '../../shared/ort/session.js';
import type { Tensor } from '../../shared/tensor.js';

export type Feeds = Record<string, Tensor>;

/** Runs `input` through the model's handler and returns every feed of every session run, by graph name, in order. */
export async function recordFeeds(loaded: LoadedModel, input: Uint8Array): Promise<Record<string, Feeds[]>> {
  const recorded: Record<string, Feeds[]> = {};
  const recording = (graph: string, session: OrtSession): OrtSession => {
    const run = (feeds: Feeds) => {
      (recorded[graph] ??= []).push(feeds);
      return session.run(feeds);
    };
    // Every step of a sequence is recorded as its own run, with the state it was fed.
    return { ...session, run, runSequence: (steps, plan) => runSequenceStepwise(run, steps, plan) };
  };
  const ctx: HandlerContext = {
    graphs: [...loaded.sessions.keys()],
    session(graph) {
      const session = loaded.sessions.get(graph);
      if (!session) throw new Error(`model ${loaded.model.id}/${loaded.variant} has no graph '${graph}' in the catalog`);
      return recording(graph, session);
    },
    // Already sha256-checked when the model was loaded.
    assetPath: (name) => resolveSource(loaded.model.assets[name]!.source),
  };
  await loaded.handler.run(input, ctx);
  return recorded;
}

/** float32 tensors joined along `axis`; every other dimension must match. */
export function concatFloat32(tensors: readonly Tensor[], axis: number): Tensor {
  const first = tensors[0];
  if (!first) throw new Error('concat: no tensors');
  const rest = (dims: readonly number[]) => dims.filter((_, i) => i !== axis).join('×');
  for (const t of tensors) {
    if (t.type !== 'float32' || rest(t.dims) !== rest(first.dims)) throw new Error(`concat along axis ${axis}: [${t.dims.join(', ')}] ${t.type} does not fit [${first.dims.join(', ')}] float32`);
  }
  const outer = first.dims.slice(0, axis).reduce((n, d) => n * d, 1);
  const inner = first.dims.slice(axis + 1).reduce((n, d) => n * d, 1);
  const total = tensors.reduce((n, t) => n + t.dims[axis]!, 0);
  const data = new Float32Array(outer * total * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of tensors) {
      const block = t.dims[axis]! * inner;
      data.set((t.data as Float32Array).subarray(o * block, (o + 1) * block), at);
      at += block;
    }
  }
  const dims = [...first.dims];
  dims[axis] = total;
  return { type: 'float32', dims, data };
}

/** A float32 tensor right-padded with zeros along its last dimension to `size`. */
export function padLastDim(tensor: Tensor, size: number): Tensor {
  const width = tensor.dims.at(-1)!;
  if (width === size) return tensor;
  if (width > size) throw new Error(`pad: last dimension ${width} is already wider than ${size}`);
  const rows = (tensor.data as Float32Array).length / width;
  const data = new Float32Array(rows * size);
  for (let r = 0; r < rows; r++) data.set((tensor.data as Float32Array).subarray(r * width, (r + 1) * width), r * size);
  return { type: 'float32', dims: [...tensor.dims.slice(0, -1), size], data };
}
