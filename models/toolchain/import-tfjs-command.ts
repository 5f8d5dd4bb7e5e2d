/** `splitinfer model import-tfjs DIR OUT.onnx [--output LAYER]...`. */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { encodeModel } from '../onnx-graph.js';
import { importTfjs, INPUT_NAME, supportedLayers, type ImportOptions, type ImportReport } from './import-tfjs.js';
import { ModelToolError } from './onnx-model.js';
import { readTfjsModel } from './tfjs-model-files.js';
import { assertLoadsInOnnxRuntime } from './verify-model.js';

const help = `usage: splitinfer model import-tfjs DIR OUT.onnx [--output LAYER]...

Writes the TensorFlow.js layers model (Keras) in DIR as ONNX: DIR holds
model.json and its .bin shards, or model.min.js and .min.js shards as nsfwjs
ships them. Quantized weights are read back to float32.

The ONNX model takes what tfjs takes: 'input' [batch, H, W, C] float NHWC.
Outputs: 'probabilities' (or 'output' when the model does not end in
softmax), 'features' (the input of the final Dense layer), and each
--output LAYER under the layer's name (or NAME=LAYER under NAME), images
global-average pooled.

  --output LAYER   also expose this layer's output (repeatable; NAME=LAYER renames it)

Layers: ${supportedLayers.join(', ')}.
The result must load and run in onnxruntime-node, or nothing is written.`;

const usageError = (message: string) => new ModelToolError(`${message}\n\n${help}`);

export function formatImportReport(report: ImportReport): string {
  const shape = (dims: (number | string)[]) => `[${dims.join(', ')}]`;
  return [
    `${report.layers} layers, ${report.parameters} parameters`,
    `input  ${report.input.name} ${shape(report.input.shape)}`,
    ...report.outputs.map((o) => `output ${o.name} ${shape(o.shape)}${o.layer === o.name ? '' : ` (layer ${o.layer})`}`),
  ].join('\n');
}

/** Imports DIR and checks that the result runs in onnxruntime-node on a blank image; returns the model and its bytes. */
export async function importVerified(dir: string, options: ImportOptions = {}): Promise<{ model: ModelProto; bytes: Uint8Array; report: ImportReport }> {
  const { model, report } = importTfjs(readTfjsModel(dir), options);
  const bytes = encodeModel(model);
  const [, height, width, channels] = report.input.shape as [string, number, number, number];
  const blank = new ort.Tensor('float32', new Float32Array(height * width * channels), [1, height, width, channels]);
  await assertLoadsInOnnxRuntime(bytes, 'imported', 'report the layer it names', { [INPUT_NAME]: blank });
  return { model, bytes, report };
}

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { output: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length !== 2) throw usageError(`import-tfjs: expected the model folder DIR and OUT.onnx, got ${positionals.length} argument(s)`);
  const [dir, out] = positionals as [string, string];
  const { bytes, report } = await importVerified(dir, { outputs: values.output ?? [], source: dir });
  writeFileSync(out, bytes);
  console.log(`${formatImportReport(report)}\n${out} ${bytes.length} bytes`);
  return 0;
}
