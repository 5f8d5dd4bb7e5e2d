/**
 * `splitinfer model <subcommand>`: the model toolchain. Each subcommand
 * lives in its own module, loaded on demand (quantizing does not load the
 * pruner).
 */
import { dispatch, type CommandSet } from '../../shared/subcommands.js';

const at = (file: string) => new URL(file, import.meta.url);

const toolchain: CommandSet = {
  prefix: 'splitinfer model',
  noun: 'subcommand',
  entries: {
    inspect: { module: at('./inspect-command.js'), summary: 'opsets, inputs/outputs, op counts, parameters and bytes by element type' },
    quantize: { module: at('./quantize-command.js'), summary: 'INT8 copy of a model: --mode dynamic (MatMul/Gemm/LSTM) or --mode static (QDQ, calibrated)' },
    prune: { module: at('./prune-command.js'), summary: 'remove the least salient hidden units of MatMul → Relu → MatMul chains' },
    'import-tfjs': { module: at('./import-tfjs-command.js'), summary: 'a TensorFlow.js layers model (Keras; model.json or nsfwjs .min.js) as ONNX, checked in onnxruntime-node' },
    split: { module: at('./split-command.js'), summary: 'head (inputs → a value) and tail (that value → outputs) of a model, checked to reproduce it' },
    eval: { module: at('./eval-command.js'), summary: 'quality of a catalog variant against its reference (fp32) on a data set' },
  },
};

export function main(args: string[]): Promise<number> {
  return dispatch(toolchain, args);
}
