/**
 * Layer split (`splitinfer model split`, Neurosurgeon/DADS style): one graph
 * becomes a head, from the inputs up to a value, and a tail, from that value
 * to the outputs, so the edge can run the head and send the value (the
 * activation) for the cloud to finish.
 *
 * A value is a cut when it is the only thing that crosses: the tail reads
 * no other value the head computes and no graph input, and no graph output
 * is computed in the head. Weights are not values here: each side keeps
 * the weights it reads (Constant nodes become initializers first, so a
 * constant read on both sides is copied, not a crossing).
 */
import { clone, create } from '@bufbuild/protobuf';
import { ModelProtoSchema, ValueInfoProtoSchema, type GraphProto, type ModelProto, type NodeProto, type ValueInfoProto } from 'onnx-buf';
import { allGraphs, namesReadIn, producersIn, removeUnused } from './graph-edit.js';
import { constantsToInitializers, constantTensor, ModelToolError, nodeLabel } from './onnx-model.js';

export interface SplitModels {
  head: ModelProto;
  tail: ModelProto;
}

/** What a node reads: its inputs and the enclosing-graph values its subgraphs (If/Loop/Scan bodies) read. */
function readsOf(node: NodeProto): string[] {
  const reads = new Set(node.input.filter((name) => name !== ''));
  for (const attribute of node.attribute) {
    for (const sub of [...(attribute.g ? [attribute.g] : []), ...attribute.graphs]) {
      const defined = new Set<string>();
      for (const g of allGraphs(sub)) {
        for (const n of g.node) n.output.forEach((o) => defined.add(o));
        g.input.forEach((v) => defined.add(v.name));
        g.initializer.forEach((t) => defined.add(t.name));
      }
      for (const name of namesReadIn(sub)) if (!defined.has(name)) reads.add(name);
    }
  }
  return [...reads];
}

/** Initializers and the outputs of Constant nodes: what each side keeps its own copy of. */
const weightNames = (graph: GraphProto) => new Set([...graph.initializer.map((t) => t.name), ...graph.node.flatMap((n) => (constantTensor(n) ? n.output : []))]);

const graphFeeds = (graph: GraphProto) => {
  const weights = new Set(graph.initializer.map((t) => t.name));
  return new Set(graph.input.map((v) => v.name).filter((name) => !weights.has(name)));
};

/**
 * Values that cut the graph, in node order: after the node that computes
 * one, it is the only value still to be read later (or returned). Found in
 * one pass over the nodes as stored (ONNX keeps them in a topological
 * order); every value listed here splits, but a value may also split when
 * an unrelated branch happens to be stored before it.
 */
export function cutCandidates(model: ModelProto): string[] {
  const graph = model.graph!;
  const weights = weightNames(graph);
  const outputs = new Set(graph.output.map((v) => v.name));
  const lastRead = new Map<string, number>();
  graph.node.forEach((node, i) => readsOf(node).forEach((name) => lastRead.set(name, i)));
  for (const name of outputs) lastRead.set(name, Infinity);
  const live = new Set([...graphFeeds(graph)].filter((name) => lastRead.has(name)));
  const candidates: string[] = [];
  graph.node.forEach((node, i) => {
    for (const name of node.output) if (name && (lastRead.get(name) ?? -1) > i && !weights.has(name)) live.add(name);
    for (const name of readsOf(node)) if (lastRead.get(name) === i) live.delete(name);
    const [only] = live;
    if (live.size === 1 && node.output.includes(only!) && !outputs.has(only!)) candidates.push(only!);
  });
  return candidates;
}

/** The nodes that compute `roots`, reading back to graph inputs, weights and `stopAt`. */
function ancestors(graph: GraphProto, roots: readonly string[], stopAt: ReadonlySet<string>): Set<NodeProto> {
  const producers = producersIn(graph);
  const found = new Set<NodeProto>();
  const pending = roots.filter((name) => !stopAt.has(name));
  while (pending.length > 0) {
    const node = producers.get(pending.pop()!);
    if (!node || found.has(node)) continue;
    found.add(node);
    for (const name of readsOf(node)) if (!stopAt.has(name)) pending.push(name);
  }
  return found;
}

