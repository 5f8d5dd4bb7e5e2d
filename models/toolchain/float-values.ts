/**
 * Which values of a graph are float32, for static quantization: it rewrites
 * float tensors only, and a conv net's graph also carries shape arithmetic
 * (Shape → Gather → Mul …) on int64 that must stay as it is. A forward pass
 * over the (topologically ordered) nodes: most ops give their data input's
 * type; the exceptions that occur in exported vision and text graphs are
 * listed.
 */
import { TensorProto_DataType, type GraphProto } from 'onnx-buf';

/** Ops whose outputs are never float, whatever their inputs. */
const nonFloatOps = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'IsNaN', 'IsInf']);

/** The names of the float32 values of `graph` (inputs, initializers, node outputs), subgraphs aside. */
export function floatValues(graph: GraphProto): Set<string> {
  const float = new Set<string>();
  for (const i of graph.input) if (i.type?.value.case === 'tensorType' && i.type.value.value.elemType === TensorProto_DataType.FLOAT) float.add(i.name);
  for (const t of graph.initializer) if (t.dataType === TensorProto_DataType.FLOAT) float.add(t.name);
  for (const n of graph.node) {
    let isFloat: boolean;
    if (nonFloatOps.has(n.opType)) isFloat = false;
    else if (n.opType === 'Cast') isFloat = Number(n.attribute.find((a) => a.name === 'to')?.i ?? 0) === TensorProto_DataType.FLOAT;
    else if (n.opType === 'ConstantOfShape') isFloat = (n.attribute.find((a) => a.name === 'value')?.t?.dataType ?? TensorProto_DataType.FLOAT) === TensorProto_DataType.FLOAT;
    else isFloat = float.has((n.opType === 'Where' ? n.input[1] : n.input.find(Boolean)) ?? '');
    // TopK and the like give indices as a second output: only the first follows the data.
    if (isFloat && n.output[0]) float.add(n.output[0]);
  }
  return float;
}
