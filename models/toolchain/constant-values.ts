/**
 * The value of a tensor that only depends on constants, for rewrites that
 * need a weight's numbers. PyTorch exports often compute weights in the
 * graph: Silero VAD's LSTM gets W as Unsqueeze(Concat(Slice(weight_ih)))
 * inside an If branch, reordering PyTorch's gates (i, f, g, o) into ONNX's
 * (i, o, f, c). This evaluates the few shape operators such chains use;
 * anything else is "not constant" and the caller leaves the node alone.
 */
import type { GraphProto, NodeProto } from 'onnx-buf';
import { producersIn } from './graph-edit.js';
import { constantTensor, tensorValues, type DecodedValues } from './onnx-model.js';

export interface ConstantValue {
  dims: number[];
  values: DecodedValues;
}

type TypedArrayOf<T extends DecodedValues> = { new (length: number): T };

const count = (dims: readonly number[]) => dims.reduce((n, d) => n * d, 1);

function ints(value: ConstantValue): number[] {
  return Array.from(value.values as ArrayLike<number | bigint>, Number);
}

const attributeInts = (node: NodeProto, name: string) => node.attribute.find((a) => a.name === name)?.ints.map(Number);
const attributeInt = (node: NodeProto, name: string, fallback: number) => {
  const a = node.attribute.find((x) => x.name === name);
  return a ? Number(a.i) : fallback;
};

function unsqueeze(data: ConstantValue, axes: number[]): ConstantValue {
  const rank = data.dims.length + axes.length;
  const normalized = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const dims: number[] = [];
  let next = 0;
  for (let i = 0; i < rank; i++) dims.push(normalized.has(i) ? 1 : data.dims[next++]!);
  return { dims, values: data.values };
}

function squeeze(data: ConstantValue, axes: number[] | undefined): ConstantValue {
  const normalized = new Set((axes ?? data.dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + data.dims.length : a)));
  return { dims: data.dims.filter((_, i) => !normalized.has(i)), values: data.values };
}

function concat(parts: ConstantValue[], axis: number): ConstantValue {
  const rank = parts[0]!.dims.length;
  const a = axis < 0 ? axis + rank : axis;
  const outer = count(parts[0]!.dims.slice(0, a));
  const dims = [...parts[0]!.dims];
  dims[a] = parts.reduce((n, p) => n + p.dims[a]!, 0);
  const Type = parts[0]!.values.constructor as TypedArrayOf<DecodedValues>;
  const values = new Type(count(dims));
  let offset = 0;
  for (let o = 0; o < outer; o++) {
    for (const part of parts) {
      const block = count(part.dims.slice(a));
      (values as Float32Array).set((part.values as Float32Array).subarray(o * block, (o + 1) * block), offset);
      offset += block;
    }
  }
  return { dims, values };
}

/** ONNX Slice (opset 10+ inputs), steps of 1 only: what weight-splitting exports use. */
function slice(data: ConstantValue, starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined): ConstantValue | undefined {
  if (steps && steps.some((s) => s !== 1)) return undefined;
  const rank = data.dims.length;
  const begin = data.dims.map(() => 0);
  const end = [...data.dims];
  (axes ?? starts.map((_, i) => i)).forEach((axis, i) => {
    const a = axis < 0 ? axis + rank : axis;
    const d = data.dims[a]!;
    const clamp = (x: number) => Math.max(0, Math.min(d, x < 0 ? x + d : x));
    begin[a] = clamp(starts[i]!);
    end[a] = clamp(ends[i]!);
  });
  const dims = data.dims.map((_, i) => Math.max(0, end[i]! - begin[i]!));
  const Type = data.values.constructor as TypedArrayOf<DecodedValues>;
  const values = new Type(count(dims));
  const strides = data.dims.map((_, i) => count(data.dims.slice(i + 1)));
  const index = dims.map(() => 0);
  for (let out = 0; out < values.length; out++) {
    let source = 0;
    for (let i = 0; i < rank; i++) source += (begin[i]! + index[i]!) * strides[i]!;
    (values as Float32Array)[out] = (data.values as Float32Array)[source]!;
    for (let i = rank - 1; i >= 0 && ++index[i]! === dims[i]; i--) index[i] = 0;
  }
  return { dims, values };
}

/**
 * Evaluates values of `graph` (and of the graphs around it, `outer`, inner
 * last) that are initializers, Constant nodes, or Identity / Unsqueeze /
 * Squeeze / Reshape / Concat / Slice of those.
 */
export class ConstantValues {
  private readonly cache = new Map<string, ConstantValue | undefined>();
  private readonly scopes: { graph: GraphProto; producers: Map<string, NodeProto> }[];

  constructor(graphs: GraphProto[]) {
    this.scopes = graphs.map((graph) => ({ graph, producers: producersIn(graph) })).reverse();
  }

  valueOf(name: string): ConstantValue | undefined {
    if (!name) return undefined;
    if (!this.cache.has(name)) this.cache.set(name, this.evaluate(name));
    return this.cache.get(name);
  }

  private evaluate(name: string): ConstantValue | undefined {
    // Innermost scope first: a subgraph's own values shadow the enclosing graph's.
    for (const { graph, producers } of this.scopes) {
      const init = graph.initializer.find((t) => t.name === name);
      if (init) return { dims: init.dims.map(Number), values: tensorValues(init) };
      const producer = producers.get(name);
      if (producer) return this.evaluateNode(producer);
      if (graph.input.some((i) => i.name === name)) return undefined;
    }
    return undefined;
  }

  private evaluateNode(node: NodeProto): ConstantValue | undefined {
    if (node.output.length !== 1 || (node.domain !== '' && node.domain !== 'ai.onnx')) return undefined;
    const constant = constantTensor(node);
    if (constant) return { dims: constant.dims.map(Number), values: tensorValues(constant) };
    const inputs = node.input.map((i) => (i ? this.valueOf(i) : undefined));
    const data = inputs[0];
    if (!data) return undefined;
    const optional = (i: number) => (node.input[i] ? inputs[i] : undefined);
    const known = (i: number) => !node.input[i] || inputs[i] !== undefined;
    switch (node.opType) {
      case 'Identity':
        return data;
      case 'Unsqueeze': {
        const axes = node.input[1] ? optional(1) : undefined;
        if (!known(1)) return undefined;
        return unsqueeze(data, axes ? ints(axes) : attributeInts(node, 'axes') ?? []);
      }
      case 'Squeeze': {
        if (!known(1)) return undefined;
        const axes = optional(1);
        return squeeze(data, axes ? ints(axes) : attributeInts(node, 'axes'));
      }
      case 'Reshape': {
        const shape = inputs[1];
        if (!shape) return undefined;
        const target = ints(shape).map((d, i) => (d === 0 ? data.dims[i]! : d));
        const inferred = target.indexOf(-1);
        if (inferred >= 0) target[inferred] = count(data.dims) / -count(target);
        return { dims: target, values: data.values };
      }
      case 'Concat':
        if (inputs.some((v) => !v)) return undefined;
        return concat(inputs as ConstantValue[], attributeInt(node, 'axis', 0));
      case 'Slice': {
        if (![1, 2, 3, 4].every(known) || !inputs[1] || !inputs[2]) return undefined;
        const axes = optional(3);
        const steps = optional(4);
        return slice(data, ints(inputs[1]), ints(inputs[2]), axes && ints(axes), steps && ints(steps));
      }
      default:
        return undefined;
    }
  }
}
