/**
 * Raises a model's ai.onnx opset where a rewrite needs a newer operator:
 * static quantization needs opset 10, where QuantizeLinear and QLinearConv
 * (what onnxruntime fuses DQ → Conv → Q into) entered ai.onnx. PP-OCRv4's
 * recogniser is exported at opset 9. Each operator whose inputs or
 * attributes changed on the way is converted here or refused by name.
 */
import type { ModelProto, NodeProto } from 'onnx-buf';
import { tensor } from '../onnx-graph.js';
import { freshNamer } from './graph-edit.js';
import { allNodes, defaultOpset, ModelToolError } from './onnx-model.js';

/**
 * Operators whose definition changed from opset 9 to 10 in a way this
 * module does not convert (Slice is converted below; AveragePool and
 * MaxPool only gained attributes whose defaults keep the old behaviour).
 */
const changedIn10 = new Set(['Upsample', 'TopK', 'Dropout']);

function intsAttribute(n: NodeProto, name: string): bigint[] | undefined {
  const attribute = n.attribute.find((a) => a.name === name);
  return attribute ? attribute.ints : undefined;
}

/** Slice-1 keeps starts/ends/axes as attributes; Slice-10 takes them as int64 inputs. */
function convertSlice(n: NodeProto, fresh: (base: string) => string, add: (t: ReturnType<typeof tensor>) => void): void {
  const starts = intsAttribute(n, 'starts');
  const ends = intsAttribute(n, 'ends');
  if (!starts || !ends) throw new ModelToolError(`Slice node '${n.name}' has no starts/ends attributes, which opset 9 requires — the model is malformed`);
  const axes = intsAttribute(n, 'axes') ?? starts.map((_, i) => BigInt(i));
  const inputs = [n.input[0]!];
  for (const [label, values] of [['starts', starts], ['ends', ends], ['axes', axes]] as const) {
    const name = fresh(`${n.output[0]}_${label}`);
    add(tensor(name, [values.length], BigInt64Array.from(values)));
    inputs.push(name);
  }
  n.input = inputs;
  n.attribute = n.attribute.filter((a) => !['starts', 'ends', 'axes'].includes(a.name));
}

/** Raises the ai.onnx opset of `model` from 9 to 10 in place (no-op at 10 or above). */
export function upgradeToOpset10(model: ModelProto, modelFile: string): void {
  const from = defaultOpset(model);
  if (from >= 10) return;
  if (from < 9) throw new ModelToolError(`${modelFile}: ai.onnx opset ${from} is too old to upgrade here (9 or newer is) — re-export the model at opset 13 or newer`);
  const nodes = allNodes(model.graph!).filter((n) => n.domain === '' || n.domain === 'ai.onnx');
  const blocked = nodes.find((n) => changedIn10.has(n.opType));
  if (blocked) {
    throw new ModelToolError(
      `${modelFile}: opset ${from} must become 10 for QLinearConv, but ${blocked.opType} node '${blocked.name}' changed its definition in opset 10 — re-export the model at opset 13 or newer`,
    );
  }
  const fresh = freshNamer(model);
  const added: ReturnType<typeof tensor>[] = [];
  for (const n of nodes) if (n.opType === 'Slice') convertSlice(n, fresh, (t) => added.push(t));
  model.graph!.initializer.push(...added);
  const entry = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')!;
  entry.version = 10n;
}
