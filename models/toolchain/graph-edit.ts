/**
 * Editing a parsed model in place, for the rewrites of the toolchain
 * (quantize, prune): who reads a value, opset imports for new domains,
 * and sweeping away nodes and weights a rewrite left unused. Subgraphs
 * (If/Loop/Scan bodies) may read any value of an enclosing graph, so every
 * question here looks inside them too.
 */
import { create } from '@bufbuild/protobuf';
import { OperatorSetIdProtoSchema, type GraphProto, type ModelProto, type NodeProto } from 'onnx-buf';

/** The graphs held in a node's attributes (If branches, Loop and Scan bodies). */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  return node.attribute.flatMap((a) => [...(a.g ? [a.g] : []), ...a.graphs]);
}

/** Every graph of the model: the main graph first, then each subgraph, outer before inner. */
export function allGraphs(graph: GraphProto): GraphProto[] {
  const graphs = [graph];
  for (let i = 0; i < graphs.length; i++) for (const node of graphs[i]!.node) graphs.push(...subgraphsOf(node));
  return graphs;
}

/** Names a graph reads: node inputs and graph outputs, of the graph and of every graph inside it. */
export function namesReadIn(graph: GraphProto): Set<string> {
  const read = new Set<string>();
  for (const g of allGraphs(graph)) {
    for (const node of g.node) for (const input of node.input) if (input) read.add(input);
    for (const output of g.output) read.add(output.name);
  }
  return read;
}

/** Nodes of `graph` (not of its subgraphs) that read each value as an input. */
export function consumersIn(graph: GraphProto): Map<string, NodeProto[]> {
  const consumers = new Map<string, NodeProto[]>();
  for (const node of graph.node) {
    for (const input of new Set(node.input)) {
      if (input) consumers.set(input, [...(consumers.get(input) ?? []), node]);
    }
  }
  return consumers;
}

/** The node of `graph` that writes a value. */
export function producersIn(graph: GraphProto): Map<string, NodeProto> {
  const producers = new Map<string, NodeProto>();
  for (const node of graph.node) for (const output of node.output) if (output) producers.set(output, node);
  return producers;
}

/** Imports `domain` at `version` unless the model already imports it. */
export function useOpset(model: ModelProto, domain: string, version: number): void {
  if (model.opsetImport.some((o) => o.domain === domain)) return;
  model.opsetImport.push(create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) }));
}

/**
 * Drops nodes none of whose outputs is read (anywhere, subgraphs included)
 * and initializers nothing reads, until nothing changes; value_info of
 * dropped values goes too. ONNX operators have no side effects, so an
 * unread node can go.
 */
export function removeUnused(model: ModelProto): void {
  const graph = model.graph!;
  for (;;) {
    const read = namesReadIn(graph);
    let removed = 0;
    for (const g of allGraphs(graph)) {
      const before = g.node.length + g.initializer.length;
      g.node = g.node.filter((node) => node.output.some((o) => o && read.has(o)));
      const dropped = new Set(g.initializer.filter((t) => !read.has(t.name)).map((t) => t.name));
      g.initializer = g.initializer.filter((t) => !dropped.has(t.name));
      // Older exports list initializers as graph inputs too; without its initializer such an input would become required.
      g.input = g.input.filter((v) => !dropped.has(v.name));
      g.valueInfo = g.valueInfo.filter((v) => read.has(v.name));
      removed += before - g.node.length - g.initializer.length;
    }
    if (removed === 0) return;
  }
}

/** A value name not yet used in the model, from `base`. */
export function freshNamer(model: ModelProto): (base: string) => string {
  const taken = new Set<string>();
  for (const g of allGraphs(model.graph!)) {
    for (const node of g.node) {
      node.output.forEach((o) => taken.add(o));
      node.input.forEach((i) => taken.add(i));
      taken.add(node.name);
    }
    g.initializer.forEach((t) => taken.add(t.name));
    g.input.forEach((v) => taken.add(v.name));
  }
  return (base) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
}
