/**
 * Exact FP32 rewrites of structure, run before static quantization next to
 * the affine folds (fold-affine.ts), for graphs exported from Keras such as
 * MobileNetV2:
 * - a zero Pad in front of a Conv becomes the Conv's own `pads` (Keras
 *   writes ZeroPadding2D before each stride-2 Conv): QLinearConv pads with
 *   the input's zero point, so the padding stays exact in uint8, where a
 *   separate Pad would run on float between a DequantizeLinear and a
 *   QuantizeLinear;
 * - a Sum of two inputs becomes an Add (Keras's Add layer), which has an
 *   integer kernel (QLinearAdd); Sum has none.
 */
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { node } from '../onnx-graph.js';
import { consumersIn, removeUnused } from './graph-edit.js';
import { tensorValues } from './onnx-model.js';

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes ?? new Uint8Array());

/** The pads of a constant-zero Pad, as numbers ([x1_begin, x2_begin, …, x1_end, …]), or undefined for any other Pad. */
function zeroPads(pad: NodeProto, initializers: ReadonlyMap<string, TensorProto>): number[] | undefined {
  const mode = text(pad.attribute.find((a) => a.name === 'mode')?.s);
  if (mode !== '' && mode !== 'constant') return undefined;
  // Before opset 11 pads and value are attributes; from 11 they are inputs.
  const padsAttribute = pad.attribute.find((a) => a.name === 'pads');
  if (padsAttribute) {
    const value = pad.attribute.find((a) => a.name === 'value')?.f ?? 0;
    return value === 0 ? padsAttribute.ints.map(Number) : undefined;
  }
  const padsTensor = initializers.get(pad.input[1] ?? '');
  if (!padsTensor || (pad.input[3] ?? '') !== '') return undefined;
  const valueTensor = pad.input[2] ? initializers.get(pad.input[2]) : undefined;
  if (pad.input[2] && (!valueTensor || Number(tensorValues(valueTensor)[0] ?? 0) !== 0)) return undefined;
  return Array.from(tensorValues(padsTensor), Number);
}

/** Pad(0) → Conv with explicit (or no) pads: add the spatial pads to the Conv's; the batch and channel axes must not be padded. */
function foldPadIntoConv(pad: NodeProto, consumers: ReadonlyMap<string, NodeProto[]>, initializers: ReadonlyMap<string, TensorProto>, outputs: ReadonlySet<string>): boolean {
  const readers = consumers.get(pad.output[0]!) ?? [];
  const conv = readers[0];
  if (readers.length !== 1 || outputs.has(pad.output[0]!) || conv!.opType !== 'Conv' || conv!.domain !== '' || conv!.input[0] !== pad.output[0]) return false;
  const autoPad = text(conv!.attribute.find((a) => a.name === 'auto_pad')?.s);
  if (autoPad !== '' && autoPad !== 'NOTSET') return false;
  const pads = zeroPads(pad, initializers);
  if (!pads || pads.length % 2 !== 0) return false;
  const rank = pads.length / 2;
  const spatial = rank - 2;
  if (spatial < 1 || pads[0] !== 0 || pads[1] !== 0 || pads[rank] !== 0 || pads[rank + 1] !== 0 || pads.some((p) => p < 0)) return false;
  const existing = conv!.attribute.find((a) => a.name === 'pads')?.ints.map(Number) ?? new Array<number>(2 * spatial).fill(0);
  const merged = [...pads.slice(2, rank), ...pads.slice(rank + 2)].map((p, i) => p + existing[i]!);
  conv!.attribute = [...conv!.attribute.filter((a) => a.name !== 'pads' && a.name !== 'auto_pad'), ...node('Conv', [], [], { pads: { ints: merged } }).attribute];
  conv!.input[0] = pad.input[0]!;
  return true;
}

/** Applies both rewrites to the main graph; returns how many it made. Pads must be initializers. */
export function foldStructure(model: ModelProto): number {
  const graph = model.graph!;
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const consumers = consumersIn(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  let count = 0;
  const kept: NodeProto[] = [];
  for (const n of graph.node) {
    if (n.domain === '' && n.opType === 'Pad' && foldPadIntoConv(n, consumers, initializers, outputs)) {
      count++;
      continue;
    }
    if (n.domain === '' && n.opType === 'Sum' && n.input.length === 2) {
      // The node keeps its name, so --exclude still finds it by the name inspect lists.
      n.opType = 'Add';
      count++;
    }
    kept.push(n);
  }
  graph.node = kept;
  if (count > 0) removeUnused(model);
  return count;
}
