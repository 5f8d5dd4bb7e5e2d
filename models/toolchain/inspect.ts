/**
 * `splitinfer model inspect`: what a model file holds — opsets, inputs and
 * outputs with their shapes, operator counts (subgraphs included),
 * parameter count and bytes by element type, whether weights are
 * initializers or Constant nodes. Enough to see, before and after a
 * quantize or prune, what changed.
 */
import type { ModelProto, TensorProto, ValueInfoProto } from 'onnx-buf';
import { allNodes, constantTensor, dataTypeName, elementCount, tensorBytes } from './onnx-model.js';

export interface TensorSignature {
  name: string;
  type: string;
  /** Fixed sizes, or the symbolic name of a dimension; '?' when unknown. */
  shape: (number | string)[];
}

export interface ModelSummary {
  irVersion: number;
  producer: string;
  opsets: Record<string, number>;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  nodes: number;
  /** Operator counts, `domain:Op` outside the default domain, most frequent first. */
  ops: Record<string, number>;
  /** Elements of every weight (initializers and Constant-node tensors). */
  parameters: number;
  weightBytesByType: Record<string, number>;
  weightsIn: { initializers: number; constantNodes: number };
}

function signature(info: ValueInfoProto): TensorSignature {
  const tensorType = info.type?.value.case === 'tensorType' ? info.type.value.value : undefined;
  const shape = (tensorType?.shape?.dim ?? []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : '?'));
  return { name: info.name, type: tensorType ? dataTypeName(tensorType.elemType) : 'unknown', shape };
}

export function summarizeModel(model: ModelProto): ModelSummary {
  const graph = model.graph!;
  const nodes = allNodes(graph);
  const counts = new Map<string, number>();
  for (const node of nodes) {
    const key = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}:${node.opType}` : node.opType;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const weights: TensorProto[] = [...graph.initializer];
  let constantNodes = 0;
  for (const node of nodes) {
    const t = constantTensor(node);
    if (t) {
      weights.push(t);
      constantNodes++;
    }
  }
  const initializerNames = new Set(graph.initializer.map((t) => t.name));
  const weightBytesByType: Record<string, number> = {};
  let parameters = 0;
  for (const t of weights) {
    parameters += elementCount(t);
    const type = dataTypeName(t.dataType);
    weightBytesByType[type] = (weightBytesByType[type] ?? 0) + tensorBytes(t);
  }
  return {
    irVersion: Number(model.irVersion),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    opsets: Object.fromEntries(model.opsetImport.map((o) => [o.domain || 'ai.onnx', Number(o.version)])),
    inputs: graph.input.filter((i) => !initializerNames.has(i.name)).map(signature),
    outputs: graph.output.map(signature),
    nodes: nodes.length,
    ops: Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    parameters,
    weightBytesByType,
    weightsIn: { initializers: graph.initializer.length, constantNodes },
  };
}

const shapeText = (s: TensorSignature) => `${s.name}: ${s.type}[${s.shape.join(', ')}]`;
const mb = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`);

/** The summary as a few readable lines. */
export function formatSummary(file: string, fileBytes: number, summary: ModelSummary): string {
  const opsets = Object.entries(summary.opsets).map(([d, v]) => `${d} ${v}`).join(', ');
  const ops = Object.entries(summary.ops).map(([op, n]) => `${op} ${n}`).join(', ');
  const bytes = Object.entries(summary.weightBytesByType).map(([t, b]) => `${t} ${mb(b)}`).join(', ') || 'none';
  return [
    `${file}: ${mb(fileBytes)}, IR ${summary.irVersion}, opset ${opsets}${summary.producer ? `, from ${summary.producer}` : ''}`,
    `inputs:  ${summary.inputs.map(shapeText).join('; ')}`,
    `outputs: ${summary.outputs.map(shapeText).join('; ')}`,
    `nodes:   ${summary.nodes} (${ops})`,
    `weights: ${summary.parameters.toLocaleString('en')} parameters (${bytes}); ${summary.weightsIn.initializers} initializers, ${summary.weightsIn.constantNodes} Constant nodes`,
  ].join('\n');
}
