/** A real ONNX graph for tests of the session wrapper: y = zeros of the shape fed, so a run takes as long as the caller asks. */
import { writeFileSync } from 'node:fs';
import { buildModel, encodeModel, node, valueInfo } from '../../models/onnx-graph.js';
import type { Tensor } from '../../shared/tensor.js';

export function writeFillModel(file: string): void {
  const model = buildModel({ name: 'fill', nodes: [node('ConstantOfShape', ['shape'], ['y'])], initializers: [], inputs: [valueInfo('shape', 'int64', [2])], outputs: [valueInfo('y', 'float32')] });
  writeFileSync(file, encodeModel(model));
}

/** The feeds of a fill run giving a `dims` output. */
export const fillShape = (...dims: bigint[]): Record<string, Tensor> => ({ shape: { type: 'int64', dims: [2], data: BigInt64Array.from(dims) } });