const hintCandidates = (model: ModelProto) => {
  const candidates = cutCandidates(model);
  const shown = candidates.length > 12 ? [...candidates.slice(0, 6), '…', ...candidates.slice(-5)] : candidates;
  return candidates.length ? `values that cut this graph (${candidates.length}): ${shown.join(', ')}` : 'this graph has no single value that cuts it';
};

/**
 * The head and tail of `model` at value `at`. `cut` describes the value as
 * the head's output and the tail's input (its element type and shape, which
 * ONNX files often do not record for inner values; see split-command.ts).
 * The model is not changed. Throws a ModelToolError naming what crosses
 * when `at` is not a cut.
 */
export function splitModel(model: ModelProto, at: string, cut: ValueInfoProto): SplitModels {
  checkCut(model, at);
  const work = clone(ModelProtoSchema, model);
  constantsToInitializers(work);
  const graph = work.graph!;
  const headNodes = ancestors(graph, [at], new Set());
  const tailNodes = ancestors(graph, graph.output.map((v) => v.name), new Set([at]));
  const part = (nodes: Set<NodeProto>, inputs: ValueInfoProto[], outputs: ValueInfoProto[], suffix: string): ModelProto => {
    const copy = clone(ModelProtoSchema, work);
    const g = copy.graph!;
    const kept = new Set(graph.node.flatMap((node, i) => (nodes.has(node) ? [i] : [])));
    g.node = g.node.filter((_, i) => kept.has(i));
    g.input = inputs;
    g.output = outputs;
    g.name = `${graph.name || 'graph'}_${suffix}`;
    removeUnused(copy);
    return copy;
  };
  const cutInfo = () => clone(ValueInfoProtoSchema, cut);
  const headReads = new Set([...headNodes].flatMap(readsOf));
  return {
    head: part(headNodes, graph.input.filter((v) => headReads.has(v.name)), [cutInfo()], 'head'),
    tail: part(tailNodes, [cutInfo()], graph.output, 'tail'),
  };
}

/** Throws unless `at` is a value the graph computes and the only one that crosses from the head to the tail. */
export function checkCut(model: ModelProto, at: string): void {
  const graph = model.graph!;
  const feeds = graphFeeds(graph);
  if (feeds.has(at)) throw new ModelToolError(`--at ${at}: that is an input of the graph, so the head would be empty — ${hintCandidates(model)}`);
  const weights = weightNames(graph);
  if (weights.has(at)) throw new ModelToolError(`--at ${at}: that is a weight, not a value the graph computes — ${hintCandidates(model)}`);
  const producers = producersIn(graph);
  if (!producers.has(at)) throw new ModelToolError(`--at ${at}: no node of the graph computes a value of that name — ${hintCandidates(model)}`);
  const headNodes = ancestors(graph, [at], new Set());
  const readers = new Map<string, string[]>();
  for (const node of ancestors(graph, graph.output.map((v) => v.name), new Set([at]))) {
    if (headNodes.has(node)) continue;
    for (const name of readsOf(node)) {
      const producer = producers.get(name);
      if (name !== at && !weights.has(name) && (feeds.has(name) || (producer && headNodes.has(producer)))) readers.set(name, [...(readers.get(name) ?? []), nodeLabel(node)]);
    }
  }
  const crossings = [...readers].map(([name, nodes]) => `${name} (read by ${nodes.join(', ')})`);
  for (const output of graph.output) {
    const producer = producers.get(output.name);
    if (output.name === at || feeds.has(output.name) || (producer && headNodes.has(producer))) crossings.push(`${output.name} (a graph output)`);
  }
  if (crossings.length > 0) {
    const listed = crossings.length > 5 ? [...crossings.slice(0, 5), `and ${crossings.length - 5} more`] : crossings;
    throw new ModelToolError(`--at ${at}: not a cut — besides it, ${listed.join(', ')} would have to cross from the head to the tail; ${hintCandidates(model)}`);
  }
}

/** A value description without a type: onnxruntime infers it, which is how its type and shape are found. */
export const untypedValue = (name: string) => create(ValueInfoProtoSchema, { name });
