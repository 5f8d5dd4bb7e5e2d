/** A real ONNX graph for tests of the session wrapper: y = zeros of the shape fed, so a run takes as long as the caller asks. */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { buildModel, encodeModel, node, valueInfo } from '../../models/onnx-graph.js';
import type { FileRef } from '../../shared/catalog.js';
import type { Tensor } from '../../shared/tensor.js';

/** Writes the graph to `file` and returns its catalog reference; another `name` gives other bytes (another sha256). */
export function writeFillModel(file: string, name = 'fill'): FileRef {
  const model = buildModel({ name, nodes: [node('ConstantOfShape', ['shape'], ['y'])], initializers: [], inputs: [valueInfo('shape', 'int64', [2])], outputs: [valueInfo('y', 'float32')] });
  const bytes = encodeModel(model);
  writeFileSync(file, bytes);
  return { source: file, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The feeds of a fill run giving a `dims` output. */
export const fillShape = (...dims: bigint[]): Record<string, Tensor> => ({ shape: { type: 'int64', dims: [2], data: BigInt64Array.from(dims) } });
