/**
 * Structured pruning (`splitinfer model prune`): hidden units of
 *
 *   MatMul(x, W1[K, H]) [→ Add(b1[H])] → Relu → MatMul(·, W2[H, N])
 *
 * are removed outright — columns of W1, entries of b1, rows of W2 — so the
 * weights are smaller dense tensors. Zeroing weights instead would leave the
 * shapes, and the time onnxruntime's CPU kernels take, as they were.
 *
 * Which units go: the least salient, saliency being the L2 norm of what flows
 * in (the unit's column of W1 and its bias) times the L2 norm of what flows
 * out (its row of W2). A unit with small weights on either side changes the
 * next layer little; Relu is positively homogeneous, so the product, not
 * either norm alone, is what stays fixed when a unit's weights are rescaled.
 *
 * Pruning costs accuracy until the model is fine-tuned; the text model's
 * training script does both (models/text-intent/train.ts --prune R).
 */
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { tensor } from '../onnx-graph.js';
import { consumersIn } from './graph-edit.js';
import { constantsToInitializers, floatWeight, ModelToolError, nodeLabel } from './onnx-model.js';

export interface PruneReport {
  /** One entry per pruned chain, named after its first MatMul. */
  pruned: { node: string; hiddenBefore: number; hiddenAfter: number }[];
  /** MatMuls that looked like the start of a chain but were not pruned, and why. */
  skipped: { node: string; reason: string }[];
}

/** Per hidden unit j: sqrt(Σ_k W1[k, j]² + b1[j]²) · sqrt(Σ_n W2[j, n]²). */
export function hiddenUnitSaliency(w1: Float32Array, b1: Float32Array | undefined, w2: Float32Array, hidden: number): Float32Array {
  const inputs = w1.length / hidden;
  const outputs = w2.length / hidden;
  const incoming = Float64Array.from(b1 ?? new Float32Array(hidden), (b) => b * b);
  for (let k = 0; k < inputs; k++) for (let j = 0; j < hidden; j++) incoming[j]! += w1[k * hidden + j]! ** 2;
  return Float32Array.from({ length: hidden }, (_, j) => {
    let outgoing = 0;
    for (let n = 0; n < outputs; n++) outgoing += w2[j * outputs + n]! ** 2;
    return Math.sqrt(incoming[j]!) * Math.sqrt(outgoing);
  });
}

/** The units that stay when `ratio` of them is removed: the most salient, in their original order; at least one. */
export function unitsToKeep(saliency: Float32Array, ratio: number): number[] {
  checkRatio(ratio);
  const keep = Math.max(1, Math.round(saliency.length * (1 - ratio)));
  // Ties go to the lower index, so the choice does not depend on the sort's stability.
  const ranked = Array.from(saliency, (s, j) => ({ s, j })).sort((a, b) => b.s - a.s || a.j - b.j);
  return ranked
    .slice(0, keep)
    .map((u) => u.j)
    .sort((a, b) => a - b);
}

/** `given`: the ratio as the user wrote it, for the message. */
export function checkRatio(ratio: number, given = String(ratio)): void {
  if (!(ratio > 0 && ratio < 1)) throw new ModelToolError(`--ratio must be a fraction of hidden units to remove, above 0 and below 1 (e.g. 0.5), got ${given}`);
}

/** The columns `keep` of a row-major [rows, cols] matrix. */
export function keepColumns(values: Float32Array, cols: number, keep: readonly number[]): Float32Array {
  const rows = values.length / cols;
  const out = new Float32Array(rows * keep.length);
  for (let r = 0; r < rows; r++) keep.forEach((c, i) => (out[r * keep.length + i] = values[r * cols + c]!));
  return out;
}

/** The rows `keep` of a row-major [rows, cols] matrix. */
export function keepRows(values: Float32Array, cols: number, keep: readonly number[]): Float32Array {
  const out = new Float32Array(keep.length * cols);
  keep.forEach((r, i) => out.set(values.subarray(r * cols, (r + 1) * cols), i * cols));
  return out;
}

interface Chain {
  first: NodeProto;
  w1: TensorProto;
  b1?: TensorProto;
  w2: TensorProto;
  /** Values whose width is the hidden size, whose recorded shapes go stale. */
  hiddenValues: string[];
}

/**
 * Follows one MatMul to the chain it starts, or says why it does not start
 * one that can be pruned.
 */
function chainFrom(first: NodeProto, model: ModelProto, consumers: Map<string, NodeProto[]>): Chain | { reason: string } | undefined {
  const graph = model.graph!;
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const graphOutputs = new Set(graph.output.map((o) => o.name));
  const w1 = initializers.get(first.input[1]!);
  if (!w1 || !floatWeight(w1) || w1.dims.length !== 2) return undefined;
  const only = (value: string): NodeProto | undefined => {
    const readers = consumers.get(value) ?? [];
    return readers.length === 1 && !graphOutputs.has(value) ? readers[0] : undefined;
  };
  const hidden = Number(w1.dims[1]);
  const hiddenValues = [first.output[0]!];
  let next = only(first.output[0]!);
  let b1: TensorProto | undefined;
  if (next?.opType === 'Add') {
    const biasName = next.input[0] === first.output[0] ? next.input[1]! : next.input[0]!;
    b1 = initializers.get(biasName);
    if (!b1 || !floatWeight(b1) || b1.dims.reduce((n, d) => n * Number(d), 1) !== hidden || Number(b1.dims.at(-1)) !== hidden) return { reason: `its Add does not add a constant bias of ${hidden} values` };
    hiddenValues.push(next.output[0]!);
    next = only(next.output[0]!);
  }
  if (next?.opType !== 'Relu') return undefined;
  hiddenValues.push(next.output[0]!);
  const second = only(next.output[0]!);
  if (second?.opType !== 'MatMul' || second.input[0] !== next.output[0]) return { reason: 'its Relu output is not read by exactly one MatMul (as its A input), so removing units would change other readers' };
  const w2 = initializers.get(second.input[1]!);
  if (!w2 || !floatWeight(w2) || w2.dims.length !== 2 || Number(w2.dims[0]) !== hidden) return { reason: `the second MatMul's weight is not a constant [${hidden}, N] float tensor` };
  for (const weight of [w1, b1, w2]) {
    if (weight && (consumers.get(weight.name)?.length ?? 0) !== 1) return { reason: `weight '${weight.name}' is shared with other nodes` };
  }
  return { first, w1, b1, w2, hiddenValues };
}

/**
 * Removes `ratio` of the hidden units of every MatMul → [Add] → Relu →
 * MatMul chain in the main graph, in place. Constant-node weights are
 * moved into initializers first.
 */
export function pruneHiddenUnits(model: ModelProto, ratio: number): PruneReport {
  checkRatio(ratio);
  constantsToInitializers(model);
  const graph = model.graph!;
  const consumers = consumersIn(graph);
  const report: PruneReport = { pruned: [], skipped: [] };
  const replaced = new Map<string, TensorProto>();
  const stale = new Set<string>();
  for (const first of graph.node.filter((n) => n.opType === 'MatMul' && (n.domain === '' || n.domain === 'ai.onnx'))) {
    const chain = chainFrom(first, model, consumers);
    if (!chain) continue;
    if ('reason' in chain) {
      report.skipped.push({ node: nodeLabel(first), reason: chain.reason });
      continue;
    }
    const [inputs, hidden] = chain.w1.dims.map(Number) as [number, number];
    const outputs = Number(chain.w2.dims[1]);
    const w1 = floatWeight(chain.w1)!.values;
    const b1 = chain.b1 && floatWeight(chain.b1)!.values;
    const w2 = floatWeight(chain.w2)!.values;
    const keep = unitsToKeep(hiddenUnitSaliency(w1, b1, w2, hidden), ratio);
    replaced.set(chain.w1.name, tensor(chain.w1.name, [inputs, keep.length], keepColumns(w1, hidden, keep)));
    if (chain.b1 && b1) {
      const dims = chain.b1.dims.map(Number);
      dims[dims.length - 1] = keep.length;
      replaced.set(chain.b1.name, tensor(chain.b1.name, dims, Float32Array.from(keep, (j) => b1[j]!)));
    }
    replaced.set(chain.w2.name, tensor(chain.w2.name, [keep.length, outputs], keepRows(w2, outputs, keep)));
    chain.hiddenValues.forEach((v) => stale.add(v));
    report.pruned.push({ node: nodeLabel(first), hiddenBefore: hidden, hiddenAfter: keep.length });
  }
  graph.initializer = graph.initializer.map((t) => replaced.get(t.name) ?? t);
  // Older exports also list initializers as graph inputs, with the old shapes.
  graph.input = graph.input.filter((i) => !replaced.has(i.name));
  // Shapes recorded for the narrowed values are wrong now; onnxruntime infers them again.
  graph.valueInfo = graph.valueInfo.filter((v) => !stale.has(v.name));
  return report;
}
